"""Cloud masks detected with s2cloudless for Level-1C products that carry none (``clouds=``)."""

import sys
import warnings

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from test_product_geotiff import write_tif

import s2lc.clouds
import s2lc.csmask
from s2lc.classify import classify
from s2lc.cli.main import cli
from s2lc.errors import BandError, ProductError
from s2lc.product import open_product
from s2lc.sentinel2 import BAND_IDS
from s2lc.testing import CLOUD_SPECTRUM, PAINTED_CLOUD, SPECTRA, make_product, make_scene

from conftest import NODATA_COLS, copy_product
from toymodel import brightness_model

needs_s2cloudless = pytest.mark.skipif(not s2lc.clouds.available(), reason="s2cloudless is not installed")
SIZE = 480  # 40 x 40 cells of the 120 m detection grid: clouds several cells across


def granule(product):
    return next((product / "GRANULE").iterdir())


def without_mask(product, tmp_path):
    """A copy of an L1C product whose QI_DATA holds no cloud mask."""
    copy = copy_product(product, tmp_path)
    for name in ("MSK_CLOUDS_B00.gml", "MSK_CLASSI_B00.jp2"):
        mask = granule(copy) / "QI_DATA" / name
        if mask.exists():
            mask.unlink()
    return copy


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    """An L1C product with 20 % cloud painted into its bands and its MSK_CLOUDS_B00.gml."""
    return make_product(tmp_path_factory.mktemp("masked"), "L1C", "02.09", size=SIZE, nodata_cols=NODATA_COLS)


@pytest.fixture(scope="module")
def maskless(masked, tmp_path_factory):
    """The same product without its cloud mask file, and where its clouds are."""
    truth = make_scene(SIZE, 0, 0.2, NODATA_COLS)
    return (without_mask(masked, tmp_path_factory.mktemp("maskless")),
            np.kron(np.isin(truth.scl20, PAINTED_CLOUD), np.ones((2, 2), bool)))


@needs_s2cloudless
def test_auto_detects_the_clouds_of_an_l1c_product_without_a_mask(maskless, caplog):
    from scipy.ndimage import distance_transform_edt

    product, painted = maskless
    with caplog.at_level("INFO"), open_product(product) as p:
        masks = p.read_masks()
        info = p.info()
    assert p.cloud_source == masks.cloud_source == info["cloud_source"] == "s2cloudless"
    assert "detecting clouds with s2cloudless" in caplog.text and "will not be masked" not in caplog.text
    valid = masks.valid
    assert not masks.cloud[~valid].any()
    recall = (masks.cloud & painted & valid).sum() / (painted & valid).sum()
    far = (distance_transform_edt(~painted) * 10 > 1000) & valid  # over 1 km from any cloud
    assert recall > 0.95, recall
    assert masks.cloud[far].mean() < 0.02  # beyond the averaging and dilation of the cloud edges, clear stays clear
    assert info["cloud_fraction"] == pytest.approx(masks.cloud[valid].mean())


@needs_s2cloudless
def test_a_window_of_the_detected_mask_equals_the_same_region_of_the_whole(maskless):
    product, _ = maskless
    with open_product(product, clouds="s2cloudless") as p:
        whole = p.read_masks().cloud
        window = rasterio.windows.Window(101, 37, 250, 333)
        part = p.read_masks(window).cloud
    np.testing.assert_array_equal(part, whole[37:370, 101:351])


@needs_s2cloudless
def test_s2cloudless_replaces_the_products_own_mask_only_when_asked(masked):
    with open_product(masked) as auto, open_product(masked, clouds="s2cloudless") as detected:
        assert auto.cloud_source == "MSK_CLOUDS_B00" and detected.cloud_source == "s2cloudless"
        a, d = auto.read_masks(), detected.read_masks()
    assert (a.cloud & d.cloud).sum() > 0.8 * a.cloud.sum()  # the same painted clouds, found by both


