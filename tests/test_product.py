"""Reading synthetic products: metadata, offsets, resampling, windows, masks, bands."""

import json
from datetime import datetime, timezone

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from s2lc._reader_common import DatasetPool
from s2lc.errors import BandError, ProductError
from s2lc.product import Grid, Masks, Product, open_product
from s2lc.resampling import upsample_cubic
from s2lc.sentinel2 import BAND_IDS, SCL_CLOUD_CLASSES
from s2lc.testing import CLASSES, make_scene, write_jp2

from conftest import NODATA_COLS, copy_product

L2A_BANDS = tuple(b for b in BAND_IDS if b != "B10")
SIZE = 240


def scene():
    """The ground of the named fixtures (default seed and clouds, the swath edge)."""
    return make_scene(SIZE, nodata_cols=NODATA_COLS)


def granule(product):
    return next((product / "GRANULE").iterdir())


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("baseline", ["02.09", "04.00", "05.10"])
@pytest.mark.parametrize("level", ["L1C", "L2A"])
def test_opens_every_level_baseline_and_container(make_synthetic, level, baseline, zipped):
    path = make_synthetic(level=level, baseline=baseline, size=60, zipped=zipped, seed=1)
    with open_product(path) as p:
        assert isinstance(p, Product)
        assert p.id == f"S2B_MSI{level}_20200406T101559_N{baseline.replace('.', '')}_R065_T33UUU_20200406T130159"
        assert (p.level, p.baseline, p.spacecraft, p.tile) == (level, baseline, "Sentinel-2B", "T33UUU")
        assert p.sensing_time == datetime(2020, 4, 6, 10, 15, 59, 24000, tzinfo=timezone.utc)
        assert p.quantification_value == 10000.0
        assert p.special_values == {"NODATA": 0, "SATURATED": 65535}
        assert p.grid == Grid(rasterio.crs.CRS.from_epsg(32633), rasterio.Affine(10, 0, 300000, 0, -10, 5900040), 60, 60)
        assert p.bands_available == (BAND_IDS if level == "L1C" else L2A_BANDS)
        expected_offset = -1000.0 if baseline >= "04.00" else 0.0
        assert p.offsets == {b: expected_offset for b in p.bands_available}
        assert 0 < p.cloud_cover < 100
        assert p.read(["B04", "B05", "B01"]).shape == (3, 60, 60)
        assert p.cloud_source == ("SCL" if level == "L2A" else "MSK_CLASSI_B00" if baseline >= "04.00" else "MSK_CLOUDS_B00")


def test_10m_band_is_the_dn_itself(l1c_old):
    truth = scene()
    with open_product(l1c_old) as p:
        b04 = p.read(["B04"])[0]
    assert b04.dtype == np.float32
    assert np.isnan(b04[:, :NODATA_COLS]).all()
    np.testing.assert_array_equal(b04[:, NODATA_COLS:], truth.dn[BAND_IDS.index("B04"), :, NODATA_COLS:])


@pytest.mark.parametrize("old, new", [("l1c_old", "l1c_new"), ("l2a_old", "l2a_new")])
def test_offset_products_of_the_same_ground_read_the_same(request, old, new):
    """Baseline 04.00 stores DN + 1000 and declares -1000: the reader gives the pre-04.00 numbers."""
    with open_product(request.getfixturevalue(old)) as a, open_product(request.getfixturevalue(new)) as b:
        assert set(a.offsets.values()) == {0.0} and set(b.offsets.values()) == {-1000.0}
        bands = a.bands_available
        np.testing.assert_array_equal(a.read(bands), b.read(bands))
        np.testing.assert_array_equal(a.read_masks().nodata, b.read_masks().nodata)
    with rasterio.open(next((granule(request.getfixturevalue(new)) / "IMG_DATA").rglob("*_B04*.jp2"))) as raw:
        dn = raw.read(1)
    assert dn[dn > 0].min() > 1000  # the files really differ by the offset


def test_coarse_bands_are_no_data_aware_cubic_on_the_10m_grid(l1c_old):
    truth = scene()
    with open_product(l1c_old) as p:
        out = p.read(["B05", "B01"])
    for i, (band_id, factor) in enumerate((("B05", 2), ("B01", 6))):
        coarse = truth.band_dn(band_id)
        n = SIZE // factor
        expected = upsample_cubic(coarse, factor, data_window=Window(0, 0, n, n), window=Window(0, 0, SIZE, SIZE),
                                  coarse_shape=(n, n), valid=coarse > 0)
        np.testing.assert_array_equal(out[i], expected)


