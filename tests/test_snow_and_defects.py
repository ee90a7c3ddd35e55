"""Snow and ice, saturated and defective pixels: masked, coded in the map, counted in the provenance."""

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from s2lc.change import NOT_COMPARED, UNCHANGED, categories, compare_arrays
from s2lc.classify import classify, output_paths
from s2lc.cli.main import cli
from s2lc.legend import CLOUD, EUROSAT_CLASSES, SNOW_ICE, default_legend
from s2lc.masks import ndsi_snow, scl_cloud, scl_defective, scl_snow
from s2lc.mosaic import Mosaic
from s2lc.product import open_product
from s2lc.sentinel2 import SCL
from s2lc.testing import make_product
from s2lc.tiling import TileGrid

from toymodel import brightness_model

SIZE = 240
SPLIT = 128  # dark ground left of it, bright ground (under snow) right of it
SNOW_COLS = SIZE - SPLIT  # the last two columns of patches, whole
SATURATED_ROWS = 10
DEFECTIVE_ROWS = 12
DARK = EUROSAT_CLASSES.index("SeaLake") + 1


def halves():
    dn = np.full((3, SIZE, SIZE), 300.0)
    dn[:, :, SPLIT:] = 2500.0
    return dn


def product(root, level="L1C", baseline="02.09", **kwargs):
    return make_product(root, level, baseline, size=SIZE, cloud_fraction=0, scene=halves(), snow_cols=SNOW_COLS,
                        saturated_rows=SATURATED_ROWS, **kwargs)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return brightness_model(tmp_path_factory.mktemp("model") / "toy.safetensors")


def test_ndsi_finds_snow_but_not_water_cloud_or_dark_ground():
    #                 snow  water  turbid river  cloud  dark ground  no data
    green = np.array([0.85, 0.08, 0.15, 0.55, 0.07, np.nan])
    red = np.array([0.83, 0.05, 0.17, 0.56, 0.06, 0.5])
    nir = np.array([0.77, 0.03, 0.126, 0.58, 0.06, 0.5])
    swir = np.array([0.06, 0.01, 0.017, 0.40, 0.01, 0.1])
    assert ndsi_snow(green, red, nir, swir).tolist() == [True, False, False, False, False, False]


def test_scl_snow_and_defective_are_their_own_classes_not_cloud():
    scl = np.array([[SCL.SNOW, SCL.SATURATED_OR_DEFECTIVE, SCL.CLOUD_HIGH_PROBABILITY, SCL.VEGETATION]], np.uint8)
    assert scl_snow(scl).tolist() == [[True, False, False, False]]
    assert scl_defective(scl).tolist() == [[False, True, False, False]]
    assert scl_cloud(scl).tolist() == [[False, False, True, False]]


def test_the_legend_codes_snow_or_ice_as_12_after_cloud():
    legend = default_legend()
    assert (legend.cloud_code, legend.snow_code) == (CLOUD, SNOW_ICE) == (11, 12)
    assert legend.by_code(12).label == "Snow or ice"
    assert [c.name for c in legend.land_cover] == list(EUROSAT_CLASSES)


def test_a_masked_cell_is_snow_where_it_holds_more_snow_than_cloud():
    mosaic = Mosaic(TileGrid(128, 128, 64, 64), 10)
    mosaic.valid[:] = 4096
    mosaic.snowy[0, 1] = mosaic.snowy[1, 1] = True
    codes, conf = mosaic.finish(CLOUD, SNOW_ICE)
    assert codes.tolist() == [[CLOUD, SNOW_ICE], [CLOUD, SNOW_ICE]] and np.isnan(conf).all()


@pytest.mark.parametrize("baseline, quality", [("02.09", False), ("04.00", True), ("04.00", False)])
def test_l1c_snow_and_saturation_are_coded_alike_at_every_baseline(tmp_path, toy, baseline, quality):
    res = classify(product(tmp_path, "L1C", baseline, quality_masks=quality), toy)
    m = res.class_map
    assert (m[:SATURATED_ROWS] == 0).all()  # saturated in B04: no measurement
    assert (m[SATURATED_ROWS:, SPLIT:] == SNOW_ICE).all()
    assert (m[SATURATED_ROWS:, :SPLIT] == DARK).all()
    assert np.isnan(res.confidence[:, SPLIT:]).all()
    p = res.provenance
    assert p["snow_source"] == "NDSI"
    assert p["snow_fraction"] == pytest.approx(SNOW_COLS * (SIZE - SATURATED_ROWS) / SIZE**2)
    assert p["saturated_fraction"] == pytest.approx(SATURATED_ROWS / SIZE)
    assert p["defective_fraction"] == 0.0
    assert res.stats["patches"]["snow"] == 8 and res.stats["map_snow_fraction"] == pytest.approx(
        SNOW_COLS * (SIZE - SATURATED_ROWS) / SIZE**2)
    tags = res.tags()
    assert tags["S2LC_SNOW_SOURCE"] == "NDSI" and float(tags["S2LC_SATURATED_FRACTION"]) == pytest.approx(10 / 240, abs=1e-6)


