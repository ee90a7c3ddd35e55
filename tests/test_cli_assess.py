"""``s2lc assess``: Olofsson et al. (2014) Table 8 end to end, the outputs, and every refusal."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from matplotlib.image import imread
from test_sampling import CRS_UTM, LAYER, TRANSFORM, label, points, run, write_classification

from s2lc import writers
from s2lc.legend import CLOUD, LandCoverClass

# Olofsson et al. (2014) Table 8: a change map of 30 m pixels, and the reference labels of its sample.
TABLE8_CLASSES = (
    LandCoverClass(1, "Deforestation", "Deforestation", (215, 48, 39)),
    LandCoverClass(2, "ForestGain", "Forest gain", (26, 152, 80)),
    LandCoverClass(3, "StableForest", "Stable forest", (0, 90, 50)),
    LandCoverClass(4, "StableNonForest", "Stable non-forest", (230, 220, 170)),
)
TABLE8_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
TABLE8_ROWS = (100, 75, 1600, 3225)  # rows of 2000 pixels: 200 000, 150 000, 3 200 000 and 6 450 000 pixels


def table8_map(path: Path) -> Path:
    data = np.repeat(np.arange(1, 5, dtype=np.uint8), TABLE8_ROWS)[:, None].repeat(2000, axis=1)
    return writers.write_class_map(path, data, Affine(30, 0, 500_000, 0, -30, 6_000_000), CRS_UTM,
                                   TABLE8_CLASSES, kind="change")


def label_as_table8(samples: Path) -> None:
    """Give each stratum's points the reference classes of its Table 8 row."""
    gdf = points(samples)
    refs = {}
    for code, row in enumerate(TABLE8_COUNTS, start=1):
        fids = sorted(gdf.index[gdf["map_code"] == code])
        refs.update(zip(fids, np.repeat(np.arange(1, 5), row).tolist()))
    label(samples, refs)