@pytest.mark.parametrize("band_id, factor", [("B05", 2), ("B01", 6)])
def test_a_ramp_across_the_tile_comes_back_on_the_10m_pixel_centres(make_synthetic, band_id, factor):
    """Map-space alignment end to end: a linear ramp in x, averaged into 20/60 m pixels by the
    generator, is read back at 10 m as the ramp's value at each 10 m pixel centre."""
    columns = 100.0 + 2.0 * np.arange(SIZE)  # DN 2 per 10 m
    ramp = np.broadcast_to(columns, (13, SIZE, SIZE))
    with open_product(make_synthetic(level="L1C", baseline="02.09", cloud_fraction=0, scene=ramp)) as p:
        out = p.read([band_id])[0]
    inner = slice(2 * factor, SIZE - 2 * factor)
    np.testing.assert_allclose(out[inner, inner], np.broadcast_to(columns, (SIZE, SIZE))[inner, inner], atol=1e-3)


@pytest.mark.parametrize(
    "window",
    [Window(0, 0, 7, 13), Window(233, 227, 7, 13), Window(37, 101, 61, 17), Window(35, 50, 11, 11), Window(239, 0, 1, 240),
     Window(0, 119, 240, 1)],
    ids=lambda w: f"{w.col_off},{w.row_off},{w.width}x{w.height}",
)
@pytest.mark.parametrize("fixture", ["l2a_new", "l1c_new_zip"])
def test_a_window_equals_the_same_region_of_a_full_read(request, fixture, window):
    bands = ["B04", "B05", "B01", "B8A", "B12"]
    with open_product(request.getfixturevalue(fixture)) as p:
        full, part = p.read(bands), p.read(bands, window)
        full_masks, part_masks = p.read_masks(), p.read_masks(window)
    sl = (slice(window.row_off, window.row_off + window.height), slice(window.col_off, window.col_off + window.width))
    np.testing.assert_array_equal(part, full[(slice(None),) + sl])
    np.testing.assert_array_equal(part_masks.nodata, full_masks.nodata[sl])
    np.testing.assert_array_equal(part_masks.cloud, full_masks.cloud[sl])


def test_a_window_read_decodes_only_its_neighbourhood(l2a_new, monkeypatch):
    seen = []
    original = DatasetPool.read

    def spy(self, ref, window, indexes=None):
        seen.append((ref.resolution, window))
        return original(self, ref, window, indexes)

    monkeypatch.setattr(DatasetPool, "read", spy)
    with open_product(l2a_new) as p:
        p.read(["B04", "B05", "B01"], Window(120, 120, 30, 30))
        p.read_masks(Window(120, 120, 30, 30))
    assert {r for r, _ in seen} == {10, 20, 60}
    for resolution, window in seen:
        pixels = 30 * 10 // resolution + 2 * 4 + 1  # the window's coarse pixels, kernel and fill reach
        assert window.width <= pixels and window.height <= pixels, (resolution, window)


def test_the_swath_edge_does_not_bleed_into_valid_pixels(make_synthetic):
    """A flat ground beside a no-data strip: every valid pixel of every band reads the flat value."""
    flat = np.full((13, SIZE, SIZE), 1500.0)
    with open_product(make_synthetic(level="L1C", baseline="04.00", cloud_fraction=0, nodata_cols=NODATA_COLS, scene=flat)) as p:
        out = p.read(BAND_IDS)
        nodata = p.read_masks().nodata
    for i, band_id in enumerate(BAND_IDS):
        factor = {"B01": 6, "B09": 6, "B10": 6}.get(band_id, 1 if band_id in ("B02", "B03", "B04", "B08") else 2)
        first_valid = int(np.ceil(NODATA_COLS / factor - 0.5)) * factor  # first coarse pixel whose centre is outside the strip
        assert np.isnan(out[i][:, :first_valid]).all(), band_id
        np.testing.assert_allclose(out[i][:, first_valid:], 1500.0, atol=1e-3, err_msg=band_id)
    np.testing.assert_array_equal(nodata, np.arange(SIZE)[None, :].repeat(SIZE, 0) < NODATA_COLS)


