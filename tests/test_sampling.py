"""s2lc.sampling and ``s2lc sample``: strata, points at pixel centres, the GeoPackage and its QGIS form.

:func:`write_classification`, :func:`label` and :func:`run` are imported by ``test_cli_assess.py``.
"""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from s2lc import writers
from s2lc.cli.main import cli
from s2lc.legend import CLOUD, SNOW_ICE, default_legend
from s2lc.qgis import VALUE_MAP_NULL
from s2lc.sampling import DESIGN_TABLE, LAYER, STRIP_ROWS, open_map, read_samples

CRS_UTM = "EPSG:32633"
TRANSFORM = Affine(10, 0, 300_000, 0, -10, 5_900_000)
LEGEND = default_legend()
F, A, R = 2, 1, 8  # forest, annual crop, residential


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def classification(height: int = STRIP_ROWS + 300, width: int = 40) -> np.ndarray:
    """Forest, annual crop, a little residential, cloud, snow and no data; taller than a strip."""
    rng = np.random.default_rng(5)
    data = rng.choice(np.array([F, A], np.uint8), size=(height, width), p=[0.7, 0.3])
    data[:, :2] = 0  # no data
    data[10:40, 10:20] = CLOUD
    data[600:610, 30:35] = SNOW_ICE
    data[700:760, 5:10] = R  # 300 pixels
    return data


def write_classification(folder: Path, data: np.ndarray | None = None, name: str = "map_landcover.tif") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return writers.write_class_map(folder / name, classification() if data is None else data, TRANSFORM, CRS_UTM,
                                   LEGEND.classes, {"S2LC_MODEL": "eurosat-rgb"}, overwrite=True)


def label(path: Path, references: dict[int, int | None]) -> None:
    """Fill the reference field of features (fid → code), as an edit in QGIS would. GeoPackage's
    R-tree triggers name GDAL's SQL functions; they only run when a geometry changes, so stubs do."""
    with sqlite3.connect(path) as con:
        for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
            con.create_function(name, 1, lambda g: None)
        con.executemany(f"UPDATE {LAYER} SET reference = ? WHERE fid = ?", [(v, k) for k, v in references.items()])


def points(path: Path):
    return pyogrio.read_dataframe(path, layer=LAYER, fid_as_index=True)


@pytest.fixture(scope="module")
def map_path(tmp_path_factory) -> Path:
    return write_classification(tmp_path_factory.mktemp("maps"))


def test_sample_writes_points_at_pixel_centres_on_their_stratum(map_path, tmp_path):
    out = tmp_path / "samples.gpkg"
    r = run("sample", map_path, "-o", out, "--n", 120, "--min-per-stratum", 20, "--seed", 4)
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert f"wrote 120 points in 3 strata to {out}" in r.stderr and "seed 4" in r.stderr
    assert "left out (masks" in r.stderr and "Cloud 300 px" in r.stderr

    gdf = points(out)
    assert gdf.crs == CRS_UTM and len(gdf) == 120 and set(gdf.geom_type) == {"Point"}
    col = (gdf.geometry.x - TRANSFORM.c) / 10 - 0.5
    row = (TRANSFORM.f - gdf.geometry.y) / 10 - 0.5
    assert np.allclose(col, col.round()) and np.allclose(row, row.round())  # pixel centres
    data = classification()
    under = data[row.round().astype(int), col.round().astype(int)]
    assert (under == gdf["map_code"]).all()
    assert set(gdf["map_code"]) == {A, F, R}  # no data, cloud and snow are not strata
    assert (gdf["map_class"] == [LEGEND.by_code(c).name for c in gdf["map_code"]]).all()
    assert gdf["reference"].isna().all() and "notes" in gdf.columns
    assert len(set(zip(row.round(), col.round()))) == 120  # no pixel twice
    assert row.max() >= STRIP_ROWS  # points found in the second strip too
    assert list(gdf["map_code"][:20]) != sorted(gdf["map_code"][:20])  # points in random order, not by stratum