@pytest.fixture(scope="module")
def table8(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("table8")
    map_path = table8_map(folder / "change.tif")
    samples = folder / "t8.gpkg"
    r = run("-q", "sample", map_path, "-o", samples, "--counts", "1=75,2=75,3=165,4=325", "--seed", 2014)
    assert r.exit_code == 0, r.output
    label_as_table8(samples)
    return map_path, samples


def test_assess_reproduces_table8_of_olofsson_et_al_2014(table8):
    r = run("-q", "assess", *table8, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["total_area_ha"] == 900_000 and s["points"] == {"total": 640, "labelled": 640, "unlabelled": 0}
    assert s["error_matrix"]["counts"] == TABLE8_COUNTS
    per = s["per_class"]
    assert [round(c["area_ha"]["estimate"]) for c in per] == [21_158, 11_686, 285_770, 581_386]
    assert [round(c["area_ha"]["ci95"]) for c in per] == [6_158, 3_756, 15_510, 16_282]
    oa = s["overall_accuracy"]
    assert (round(oa["estimate"], 2), round(oa["ci95"], 2)) == (0.95, 0.02)
    assert [round(c["users_accuracy"]["estimate"], 2) for c in per] == [0.88, 0.73, 0.93, 0.96]
    assert [round(c["users_accuracy"]["ci95"], 2) for c in per] == [0.07, 0.10, 0.04, 0.02]
    assert [round(c["producers_accuracy"]["estimate"], 2) for c in per] == [0.75, 0.85, 0.93, 0.96]
    assert [c["mapped_area_ha"] for c in per] == [18_000, 13_500, 288_000, 580_500]


def test_the_text_report_and_the_files_written_with_o(table8, tmp_path):
    out = tmp_path / "report"
    r = run("assess", *table8, "-o", out)
    assert r.exit_code == 0, r.output
    assert "overall accuracy 0.947 ± 0.018 (95 % CI)" in r.stdout
    assert "Deforestation" in r.stdout and "21,157.76 ± 6,157.63" in r.stdout
    assert f"wrote 4 files to {out}" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["t8_accuracy.csv", "t8_accuracy.json", "t8_areas.png",
                                                     "t8_error_matrix.csv"]
    summary = json.loads((out / "t8_accuracy.json").read_text())
    assert summary["outputs"]["figure"] == "t8_areas.png" and summary["map_kind"] == "change"
    with open(out / "t8_accuracy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [c.name for c in TABLE8_CLASSES]
    assert round(float(rows[0]["area_ha"])) == 21_158 and round(float(rows[0]["area_ha_ci95"])) == 6_158
    with open(out / "t8_error_matrix.csv", newline="") as f:
        matrix = list(csv.reader(f))
    assert matrix[0] == ["quantity", "map_code", "map_class", "Deforestation", "ForestGain", "StableForest",
                         "StableNonForest", "total"]
    proportions = np.array([[float(v) for v in row[3:]] for row in matrix[1:5]])
    assert proportions[0].tolist() == pytest.approx([0.0176, 0, 0.02 * 5 / 75, 0.02 * 4 / 75, 0.02])
    assert [row[:3] for row in matrix[5:7]] == [["area_proportion", "", "total"], ["count", "1", "Deforestation"]]
    assert [int(v) for v in matrix[-1][3:]] == [69, 56, 175, 340, 640]
    image = imread(out / "t8_areas.png")
    assert image.ndim == 3 and image.shape[0] > 200

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = run("-q", "assess", *table8, "-o", out)
    assert r.exit_code == 1 and "already exist" in r.output and "--overwrite" in r.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert run("-q", "assess", *table8, "-o", out, "--overwrite").exit_code == 0


# ---- a classification map, and the checks ----------------------------------------------------


@pytest.fixture()
def sampled(tmp_path) -> tuple[Path, Path]:
    map_path = write_classification(tmp_path / "maps")
    samples = tmp_path / "s.gpkg"
    r = run("-q", "sample", map_path, "-o", samples, "--counts", "1=6,2=6,8=4", "--seed", 3)
    assert r.exit_code == 0, r.output
    return map_path, samples


def label_all_as_mapped(samples: Path) -> dict[int, int]:
    gdf = points(samples)
    refs = dict(zip(gdf.index.tolist(), gdf["map_code"].tolist()))
    label(samples, refs)
    return refs


def refused(*args) -> str:
    r = run("-q", "assess", *args)
    assert r.exit_code == 1, r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    return r.output


def test_a_classification_map_labelled_as_mapped_is_fully_accurate(sampled):
    label_all_as_mapped(sampled[1])
    r = run("-q", "assess", *sampled, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["overall_accuracy"]["estimate"] == 1 and s["overall_accuracy"]["ci95"] == 0
    assert [c["code"] for c in s["per_class"]] == [1, 2, 8]
    assert s["notes"] == ["left out of the area assessed (masks not sampled): Cloud, Snow or ice"]
    mapped = sum(c["mapped_area_ha"] for c in s["per_class"])
    assert s["total_area_ha"] == pytest.approx(mapped)
    assert [c["area_ha"]["estimate"] for c in s["per_class"]] == pytest.approx([c["mapped_area_ha"]
                                                                                for c in s["per_class"]])


def test_a_reference_class_the_map_does_not_hold_gets_a_column(sampled):
    refs = label_all_as_mapped(sampled[1])
    first_forest = next(f for f, c in refs.items() if c == 2)
    label(sampled[1], {first_forest: 6})  # pasture: in the legend, not on the map
    r = run("-q", "assess", *sampled, "--json")
    assert r.exit_code == 0, r.output
    per = {c["code"]: c for c in json.loads(r.stdout)["per_class"]}
    assert per[6]["stratum"] is False and per[6]["mapped_area_ha"] == 0 and per[6]["area_ha"]["estimate"] > 0
    assert per[6]["users_accuracy"]["estimate"] is None and per[6]["producers_accuracy"]["estimate"] == 0
    assert per[2]["users_accuracy"]["estimate"] == pytest.approx(5 / 6)


def test_unlabelled_points_are_left_out_with_a_warning(sampled):
    refs = label_all_as_mapped(sampled[1])
    label(sampled[1], {next(iter(refs)): None})
    r = run("assess", *sampled, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["points"] == {"total": 16, "labelled": 15, "unlabelled": 1}
    assert "1 of 16 points have no reference label and are left out" in r.stderr
    assert "1 of 16 points have no reference label and were left out" in s["notes"]


def test_a_sample_without_labels_is_refused(sampled):
    assert f"{sampled[1]}: no point has a reference label" in refused(*sampled)


@pytest.mark.parametrize("code, message", [
    (99, "reference codes [99] of 1 point(s) are not classes of the map"),
    (0, "reference codes [0] of 1 point(s) are not classes of the map"),
    (CLOUD, "Cloud is a mask, not a class: label what the ground is, or leave the point empty"),
])
def test_labels_that_are_not_classes_of_the_map_are_refused(sampled, code, message):
    refs = label_all_as_mapped(sampled[1])
    label(sampled[1], {next(iter(refs)): code})
    out = refused(*sampled)
    assert str(sampled[1]) in out and message in out and "1 Annual crop" in out


def test_a_stratum_with_one_labelled_point_is_refused(sampled):
    refs = label_all_as_mapped(sampled[1])
    label(sampled[1], {f: None for f, c in list((f, c) for f, c in refs.items() if c == 8)[1:]})
    out = refused(*sampled)
    assert "stratum Residential (code 8) has 1 labelled point; the variance needs at least 2" in out


def test_a_stratum_of_one_pixel_is_a_census(tmp_path):
    from test_sampling import classification

    data = classification()
    data[data == 8] = 1
    data[800, 20] = 8  # one residential pixel
    map_path = write_classification(tmp_path / "maps", data)
    samples = tmp_path / "s.gpkg"
    r = run("-q", "sample", map_path, "-o", samples, "--n", 20, "--min-per-stratum", 5, "--json")
    assert r.exit_code == 0, r.output
    assert {s["code"]: s["n"] for s in json.loads(r.stdout)["strata"]}[8] == 1
    label_all_as_mapped(samples)
    r = run("-q", "assess", map_path, samples, "--json")
    assert r.exit_code == 0, r.output
    residential = json.loads(r.stdout)["per_class"][-1]
    assert residential["points"] == 1 and residential["users_accuracy"] == {"estimate": 1.0, "ci95": 0.0, "se": 0.0}


def test_a_geopackage_without_the_fields_is_refused(sampled, tmp_path):
    gdf = points(sampled[1]).drop(columns=["reference"])
    bare = tmp_path / "bare.gpkg"
    pyogrio.write_dataframe(gdf, bare, layer=LAYER)
    assert f"{bare}: layer samples has no reference field (it has map_code, map_class, notes)" in refused(sampled[0],
                                                                                                         bare)
    text = tmp_path / "notes.txt"
    text.write_text("not a GeoPackage")
    assert f"{text}: cannot be read as a GeoPackage" in refused(sampled[0], text)


def test_a_map_that_is_not_an_s2lc_map_is_refused(sampled, tmp_path):
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs=CRS_UTM,
                       transform=TRANSFORM) as dst:
        dst.write(np.ones((1, 4, 4), np.uint8))
    assert f"{plain}: not an s2lc class map" in refused(plain, sampled[1])


def test_a_sample_of_another_map_is_refused(sampled, tmp_path):
    label_all_as_mapped(sampled[1])
    data = np.full((900, 40), 2, np.uint8)
    other = write_classification(tmp_path / "other", data)
    out = refused(other, sampled[1])
    assert f"{other}: code 1 has 0 pixels, the design of {sampled[1]} says" in out and "sample the map again" in out


def test_points_whose_map_code_is_not_the_map_s_are_refused(sampled, tmp_path):
    label_all_as_mapped(sampled[1])
    gdf = points(sampled[1])
    gdf.loc[gdf.index[0], "map_code"] = 8 if gdf["map_code"].iloc[0] != 8 else 1
    edited = tmp_path / "edited.gpkg"
    pyogrio.write_dataframe(gdf, edited, layer=LAYER)  # no design table: the strata come from the map
    out = refused(sampled[0], edited)
    assert f"{edited}: 1 point(s) have a map_code other than the map's code under them (the first: feature 1" in out
