"""Change a user can trust: transitions gated on confidence, judged on spectral evidence, polygons
down to a minimum mapping unit, and `s2lc change` on scenes."""

import json
import logging

import numpy as np
import pyogrio
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin
from test_change import AFTER, BEFORE, CONF_AFTER, CONF_BEFORE, HA, T1, T2, write_map

from s2lc import change
from s2lc.change import FLIP, SPECTRAL, UNCERTAIN, UNCHANGED, Evidence, change_magnitude, judge
from s2lc.change.evidence import CellStatistics
from s2lc.cli.main import cli
from s2lc.legend import EUROSAT_CLASSES
from s2lc.testing import CRS, ORIGIN, make_product

from toymodel import brightness_model

FOREST_TO_RESIDENTIAL = 18


def test_transitions_below_the_confidence_threshold_are_uncertain_not_change_nor_stable(tmp_path):
    conf = CONF_BEFORE.copy()
    conf[0, 1] = 0.3  # one of the two Forest -> Residential pixels is a guess at the first date
    result = change.compare(write_map(tmp_path, BEFORE, T1, confidence=conf),
                            write_map(tmp_path, AFTER, T2, confidence=CONF_AFTER), min_confidence=0.5, min_area_ha=0)
    assert result.reported[0, 1] == UNCERTAIN and result.reported[0, 2] == FOREST_TO_RESIDENTIAL
    assert result.codes[0, 1] == FOREST_TO_RESIDENTIAL  # as mapped
    px = result.pixels
    assert (px["changed"], px["uncertain"], px["unchanged"]) == (4, 1, 14)
    assert px["compared"] == px["unchanged"] + px["changed"] + px["uncertain"] + px["flip"] + px["spectral"]
    assert result.matrix_of("uncertain").sum() == 1
    assert np.array_equal(result.matrix_of("confident") + result.matrix_of("uncertain") + result.matrix_of("flip"),
                          result.matrix)
    forest = next(t for t in result.transitions() if t["code"] == FOREST_TO_RESIDENTIAL)
    assert (forest["pixels"], forest["uncertain_pixels"]) == (1, 1)
    labels = {c.code: c.label for c in result.classes}
    assert "uncertain" in labels[UNCERTAIN].lower()
    gdf = result.polygons()
    uncertain = gdf[gdf.status == "uncertain"]
    assert len(uncertain) == 1 and uncertain.change_code.iloc[0] == UNCERTAIN
    assert (uncertain.from_class.iloc[0], uncertain.to_class.iloc[0]) == ("Forest", "Residential")
    assert uncertain.transition_code.iloc[0] == FOREST_TO_RESIDENTIAL


def test_a_stricter_threshold_sets_more_apart_and_none_reports_all(pair_paths):
    counts = {t: change.compare(*pair_paths, min_confidence=t).pixels for t in (None, 0.7, 0.76, 0.95)}
    assert counts[None]["changed"] == counts[0.7]["changed"] == 5 and counts[None]["uncertain"] == 0
    assert counts[0.76]["changed"] == 1 and counts[0.76]["uncertain"] == 4  # only the 0.9 forest pixel clears it
    assert counts[0.95]["changed"] == 0 and counts[0.95]["uncertain"] == 5


@pytest.fixture()
def pair_paths(tmp_path):
    return (write_map(tmp_path, BEFORE, T1, confidence=CONF_BEFORE), write_map(tmp_path, AFTER, T2, confidence=CONF_AFTER))


def test_maps_without_confidence_are_reported_as_mapped_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = change.compare(write_map(tmp_path, BEFORE, T1), write_map(tmp_path, AFTER, T2))
    assert result.evidence is None and result.pixels["changed"] == 5
    assert any("no confidence raster" in r.message for r in caplog.records)


def test_spectral_evidence_marks_flips_and_spectral_change():
    codes = np.array([[UNCHANGED, UNCHANGED, FOREST_TO_RESIDENTIAL, FOREST_TO_RESIDENTIAL]], np.uint8)
    magnitude = np.array([[0.1, 2.0, 0.1, 2.0]], np.float32)  # one cell per pixel
    sure = np.ones(codes.shape, np.float32)
    out = judge(codes, Evidence(0.5, 1.0, magnitude, cell=1), (sure, sure))
    assert out.tolist() == [[UNCHANGED, SPECTRAL, FLIP, FOREST_TO_RESIDENTIAL]]
    unsure = np.full(codes.shape, 0.2, np.float32)
    out = judge(codes, Evidence(0.5, 1.0, magnitude, cell=1), (sure, unsure))
    assert out.tolist() == [[UNCHANGED, SPECTRAL, UNCERTAIN, UNCERTAIN]]  # confidence first


def test_change_magnitude_ignores_a_radiometric_shift_and_finds_a_changed_block():
    rng = np.random.default_rng(0)
    before = rng.uniform(500, 3000, (3, 64, 64)).astype(np.float32)
    before = np.kron(before[:, ::8, ::8], np.ones((8, 8), np.float32))  # 8 x 8 cells of one value each
    after = before * 1.3 + 200  # another sun, another atmosphere: a gain and an offset
    valid = np.ones((64, 64), bool)
    assert np.nanmax(change_magnitude(before, after, valid, 8)) < 1e-3
    after[:, 16:24, 40:48] = 9000  # one cell built over
    mag = change_magnitude(before, after, valid, 8)
    assert mag.shape == (8, 8) and np.nanargmax(mag) == 2 * 8 + 5
    assert mag[2, 5] > 1.0 and np.nanmedian(mag) < 0.5