def test_the_design_table_records_strata_pixels_points_and_seed(map_path, tmp_path):
    out = tmp_path / "samples.gpkg"
    r = run("-q", "sample", map_path, "-o", out, "--n", 120, "--min-per-stratum", 20, "--seed", 4, "--json")
    assert r.exit_code == 0, r.output
    design = json.loads(r.stdout)
    data = classification()
    assert design["seed"] == 4 and design["allocation"] == "proportional" and design["n"] == 120
    strata = {s["code"]: s for s in design["strata"]}
    assert {c: s["pixels"] for c, s in strata.items()} == {c: int((data == c).sum()) for c in (A, F, R)}
    assert strata[R]["n"] == 20 and strata[R]["area_ha"] == 3.0  # the minimum; 300 pixels of 100 m²
    assert {m["code"] for m in design["excluded_masks"]} == {CLOUD, SNOW_ICE}
    table = pyogrio.read_dataframe(out, layer=DESIGN_TABLE, read_geometry=False)
    assert dict(zip(table["code"], table["n"])) == {c: s["n"] for c, s in strata.items()}
    counts = points(out)["map_code"].value_counts().to_dict()
    assert counts == {c: s["n"] for c, s in strata.items()}
    with sqlite3.connect(out) as con:
        about = json.loads(con.execute("SELECT description FROM gpkg_contents WHERE table_name = ?",
                                       (DESIGN_TABLE,)).fetchone()[0])
    assert about["seed"] == 4 and about["map"] == str(map_path)


def test_the_same_seed_draws_the_same_points_and_another_seed_others(map_path, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert run("-q", "sample", map_path, "-o", tmp_path / f"{name}.gpkg", "--counts", "1=10,2=10,8=5",
                   "--seed", seed).exit_code == 0
    a, b, c = (points(tmp_path / f"{n}.gpkg").geometry for n in "abc")
    assert a.geom_equals(b).all() and not a.geom_equals(c).all()


def test_include_masks_makes_cloud_and_snow_strata(map_path, tmp_path):
    out = tmp_path / "s.gpkg"
    r = run("-q", "sample", map_path, "-o", out, "--n", 100, "--allocation", "equal", "--min-per-stratum", 2,
            "--include-masks", "--json")
    assert r.exit_code == 0, r.output
    assert {s["code"] for s in json.loads(r.stdout)["strata"]} == {A, F, R, CLOUD, SNOW_ICE}
    assert points(out)["map_code"].value_counts().to_dict() == {A: 20, F: 20, R: 20, CLOUD: 20, SNOW_ICE: 20}


def test_neyman_allocation_uses_the_anticipated_accuracies(map_path, tmp_path):
    r = run("-q", "sample", map_path, "-o", tmp_path / "s.gpkg", "--n", 300, "--allocation", "neyman",
            "--anticipated", "8=0.5", "--min-per-stratum", 2, "--json")
    assert r.exit_code == 0, r.output
    strata = {s["code"]: s for s in json.loads(r.stdout)["strata"]}
    assert strata[R]["anticipated_users_accuracy"] == 0.5 and strata[F]["anticipated_users_accuracy"] == 0.9
    per_pixel = {c: s["n"] / s["pixels"] for c, s in strata.items()}
    assert per_pixel[R] / per_pixel[F] == pytest.approx(0.5 / 0.3, rel=0.05)  # sqrt(.25) : sqrt(.09)


def test_the_geopackage_opens_in_qgis_with_a_form_to_pick_the_reference_class(map_path, tmp_path):
    out = tmp_path / "s.gpkg"
    assert run("-q", "sample", map_path, "-o", out, "--counts", "1=3,2=3,8=3").exit_code == 0
    with sqlite3.connect(out) as con:
        rows = con.execute("SELECT f_table_name, f_geometry_column, useAsDefault, styleQML FROM layer_styles").fetchall()
        kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
        version = con.execute("PRAGMA application_id").fetchone()[0], con.execute("PRAGMA user_version").fetchone()[0]
    assert kinds == {LAYER: "features", "layer_styles": "attributes", DESIGN_TABLE: "attributes"}
    assert version == (0x47504B47, 10200)  # GeoPackage 1.2
    assert len(rows) == 1 and rows[0][:3] == (LAYER, "geom", 1)
    qml = ET.fromstring(rows[0][3].split("\n", 1)[1])
    assert qml.find("renderer-v2").get("attr") == "reference"
    fields = {f.get("name"): f.find("editWidget") for f in qml.iter("field") if f.find("editWidget") is not None}
    assert fields["map_code"].get("type") == "Hidden" and fields["map_class"].get("type") == "Hidden"
    assert fields["reference"].get("type") == "ValueMap"
    entries = {o.get("value"): o.get("name") for o in fields["reference"].iter("Option") if o.get("type") == "QString"}
    land = {str(c.code): c.label for c in LEGEND.land_cover}
    assert entries == {VALUE_MAP_NULL: "(not labelled)", **land}  # every class, masks not offered
    assert {a.get("field"): a.get("name") for a in qml.iter("alias")}["reference"] == "Reference class"


def test_a_change_map_is_stratified_by_its_codes(tmp_path):
    from s2lc.change import NOT_COMPARED, UNCHANGED
    from s2lc.change.core import _NOT_COMPARED_CLASS, _UNCHANGED_CLASS
    from s2lc.legend import LandCoverClass

    codes = np.full((60, 50), UNCHANGED, np.uint8)
    codes[:5] = NOT_COMPARED
    codes[10:14, :10] = 18
    classes = [_UNCHANGED_CLASS, _NOT_COMPARED_CLASS, LandCoverClass(18, "Forest->Residential", "Forest → Residential",
                                                                     (227, 26, 28))]
    path = writers.write_class_map(tmp_path / "change.tif", codes, TRANSFORM, CRS_UTM, classes, kind="change")
    r = run("-q", "sample", path, "-o", tmp_path / "s.gpkg", "--n", 60, "--allocation", "neyman",
            "--min-per-stratum", 10, "--json")
    assert r.exit_code == 0, r.output
    design = json.loads(r.stdout)
    strata = {s["code"]: s for s in design["strata"]}
    assert set(strata) == {UNCHANGED, 18} and design["excluded_masks"][0]["code"] == NOT_COMPARED
    assert strata[UNCHANGED]["anticipated_users_accuracy"] == 0.9 and strata[18]["anticipated_users_accuracy"] == 0.7


def test_read_samples_reprojects_points_to_the_map_crs(map_path, tmp_path):
    out = tmp_path / "s.gpkg"
    assert run("-q", "sample", map_path, "-o", out, "--counts", "1=3,2=3,8=3", "--seed", 1).exit_code == 0
    gdf = points(out)
    moved = tmp_path / "wgs84.gpkg"
    pyogrio.write_dataframe(gdf.to_crs("EPSG:4326"), moved, layer=LAYER)
    a, b = read_samples(out, open_map(map_path).crs), read_samples(moved, open_map(map_path).crs)
    assert np.allclose(a.x, b.x, atol=1e-3) and np.allclose(a.y, b.y, atol=1e-3)
    assert a.design is not None and b.design is None
    assert (a.reference == -1).all() and a.map_code.tolist() == gdf["map_code"].tolist()


# ---- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    ([], "give --n N"),
    (["--n", 100, "--counts", "1=5"], "give --n N"),
    (["--counts", "1=5,2=5,8=5", "--allocation", "equal"], "--allocation go with --n"),
    (["--n", 100, "--anticipated", "1=0.8"], "--anticipated goes with --allocation neyman"),
    (["--counts", "1:5"], "'1:5' is not CODE=N"),
    (["--counts", "1=5,1=6"], "code 1 given twice"),
    (["--n", 1], "--n"),
])
def test_usage_errors_exit_2_with_one_line(map_path, tmp_path, args, message):
    r = run("-q", "sample", map_path, "-o", tmp_path / "s.gpkg", *args)
    assert r.exit_code == 2 and message in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "s.gpkg").exists()