def test_a_twin_without_quality_masks_gives_the_same_map_where_nothing_is_defective(tmp_path, toy):
    flagged = classify(product(tmp_path / "a", "L1C", "04.00", defective_rows=DEFECTIVE_ROWS), toy)
    plain = classify(product(tmp_path / "b", "L1C", "04.00", quality_masks=False), toy)
    old = classify(product(tmp_path / "c", "L1C", "02.09"), toy)
    np.testing.assert_array_equal(plain.class_map, old.class_map)
    np.testing.assert_array_equal(flagged.class_map[:-DEFECTIVE_ROWS], plain.class_map[:-DEFECTIVE_ROWS])
    assert (flagged.class_map[-DEFECTIVE_ROWS:] == 0).all()  # defective in B03's MSK_QUALIT
    assert (plain.class_map[-DEFECTIVE_ROWS:, :SPLIT] == DARK).all()
    assert flagged.provenance["defective_fraction"] == pytest.approx(DEFECTIVE_ROWS / SIZE)
    assert plain.provenance["defective_fraction"] == 0.0


def test_l2a_snow_and_defects_come_from_the_scl(tmp_path, toy):
    path = product(tmp_path, "L2A", "04.00")
    with open_product(path) as p:
        masks = p.read_masks()
        assert p.snow_source == "SCL"
        assert masks.snow[SATURATED_ROWS:, SPLIT:].all() and not masks.snow[:, :SPLIT].any()
        assert masks.defective[:SATURATED_ROWS].all() and not masks.defective[SATURATED_ROWS:].any()
        assert not masks.cloud.any()  # SCL class 1 is no longer cloud
    res = classify(path, brightness_model(tmp_path / "l2a.safetensors", level="L2A"))
    assert (res.class_map[:SATURATED_ROWS] == 0).all()
    assert (res.class_map[SATURATED_ROWS:, SPLIT:] == SNOW_ICE).all()
    assert res.provenance["snow_source"] == "SCL"


def test_masks_are_disjoint_and_info_reports_their_fractions(tmp_path):
    path = make_product(tmp_path, "L1C", "04.00", size=SIZE, cloud_fraction=0.3, seed=2, snow_cols=60,
                        saturated_rows=SATURATED_ROWS, nodata_cols=30)
    with open_product(path) as p:
        m = p.read_masks()
        info = p.info()
    assert not (m.snow & m.cloud).any() and not (m.snow & m.nodata).any() and not (m.saturated & m.nodata).any()
    assert m.snow.any() and info["snow_source"] == "NDSI" and info["quality_masks"]
    assert info["snow_fraction"] == pytest.approx(m.snow.sum() / m.valid.sum())
    assert info["saturated_fraction"] == pytest.approx(m.saturated.sum() / m.valid.sum())
    r = CliRunner().invoke(cli, ["info", str(path)])
    assert r.exit_code == 0, r.output
    assert f"snow or ice   {100 * info['snow_fraction']:.1f} % of valid pixels, from NDSI" in r.output
    assert "(MSK_QUALIT)" in r.output


def test_the_saved_map_styles_snow_and_the_summary_counts_it(tmp_path, toy):
    res = classify(product(tmp_path, "L1C", "04.00"), toy)
    paths = res.save(tmp_path / "out")
    with rasterio.open(paths["map"]) as src:
        assert src.colormap(1)[SNOW_ICE][:3] == (150, 220, 245)
    assert 'label="Snow or ice"' in paths["map"].with_suffix(".qml").read_text()
    summary = json.loads(output_paths(tmp_path / "out", res.product_id)["summary"].read_text())
    assert summary["stats"]["area_ha"]["SnowIce"] == pytest.approx(SNOW_COLS * (SIZE - SATURATED_ROWS) / 100)


def test_snow_is_not_compared_in_a_change_map():
    legend = default_legend().classes
    before = np.array([[2, 2, SNOW_ICE, 0]], np.uint8)
    after = np.array([[2, SNOW_ICE, 2, 2]], np.uint8)
    codes, matrix = compare_arrays(before, after, legend)
    assert codes.tolist() == [[UNCHANGED, NOT_COMPARED, NOT_COMPARED, 0]]
    names = categories(legend)
    assert names[-3:] == ["Cloud", "SnowIce", "NoData"]
    snow = names.index("SnowIce")
    assert matrix[1, snow] == 1 and matrix[snow, 1] == 1 and matrix.shape == (13, 13)