def test_cell_statistics_added_in_strips_equal_one_pass():
    rng = np.random.default_rng(1)
    before, after = rng.normal(1000, 200, (2, 2, 48, 40)).astype(np.float32)
    valid = rng.random((48, 40)) > 0.1
    whole = change_magnitude(before, after, valid, 8)
    stats = CellStatistics(2, (6, 5), 8)
    for row in range(0, 48, 16):
        stats.add(row, before[:, row : row + 16], after[:, row : row + 16], valid[row : row + 16])
    np.testing.assert_allclose(stats.magnitude(), whole, rtol=1e-5)


def test_polygons_below_the_minimum_mapping_unit_are_left_out(pair_paths):
    areas = sorted(change.compare(*pair_paths, min_area_ha=0).polygons().area_ha.round(6))
    assert areas == [1 * HA, 2 * HA, 2 * HA]
    kept = change.compare(*pair_paths, min_area_ha=1.5 * HA).polygons()
    assert sorted(kept.area_ha.round(6)) == [2 * HA, 2 * HA]


def test_the_change_map_and_summary_keep_uncertain_apart(tmp_path):
    conf = CONF_BEFORE.copy()
    conf[0, 1] = 0.3
    result = change.compare(write_map(tmp_path, BEFORE, T1, confidence=conf),
                            write_map(tmp_path, AFTER, T2, confidence=CONF_AFTER), min_confidence=0.5, min_area_ha=0)
    paths = result.save(tmp_path / "out")
    with rasterio.open(paths["map"]) as src:
        assert src.read(1)[0, 1] == UNCERTAIN
        assert any(c["code"] == UNCERTAIN and "Uncertain" in c["label"] for c in json.loads(src.tags()["S2LC_LEGEND"]))
    summary = json.loads(paths["summary"].read_text())
    assert summary["pixels"]["uncertain"] == 1 and summary["evidence"] == {"min_confidence": 0.5, "min_magnitude": None}
    matrix = json.loads(paths["matrix"].read_text())
    assert np.sum(matrix["uncertain_pixels"]) == 1
    assert set(pyogrio.read_dataframe(paths["polygons"], layer="change").status) == {"change", "uncertain"}


# ---- scenes --------------------------------------------------------------------------------------


def _scene(size=192, built=False):
    """B04/B03/B02: dark on the left, bright on the right; ``built``: one bright block on the dark side."""
    dn = np.full((3, size, size), 300.0)
    dn[:, :, 128:] = 2500.0
    if built:
        dn[:, 64:128, 0:64] = 2500.0
    return dn


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """A Level-1C product, and a year later the same grid as a GeoTIFF of B04, B03, B02 with a block built over."""
    root = tmp_path_factory.mktemp("scenes")
    first = make_product(root / "a", "L1C", "02.09", size=192, cloud_fraction=0, scene=_scene())
    second = root / "b" / "scene_20210411.tif"
    second.parent.mkdir()
    profile = dict(driver="GTiff", width=192, height=192, count=3, dtype="uint16", crs=CRS,
                   transform=from_origin(*ORIGIN, 10, 10))
    with rasterio.open(second, "w", **profile) as dst:
        dst.write(_scene(built=True).astype(np.uint16))
        dst.descriptions = ("B04", "B03", "B02")
        dst.update_tags(SENSING_DATE="20210411")
    model = brightness_model(root / "toy.safetensors")
    return first, second, model


def test_is_map_tells_maps_from_scenes(scenes, tmp_path):
    first, _, _ = scenes
    assert not change.is_map(first)
    assert change.is_map(write_map(tmp_path, BEFORE, T1))


def test_two_scenes_are_classified_compared_and_weighed_on_their_bands(scenes, tmp_path):
    first, second, model = scenes
    r = CliRunner().invoke(cli, ["-q", "change", str(first), str(second), "-o", str(tmp_path / "out"),
                                 "--model", str(model), "--min-area", "0", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["evidence"]["min_magnitude"] == change.DEFAULT_MIN_MAGNITUDE
    out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sum(n.endswith("_landcover.tif") for n in out) == 2  # both maps are written beside the change
    with rasterio.open(summary["outputs"]["map"]) as src:
        codes = src.read(1)
    sea, crop = EUROSAT_CLASSES.index("SeaLake") + 1, EUROSAT_CLASSES.index("AnnualCrop") + 1
    built = codes[64:128, 0:64]
    assert (built >= 3).all() and (built < SPECTRAL).all()  # the block built over: a confident transition
    assert (codes[:64] == UNCHANGED).all() and (codes[:, 128:] == UNCHANGED).all()
    assert summary["transitions"][0]["from"] == EUROSAT_CLASSES[sea - 1]
    assert summary["transitions"][0]["to"] == EUROSAT_CLASSES[crop - 1]


def test_a_series_of_scenes_is_refused_with_a_hint(scenes, tmp_path):
    first, second, _ = scenes
    third = write_map(tmp_path, BEFORE, T1)
    r = CliRunner().invoke(cli, ["change", str(first), str(second), str(third), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "classify each scene first" in r.output