def test_an_output_that_is_not_a_geopackage_is_a_usage_error(map_path, tmp_path):
    r = run("sample", map_path, "-o", tmp_path / "s.shp", "--n", 200)
    assert r.exit_code == 2 and "does not end in .gpkg" in r.output


@pytest.mark.parametrize("args, message", [
    (["--counts", "1=5,2=5"], "missing [8]"),
    (["--counts", "1=5,2=5,8=5,3=4"], "codes [3] are not strata"),
    (["--counts", "1=5,2=1,8=5"], "code 2: 1 points"),
    (["--n", 100], "minimum of 50 points"),
])
def test_designs_that_cannot_be_drawn_exit_1_naming_the_map(map_path, tmp_path, args, message):
    r = run("-q", "sample", map_path, "-o", tmp_path / "s.gpkg", *args)
    assert r.exit_code == 1 and message in r.output and str(map_path) in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "s.gpkg").exists()


def test_a_file_that_is_not_an_s2lc_map_is_refused(tmp_path):
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs=CRS_UTM,
                       transform=TRANSFORM) as dst:
        dst.write(np.ones((1, 4, 4), np.uint8))
    r = run("sample", plain, "-o", tmp_path / "s.gpkg", "--n", 10)
    assert r.exit_code == 1 and f"{plain}: not an s2lc class map" in r.output


def test_an_existing_sample_is_kept_unless_overwrite(map_path, tmp_path):
    out = tmp_path / "s.gpkg"
    assert run("-q", "sample", map_path, "-o", out, "--counts", "1=3,2=3,8=3", "--seed", 1).exit_code == 0
    label(out, {1: F})
    r = run("sample", map_path, "-o", out, "--counts", "1=3,2=3,8=3")
    assert r.exit_code == 1 and "already exists; use --overwrite to replace" in r.output
    assert points(out)["reference"][1] == F  # the analyst's labels are still there
    assert run("-q", "sample", map_path, "-o", out, "--counts", "1=4,2=3,8=3", "--overwrite").exit_code == 0
    assert len(points(out)) == 10