def test_saturated_pixels_read_as_no_data(l1c_old, tmp_path):
    product = copy_product(l1c_old, tmp_path)
    truth = scene()
    img = granule(product) / "IMG_DATA"
    b04 = truth.band_dn("B04").copy()
    b04[100, 150] = 65535
    write_jp2(next(img.glob("*_B04.jp2")), b04, 10)
    b05 = truth.band_dn("B05").copy()
    b05[50, 75] = 65535
    write_jp2(next(img.glob("*_B05.jp2")), b05, 20)
    with open_product(product) as p:
        out = p.read(["B04", "B05"])
    assert np.isnan(out[0, 100, 150]) and np.isfinite(out[0, 99:102, 149:152]).sum() == 8
    assert np.isnan(out[1, 100:102, 150:152]).all()
    neighbours = out[1, 96:106, 146:156]
    assert np.isfinite(neighbours).sum() == 100 - 4 and np.nanmax(neighbours) < 10000  # no 65535 ringing


def test_no_data_is_the_swath_edge_in_every_mask_source(l1c_old, l1c_new, l2a_new):
    edge = np.arange(SIZE)[None, :].repeat(SIZE, 0) < NODATA_COLS
    for path in (l1c_old, l1c_new, l2a_new):
        with open_product(path) as p:
            masks = p.read_masks()
        assert isinstance(masks, Masks)
        np.testing.assert_array_equal(masks.nodata, edge)
        assert not masks.cloud[edge].any()
    with open_product(l2a_new) as p:
        info = p.info()
    assert info["valid_fraction"] == pytest.approx(1 - NODATA_COLS / SIZE)


def test_detector_footprint_raster_marks_no_data(l1c_new, tmp_path):
    product = copy_product(l1c_new, tmp_path)
    detfoo = granule(product) / "QI_DATA" / "MSK_DETFOO_B04.jp2"
    with rasterio.open(detfoo) as src:
        footprint = src.read(1)
    footprint[:10] = 0  # the first 10 rows fall outside every detector, though their DN are valid
    write_jp2(detfoo, footprint, 10)
    with open_product(product) as p:
        nodata = p.read_masks().nodata
    assert nodata[:10].all() and not nodata[10:, NODATA_COLS:].any()


def test_detector_footprint_polygons_mark_no_data(l1c_old, tmp_path):
    product = copy_product(l1c_old, tmp_path)
    detfoo = granule(product) / "QI_DATA" / "MSK_DETFOO_B04.gml"
    # one detector polygon over all but the bottom 30 rows (y 5897640-5897940) and the swath edge
    x0, x1, y0, y1 = 300000 + NODATA_COLS * 10, 302400, 5897940, 5900040
    ring = f"{x0} {y1} 0 {x1} {y1} 0 {x1} {y0} 0 {x0} {y0} 0 {x0} {y1} 0"
    text = detfoo.read_text()
    start, end = text.index("<eop:maskMembers>"), text.index("</eop:maskMembers>")
    member = (
        '<eop:maskMembers><eop:MaskFeature gml:id="detector_footprint-B04-03-0"><eop:maskType>DETECTOR_FOOTPRINT</eop:maskType>'
        f'<eop:extentOf><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList srsDimension="3">{ring}</gml:posList>'
        "</gml:LinearRing></gml:exterior></gml:Polygon></eop:extentOf></eop:MaskFeature>"
    )
    detfoo.write_text(text[:start] + member + text[end:])
    with open_product(product) as p:
        nodata = p.read_masks().nodata
    assert nodata[-30:].all() and not nodata[:-30, NODATA_COLS:].any()


def test_l2a_clouds_come_from_the_20m_scl(l2a_new):
    truth = scene()
    expected = np.kron(np.isin(truth.scl20, sorted(SCL_CLOUD_CLASSES)), np.ones((2, 2), bool))
    with open_product(l2a_new) as p:
        masks = p.read_masks()
    assert masks.cloud_source == "SCL"
    np.testing.assert_array_equal(masks.cloud, expected & ~masks.nodata)
    assert 0.1 < masks.cloud[~masks.nodata].mean() < 0.6