def test_without_s2cloudless_auto_warns_how_to_get_it(maskless, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "s2cloudless", None)  # its import fails, as where it is not installed
    with caplog.at_level("WARNING"), open_product(maskless[0]) as p:
        assert p.read_masks().cloud is None and p.cloud_source is None
    assert "no cloud mask" in caplog.text and "(s2cloudless is not installed; pip install 's2lc[clouds]')" in caplog.text
    with pytest.raises(ProductError,
                       match=r"\.SAFE: cloud detection: s2cloudless is not installed; pip install 's2lc\[clouds\]'"):
        open_product(maskless[0], clouds="s2cloudless")
    with pytest.raises(ProductError, match="not installed"):
        s2lc.clouds.detect_clouds(np.zeros((10, 4, 4), np.float32))


def test_a_broken_lightgbm_falls_back_to_no_mask_with_the_reason(maskless, monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def failing(name, *args, **kwargs):
        if name == "s2cloudless":
            raise OSError("libgomp.so.1: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing)
    with caplog.at_level("WARNING"), open_product(maskless[0]) as p:
        assert p.cloud_source is None
    assert "s2cloudless cannot be imported (libgomp.so.1: cannot open shared object file)" in caplog.text
    with pytest.raises(ProductError, match="install the OpenMP runtime"):
        open_product(maskless[0], clouds="s2cloudless")


def test_product_and_none_modes(maskless, caplog):
    with caplog.at_level("WARNING"), open_product(maskless[0], clouds="product") as p:
        assert p.read_masks().cloud is None
    assert "no cloud mask" in caplog.text and "pip install" not in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"), open_product(maskless[0], clouds="none") as p:
        masks, info = p.read_masks(), p.info()
    assert masks.cloud is None and info["cloud_source"] is None and info["cloud_fraction"] is None
    assert "cloud" not in caplog.text  # asked for none: nothing to warn about, though it has no mask


def test_info_takes_clouds(maskless):
    result = CliRunner().invoke(cli, ["-q", "info", "--json", "--clouds", "none", str(maskless[0])])
    assert result.exit_code == 0, result.output
    assert '"cloud_source": null' in result.stdout
    result = CliRunner().invoke(cli, ["-q", "info", "--clouds", "fmask", str(maskless[0])])
    assert result.exit_code == 2 and "'fmask' is not one of 'auto', 'product', 's2cloudless', 'csmask', 'none'" in result.output


def test_q_keeps_the_no_cloud_mask_warning_and_qq_hides_it(maskless):
    command = ["info", "--json", "--clouds", "product", str(maskless[0])]
    for args, shown in ((["-q", *command], True), (["-qq", *command], False), (command, True),
                        ([*command, "-qq"], False), ([*command, "-q"], True)):  # before the command or after
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert ("WARNING" in result.stderr and "no cloud mask" in result.stderr) is shown, (args, result.stderr)


def test_s2cloudless_refuses_what_it_cannot_read(l2a_new, l1c_old, tmp_path, monkeypatch):
    monkeypatch.setattr(s2lc.clouds, "available", lambda: True)
    with pytest.raises(ProductError, match="Level-2A product's clouds are in its SCL"):
        open_product(l2a_new, clouds="s2cloudless")
    rgb = tmp_path / "rgb.tif"
    write_tif(rgb, np.full((3, 8, 8), 1000, np.uint16), descriptions=["B04", "B03", "B02"])
    with pytest.raises(BandError, match="s2cloudless needs B01, B05, B08, B8A, B09, B10, B11, B12, which the product lacks"):
        open_product(rgb, clouds="s2cloudless")
    with pytest.raises(ProductError, match="unknown cloud mask source 'fmask'"):
        open_product(l1c_old, clouds="fmask")
    degrees = tmp_path / "degrees.tif"
    write_tif(degrees, np.full((10, 8, 8), 1000, np.uint16), descriptions=list(s2lc.clouds.BANDS), crs="EPSG:4326",
              transform=rasterio.Affine(0.001, 0, 13, 0, -0.001, 52))
    with open_product(degrees, clouds="s2cloudless") as p:  # warped to UTM on read, so detection runs in metres
        assert p.grid.crs.to_epsg() == 32633 and p.cloud_source == "s2cloudless"


@needs_s2cloudless
def test_the_detected_mask_lines_up_with_a_grid_of_any_shape(tmp_path, monkeypatch):
    """A GeoTIFF of 250 x 370 pixels (not a multiple of the 12-pixel cell) with one cloud
    rectangle: without averaging and dilation, the mask's edges are within a cell of the cloud's."""
    monkeypatch.setattr(s2lc.clouds, "AVERAGE_OVER", 0)
    monkeypatch.setattr(s2lc.clouds, "DILATION", 0)
    index = [BAND_IDS.index(b) for b in s2lc.clouds.BANDS]
    data = np.empty((10, 250, 370), np.uint16)
    data[:] = SPECTRA[2, index][:, None, None]  # crop
    data[:, 60:150, 200:330] = CLOUD_SPECTRUM[index][:, None, None]
    path = tmp_path / "l1c_export.tif"
    write_tif(path, data, descriptions=list(s2lc.clouds.BANDS))
    with open_product(path, clouds="s2cloudless") as p:
        cloud = p.read_masks().cloud
    rows, cols = np.nonzero(cloud)
    assert abs(rows.min() - 60) <= 12 and abs(rows.max() - 149) <= 12
    assert abs(cols.min() - 200) <= 12 and abs(cols.max() - 329) <= 12
    assert cloud[72:138, 212:318].all() and not cloud[:48].any() and not cloud[:, :188].any()


def test_auto_on_a_geotiff_suggests_detection_only_when_it_has_the_bands(tmp_path, caplog):
    """A GeoTIFF does not say that it is Level-1C, so ``auto`` does not detect; with the ten bands
    the warning says how to ask for detection, without them it does not offer what would fail."""
    data = np.full((10, 24, 24), 1500, np.uint16)
    full = write_tif(tmp_path / "ten.tif", data, descriptions=list(s2lc.clouds.BANDS))
    rgb = write_tif(tmp_path / "rgb.tif", data[:3], descriptions=["B04", "B03", "B02"])
    with caplog.at_level("WARNING"), open_product(full) as p:
        assert p.cloud_source is None
    assert "ten.tif: a GeoTIFF carries no cloud mask" in caplog.text and "clouds='s2cloudless' detects them" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"), open_product(rgb) as p:
        assert p.cloud_source is None
    assert "rgb.tif: a GeoTIFF carries no cloud mask" in caplog.text and "s2cloudless" not in caplog.text


@pytest.mark.parametrize("fixture", ["l1c_old", "l1c_new"])  # the 04.00 offset is removed as read() removes it
def test_read_averaged_gives_block_means_and_nan_where_a_cell_has_no_data(fixture, request):
    with open_product(request.getfixturevalue(fixture)) as p:
        fine = p.read(["B04", "B8A", "B10"])  # 10, 20 and 60 m files
        coarse = p.read_averaged(["B04", "B8A", "B10"], (20, 20))  # cells of 12 x 12 pixels
    assert coarse.shape == (3, 20, 20)
    cells = fine.reshape(3, 20, 12, 20, 12)
    assert np.isnan(coarse[:, :, : NODATA_COLS // 12]).all()  # every pixel of those cells is no data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the cells with no data at all
        expected = np.nanmean(cells, axis=(2, 4))
        spread = np.nanstd(cells, axis=(2, 4))
    # GDAL decodes the JPEG 2000 at a coarser resolution level and averages that, whose pixels do
    # not line up with the cells: near the block means, and close where a cell is of one kind
    even = np.isfinite(cells).all(axis=(2, 4)) & (spread < 0.05 * expected)
    assert even.sum() > 400  # of 3 x 20 x 20 cells
    np.testing.assert_allclose(coarse[even], expected[even], rtol=0.1)
    assert np.corrcoef(coarse[np.isfinite(coarse)], expected[np.isfinite(coarse)])[0, 1] > 0.98


@needs_s2cloudless
def test_classify_marks_detected_clouds_and_records_where_they_came_from(maskless, tmp_path):
    product, painted = maskless
    toy = brightness_model(tmp_path / "toy.safetensors")
    res = classify(product, toy)
    assert res.provenance["cloud_source"] == "s2cloudless" and res.stats["patches"]["cloud"] > 0
    none = classify(product, toy, clouds="none")
    assert none.provenance["cloud_source"] is None and none.stats["patches"]["cloud"] == 0
    paths = res.save(tmp_path / "out")
    with rasterio.open(paths["map"]) as src:
        assert src.tags()["S2LC_CLOUD_SOURCE"] == "s2cloudless"
    result = CliRunner().invoke(cli, ["-q", "classify", str(product), "-o", str(tmp_path / "cli"), "--model", str(toy),
                                      "--clouds", "none", "--json"])
    assert result.exit_code == 0, result.output
    assert '"cloud_source": null' in result.stdout


@pytest.mark.realdata
@needs_s2cloudless
def test_the_cloud_streak_of_the_real_l1c_crop_is_masked(real_l1c):
    """The T33UUU crop carries no QI_DATA; its cloud streak runs from the top centre (columns
    660-1000, rows 0-400 of the 1536 x 768 grid) and s2cloudless finds it."""
    with open_product(real_l1c) as p:
        masks = p.read_masks()
        water = p.read(["B08"])[0] < 1000
    assert masks.cloud_source == "s2cloudless"
    assert masks.cloud[50:350, 700:950].mean() > 0.9
    assert 0.1 < masks.cloud.mean() < 0.3
    assert masks.cloud[water].mean() < 0.1  # the lakes are not taken for cloud


@pytest.fixture(scope="module")
def maskless_twins(tmp_path_factory):
    """One scene as a 02.09 product and as its >= 04.00 reprocessing (DN + 1000, offsets in the
    MTD), neither with a cloud mask."""
    return tuple(without_mask(make_product(tmp_path_factory.mktemp(f"twin{baseline}"), "L1C", baseline, size=SIZE,
                                           nodata_cols=NODATA_COLS), tmp_path_factory.mktemp(f"maskless{baseline}"))
                 for baseline in ("02.09", "04.00"))


def test_exact_averages_are_block_means_and_the_same_for_both_baselines(maskless_twins):
    old, new = maskless_twins
    with open_product(old) as p, open_product(new) as q:
        assert (p.offsets["B04"], q.offsets["B04"]) == (0.0, -1000.0)
        averaged = p.read_averaged(s2lc.clouds.BANDS, (40, 40), exact=True)
        assert np.array_equal(averaged, q.read_averaged(s2lc.clouds.BANDS, (40, 40), exact=True), equal_nan=True)
        fine = p.read(["B04"])[0]
    cells = fine.reshape(40, 12, 40, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells with no data at all
        expected = np.nanmean(cells, axis=(1, 3))
    b04 = s2lc.clouds.BANDS.index("B04")
    np.testing.assert_allclose(averaged[b04], expected, rtol=1e-6)  # NaN in the same cells
    assert np.isnan(averaged[b04][:, : NODATA_COLS // 12]).all()


def test_exact_averages_of_a_coarser_grid_than_the_file_take_the_pixel_under_each_cell(maskless_twins):
    with open_product(maskless_twins[0]) as p:  # baseline 02.09: values are the DN, 0 is no data
        b10 = p.read_averaged(["B10"], (120, 120), exact=True)[0]  # B10 is 60 m: 80 x 80 pixels
    with rasterio.open(next(granule(maskless_twins[0]).glob("IMG_DATA/*_B10.jp2"))) as f:
        dn = f.read(1).astype(np.float32)
    centre = ((np.arange(120) + 0.5) * 80 / 120).astype(int)  # the pixel under each cell's centre
    under = dn[np.ix_(centre, centre)]
    under[under == 0] = np.nan
    assert np.array_equal(b10, under, equal_nan=True) and np.isfinite(b10).any()


@needs_s2cloudless
def test_s2cloudless_maps_a_product_and_its_reprocessed_twin_identically(maskless_twins, tmp_path):
    toy = brightness_model(tmp_path / "toy.safetensors")
    maps = []
    for product in maskless_twins:
        with open_product(product, clouds="s2cloudless") as p:
            fraction = p.mask_fractions()["cloud_fraction"]
            maps.append((fraction, classify(p, toy).class_map))
    (f_old, map_old), (f_new, map_new) = maps
    assert 0.1 < f_old == f_new and np.array_equal(map_old, map_new)


# --------------------------------------------------------------------------------------------
# ukis-csmask: cloud and cloud shadow, on the real demo scene (a CNN needs real texture: it
# finds nothing in the synthetic products' flat painted blocks)

needs_csmask = pytest.mark.skipif(s2lc.csmask.unavailable() is not None, reason="ukis-csmask is not installed")


@needs_csmask
@needs_s2cloudless
def test_csmask_masks_the_real_crops_cloud_streak_and_records_itself():
    from s2lc.demo import demo_product

    with open_product(demo_product(), clouds="csmask") as p:
        masks = p.read_masks()
        assert p.cloud_source == masks.cloud_source == p.info()["cloud_source"] == "csmask"
    with open_product(demo_product(), clouds="s2cloudless") as p:
        streak = p.read_masks().cloud
    # measured: 21 % flagged (cloud and shadow), 61 % of what s2cloudless calls cloud among it
    assert 0.1 < masks.cloud.mean() < 0.35 and masks.cloud[streak].mean() > 0.5


def test_csmask_refuses_what_it_cannot_read_and_says_how_to_install(l1c_old, tmp_path, monkeypatch):
    rgb = write_tif(tmp_path / "rgb.tif", np.full((3, 8, 8), 1000, np.uint16), descriptions=["B04", "B03", "B02"])
    monkeypatch.setattr(s2lc.csmask, "unavailable", lambda: None)
    with pytest.raises(BandError, match="cloud detection with csmask needs B8A, B11, B12, which the product lacks"):
        open_product(rgb, clouds="csmask")
    monkeypatch.setattr(s2lc.csmask, "unavailable", lambda: "ukis-csmask (with onnxruntime) is not installed; "
                                                             + s2lc.csmask.INSTALL_HINT)
    with pytest.raises(ProductError, match=r"cloud detection: ukis-csmask .* not installed; pip install 's2lc\[csmask\]'"):
        open_product(l1c_old, clouds="csmask")


@needs_csmask
def test_csmask_does_not_grow_cloud_from_no_data():
    """Cells next to no data are judged on their own: the package's buffer grows from no data too,
    so s2lc buffers cloud and shadow itself."""
    from s2lc.demo import demo_product

    with open_product(demo_product(), clouds="none") as p:
        reflectance = p.read_averaged(s2lc.csmask.BANDS, (256, 512), exact=True) / np.float32(10000)
    whole = s2lc.csmask.detect_clouds(reflectance)
    cut = reflectance.copy()
    cut[:, :, :20] = np.nan
    edged = s2lc.csmask.detect_clouds(cut)
    assert not edged[:, :20].any()
    next_to = slice(20, 24)
    assert edged[:, next_to].mean() <= whole[:, next_to].mean() + 0.1  # not a band of cloud along the edge
