"""A plain multi-band GeoTIFF as input: band names from descriptions or a mapping, nodata, no offset."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from s2lc.errors import BandError, ProductError
from s2lc.product import open_product

RNG = np.random.default_rng(7)
TRANSFORM = Affine(10, 0, 500000, 0, -10, 6000000)


def write_tif(path, data, descriptions=None, nodata=0, crs="EPSG:32632", transform=TRANSFORM):
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype,
                   transform=transform, nodata=nodata)
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
    return path


@pytest.fixture
def rgb(tmp_path):
    data = RNG.integers(1, 4000, (3, 50, 70)).astype(np.uint16)
    data[:, :, :5] = 0  # no data on the left
    return write_tif(tmp_path / "export.tif", data, ["B4", "b03 green", "B02"]), data


def test_band_names_come_from_the_descriptions(rgb):
    path, data = rgb
    with open_product(path) as p:
        assert p.level == "GeoTIFF" and p.id == "export" and p.baseline is None
        assert p.bands_available == ("B02", "B03", "B04")  # ESA order, whatever the file order
        assert p.offsets == {"B02": 0.0, "B03": 0.0, "B04": 0.0} and p.special_values == {"NODATA": 0}
        assert p.grid.crs.to_epsg() == 32632 and p.grid.transform == TRANSFORM and p.grid.shape == (50, 70)
        assert p.native_resolution("B04") == 10
        out = p.read(["B04", "B03", "B02"])
        masks = p.read_masks()
        window = p.read(["B03"], Window(3, 4, 20, 10))
    np.testing.assert_array_equal(out[:, :, 5:], data[:, :, 5:].astype(np.float32))
    assert np.isnan(out[:, :, :5]).all()
    np.testing.assert_array_equal(masks.nodata, np.arange(70)[None, :].repeat(50, 0) < 5)
    assert masks.cloud is None and masks.cloud_source is None
    np.testing.assert_array_equal(window[0], out[1, 4:14, 3:23])


def test_a_mapping_names_undescribed_bands(tmp_path):
    data = RNG.integers(1, 4000, (4, 20, 20)).astype(np.uint16)
    path = write_tif(tmp_path / "plain.tif", data)
    with pytest.raises(ProductError, match=r"do not name Sentinel-2 bands; name them: bands=\{'B04': 1, 'B03': 2, 'B02': 3\}$"):
        open_product(path)
    with open_product(path, bands={"B08": 4, "b04": 1}) as p:
        assert p.bands_available == ("B04", "B08")
        np.testing.assert_array_equal(p.read(["B08"])[0], data[3])


@pytest.mark.parametrize(
    "mapping, error, match",
    [
        ({"B04": 5}, ProductError, "mapped to 5, but the file has bands 1 to 4"),
        ({"B04": 1, "B03": 1}, ProductError, "two bands mapped to the same index"),
        ({"B99": 1}, BandError, "unknown Sentinel-2 band 'B99'"),
    ],
)
def test_a_bad_mapping_is_refused(tmp_path, mapping, error, match):
    path = write_tif(tmp_path / "plain.tif", RNG.integers(1, 4000, (4, 20, 20)).astype(np.uint16))
    with pytest.raises(error, match=match):
        open_product(path, bands=mapping)


def test_float_nan_is_no_data(tmp_path):
    data = RNG.normal(0.1, 0.02, (2, 10, 10)).astype(np.float32)
    data[:, 0, 0] = np.nan
    with open_product(write_tif(tmp_path / "f.tif", data, ["B04", "B08"], nodata=None)) as p:
        assert np.isnan(p.read(["B04"])[0, 0, 0]) and p.read_masks().nodata[0, 0]
        assert p.read_masks().nodata.sum() == 1


def test_a_geotiff_without_crs_is_refused(tmp_path):
    path = write_tif(tmp_path / "nocrs.tif", RNG.integers(1, 9, (1, 5, 5)).astype(np.uint16), ["B04"], crs=None)
    with pytest.raises(ProductError, match="no coordinate reference system"):
        open_product(path)


def test_a_picture_without_georeferencing_is_refused_without_rasterio_warnings(tmp_path, recwarn):
    path = tmp_path / "photo.png"
    with rasterio.open(path, "w", driver="PNG", width=8, height=8, count=3, dtype="uint8") as dst:
        dst.write(np.zeros((3, 8, 8), np.uint8))
    recwarn.clear()
    with pytest.raises(ProductError, match=r"photo\.png: has no coordinate reference system"):
        open_product(path)
    assert not [w for w in recwarn if "Georeferenced" in type(w.message).__name__], [str(w.message) for w in recwarn]


def test_a_geotiff_with_a_crs_but_no_geotransform_says_so(tmp_path):
    path = tmp_path / "nogeo.tif"
    with rasterio.open(path, "w", driver="GTiff", width=5, height=5, count=1, dtype="uint16", crs="EPSG:32632") as dst:
        dst.write(np.ones((1, 5, 5), np.uint16))
        dst.set_band_description(1, "B04")
    with pytest.raises(ProductError, match=r"nogeo\.tif: has no geotransform"):
        open_product(path)


def test_duplicate_descriptions_are_refused(tmp_path):
    path = write_tif(tmp_path / "dup.tif", RNG.integers(1, 9, (2, 5, 5)).astype(np.uint16), ["B04", "B4 again"])
    with pytest.raises(ProductError, match="both described as B04"):
        open_product(path)


def test_a_eurosat_ordered_export_reads_b8a_from_the_last_band(tmp_path):
    """EuroSAT MS files put B8A last; named by their descriptions, bands come back by id, not by position."""
    from s2lc.sentinel2 import BAND_IDS, EUROSAT_MS_ORDER

    data = np.stack([np.full((8, 8), 100 * (i + 1), np.uint16) for i in range(13)])  # band i holds 100 (i + 1)
    path = write_tif(tmp_path / "eurosat_ms.tif", data, list(EUROSAT_MS_ORDER))
    with open_product(path) as p:
        assert p.bands_available == BAND_IDS
        values = p.read(["B8A", "B09", "B12"])[:, 0, 0]
    assert list(values) == [1300.0, 900.0, 1200.0]