@pytest.mark.parametrize("fixture, source", [("l1c_new", "MSK_CLASSI_B00"), ("l1c_old", "MSK_CLOUDS_B00")])
def test_l1c_clouds_come_from_the_classification_raster_or_the_gml(request, fixture, source):
    truth = scene()
    scl60 = truth.scl20[1::3, 1::3]
    cloud60 = np.isin(scl60, [8, 9, 10])  # opaque (medium and high probability) and cirrus
    with open_product(request.getfixturevalue(fixture)) as p:
        masks = p.read_masks()
    assert masks.cloud_source == source
    np.testing.assert_array_equal(masks.cloud, np.kron(cloud60, np.ones((6, 6), bool)) & ~masks.nodata)
    assert masks.cloud.any()


def test_a_product_without_cloud_mask_says_so_and_reads_on(l1c_old, tmp_path, caplog):
    product = copy_product(l1c_old, tmp_path)
    (granule(product) / "QI_DATA" / "MSK_CLOUDS_B00.gml").unlink()
    with caplog.at_level("WARNING"), open_product(product, clouds="product") as p:  # auto may detect them: test_clouds.py
        masks = p.read_masks()
        info = p.info()
    assert masks.cloud is None and masks.cloud_source is None
    assert info["cloud_source"] is None and info["cloud_fraction"] is None
    assert "no cloud mask" in caplog.text


def test_l2a_has_no_b10(l2a_new):
    with open_product(l2a_new) as p, pytest.raises(BandError, match="Level-2A products have no B10") as info:
        p.read(["B04", "B10"])
    assert isinstance(info.value, KeyError) and isinstance(info.value, ProductError)
    assert str(info.value).startswith(str(l2a_new))


def test_l2a_reads_each_band_at_its_native_resolution(l2a_new):
    with open_product(l2a_new) as p:
        assert [p.native_resolution(b) for b in ("B04", "B05", "B01", "B09")] == [10, 20, 60, 60]  # not B01_20m


def test_l2a_that_kept_only_r60m_uses_it_and_says_so(l2a_r60m, caplog):
    truth = scene()
    with caplog.at_level("INFO"), open_product(l2a_r60m) as p:
        assert p.native_resolution("B04") == p.native_resolution("B05") == 60
        out = p.read(["B04"])[0]
        assert "B08" not in p.bands_available
    assert "only coarser than native in this product: B02 at 60 m" in caplog.text and "B05 at 60 m" in caplog.text
    assert "B08 not in this product (no file at any resolution)" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # classify warns for the bands its model reads
    coarse = truth.band_dn("B04", 60)
    expected = upsample_cubic(coarse, 6, data_window=Window(0, 0, 40, 40), window=Window(0, 0, SIZE, SIZE),
                              coarse_shape=(40, 40), valid=coarse > 0)
    np.testing.assert_array_equal(out, expected)


def test_a_band_missing_at_every_resolution_is_reported_when_asked_for(l2a_new, tmp_path, caplog):
    product = copy_product(l2a_new, tmp_path)
    for path in (granule(product) / "IMG_DATA").rglob("*_B05_*.jp2"):
        path.unlink()
    with caplog.at_level("INFO"), open_product(product) as p:
        assert "B05" not in p.bands_available
        with pytest.raises(BandError, match=r"B05 is not available: its file .*_B05_20m\.jp2 .* is missing"):
            p.read(["B05"])
        assert p.info()["bands_missing"] == {"B05": p._source.missing["B05"]}
    assert "B05 not in this product" in caplog.text


@pytest.mark.parametrize("band_id", ["B13", "red", ""])
def test_unknown_bands_are_band_errors(l1c_old, band_id):
    with open_product(l1c_old) as p, pytest.raises(BandError, match="unknown band"):
        p.read([band_id])


def test_band_ids_are_case_insensitive_and_a_single_id_is_accepted(l1c_old):
    with open_product(l1c_old) as p:
        np.testing.assert_array_equal(p.read(["b8a"]), p.read("B8A"))


@pytest.mark.parametrize(
    "window", [Window(-1, 0, 10, 10), Window(235, 0, 10, 10), Window(0, 0, 0, 5), Window(0.5, 0, 10, 10)], ids=str
)
def test_windows_outside_the_grid_are_refused(l1c_old, window):
    with open_product(l1c_old) as p, pytest.raises(ProductError, match="window"):
        p.read(["B04"], window)


def test_info_is_json_and_agrees_with_the_masks(l2a_new):
    with open_product(l2a_new) as p:
        info = json.loads(json.dumps(p.info()))
        masks = p.read_masks()
    assert info["grid"]["epsg"] == 32633 and info["grid"]["transform"] == [10.0, 0.0, 300000.0, 0.0, -10.0, 5900040.0]
    assert (info["grid"]["width"], info["grid"]["height"]) == (SIZE, SIZE)
    assert info["bands_available"] == list(L2A_BANDS) and info["offset_applied"] is True
    assert info["native_resolution"]["B05"] == 20
    assert info["valid_fraction"] == pytest.approx(masks.valid.mean())
    assert info["cloud_fraction"] == pytest.approx(masks.cloud.sum() / masks.valid.sum())
    assert info["cloud_source"] == "SCL" and info["sensing_time"] == "2020-04-06T10:15:59.024000+00:00"


def test_a_zip_reads_like_the_folder_without_extracting(l1c_new, l1c_new_zip):
    before = sorted(l1c_new_zip.parent.rglob("*"))
    with open_product(l1c_new) as a, open_product(l1c_new_zip) as b:
        np.testing.assert_array_equal(a.read(BAND_IDS), b.read(BAND_IDS))
        np.testing.assert_array_equal(a.read_masks().cloud, b.read_masks().cloud)
        assert b.path == str(l1c_new_zip)
    assert sorted(l1c_new_zip.parent.rglob("*")) == before


def test_the_mtd_file_opens_its_product(l1c_old):
    with open_product(l1c_old / "MTD_MSIL1C.xml") as p:
        assert p.level == "L1C"


def test_scene_generator_is_seeded():
    a, b, c = make_scene(60, seed=5), make_scene(60, seed=5), make_scene(60, seed=6)
    np.testing.assert_array_equal(a.dn, b.dn)
    assert not np.array_equal(a.dn, c.dn)
    assert set(np.unique(a.labels)) <= set(range(len(CLASSES)))


def test_an_unusual_quantification_value_is_rescaled_to_10000(l1c_old, tmp_path):
    product = copy_product(l1c_old, tmp_path)
    mtd = product / "MTD_MSIL1C.xml"
    mtd.write_text(mtd.read_text().replace(">10000</QUANTIFICATION_VALUE>", ">20000</QUANTIFICATION_VALUE>"))
    with open_product(l1c_old) as usual, open_product(product) as unusual:
        assert unusual.quantification_value == 20000.0
        np.testing.assert_array_equal(unusual.read(["B04", "B05"]), usual.read(["B04", "B05"]) / 2)


def test_masks_leave_out_the_bands_already_read_without_decoding_them(l1c_old, l1c_new, l2a_new, monkeypatch):
    window = Window(0, 30, 200, 150)
    for path in (l1c_old, l1c_new, l2a_new):
        with open_product(path) as p:
            full = p.read_masks(window)
            nan = np.isnan(p.read(["B04", "B03", "B02"], window)).any(axis=0)
            decoded = []
            original = DatasetPool.read

            def spy(self, ref, win, indexes=None, out_shape=None):
                if out_shape is None:  # the snow test reads B03, B04 and B08 at half resolution
                    decoded.append(ref.name)
                return original(self, ref, win, indexes, out_shape)

            monkeypatch.setattr(DatasetPool, "read", spy)
            part = p.read_masks(window, read_bands=["B04", "B03", "B02"])
            monkeypatch.setattr(DatasetPool, "read", original)
        assert not any("IMG_DATA" in n and "_B04" in n for n in decoded), decoded  # (MSK_DETFOO_B04 is a mask)
        np.testing.assert_array_equal(part.nodata | nan, full.nodata | nan)
        assert full.nodata[:, :NODATA_COLS].all() and not full.nodata[:, NODATA_COLS + 2 :].any()
        np.testing.assert_array_equal(part.cloud & ~nan, full.cloud & ~nan)


def test_block_rows_are_the_files_internal_tiles_on_the_10m_grid(l2a_new):
    with open_product(l2a_new) as p:
        assert p.block_rows(["B04", "B03"]) == 64  # the fixtures write 64 x 64 JPEG 2000 tiles
        assert p.block_rows(["B04", "B05"]) == 128  # a 20 m tile covers 128 rows of the 10 m grid
        assert p.block_rows(["B01"]) == 240  # the 40 x 40 pixel 60 m file is a single tile
