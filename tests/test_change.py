"""s2lc.change on small hand-made maps with known transitions.

Maps are written the way ``s2lc classify`` writes them: :func:`s2lc.writers.write_class_map`
with the provenance tags of :meth:`s2lc.classify.Classification.tags`, and the confidence beside
them. The grid is 20 m so that hectares are not the pixel count divided by 100.

:func:`write_map` and the fixtures are imported by ``test_cli_change.py``.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from matplotlib.image import imread

from s2lc import change, writers
from s2lc.change import NODATA, NOT_COMPARED, UNCHANGED, transition_code
from s2lc.errors import ArgumentError, MapError, OutputError
from s2lc.legend import LandCoverClass, Legend, default_legend

LEGEND = default_legend()
CLASSES = LEGEND.classes
CRS_UTM = "EPSG:32633"
ORIGIN = (300_000.0, 5_900_040.0)
PIXEL = 20.0


def from_origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    """rasterio.transform.from_origin, without its Affine-multiplication deprecation warning."""
    return Affine(xsize, 0, west, 0, -ysize, north)


TRANSFORM = from_origin(*ORIGIN, PIXEL, PIXEL)
HA = PIXEL * PIXEL / 10_000  # hectares per pixel
SHA = "a" * 64

# EuroSAT codes (s2lc.legend): index in the matrix = code - 1 for land cover
A, F, P, R = 1, 2, 6, 8  # annual crop, forest, pasture, residential
C = 11  # cloud
N = 0  # no data
IA, IF, IP, IR, ICLOUD, ISNOW, INODATA = 0, 1, 5, 7, 10, 11, 12  # matrix indexes

BEFORE = np.array([
    [F, F, F, R, R, R],
    [F, F, F, R, R, R],
    [A, A, A, A, C, C],
    [A, A, N, N, P, P],
], np.uint8)
AFTER = np.array([
    [F, R, R, R, R, R],  # forest -> residential: 2 pixels in one patch
    [F, F, F, R, R, A],  # residential -> annual crop: 1 pixel
    [A, A, A, C, A, A],  # cloud in one date or the other: 3 pixels not compared
    [A, A, A, N, F, F],  # no data before (2 pixels); pasture -> forest: 2 pixels
], np.uint8)
CONF_BEFORE = np.full(BEFORE.shape, 0.75, np.float32)
CONF_BEFORE[0, 1], CONF_BEFORE[0, 2] = 0.9, 0.7
CONF_BEFORE[BEFORE == N] = np.nan
CONF_BEFORE[BEFORE == C] = np.nan
CONF_AFTER = np.full(AFTER.shape, 0.8, np.float32)
CONF_AFTER[AFTER == N] = np.nan
CONF_AFTER[AFTER == C] = np.nan


def expected_matrix() -> np.ndarray:
    m = np.zeros((13, 13), np.int64)
    for (i, j), count in {(IF, IF): 4, (IF, IR): 2, (IR, IR): 5, (IR, IA): 1, (IA, IA): 5, (IA, ICLOUD): 1,
                          (ICLOUD, IA): 2, (INODATA, IA): 1, (INODATA, INODATA): 1, (IP, IF): 2}.items():
        m[i, j] = count
    return m


def product_id(when: str) -> str:
    return f"S2A_MSIL2A_{when}_N0214_R022_T33UUU_{when}"


def tags(when: str | None, sha: str | None = SHA, model: str = "eurosat-rgb", *, level: str = "L2A",
         parameters: dict | None = None) -> dict[str, str]:
    """The provenance tags ``Classification.tags()`` writes, for a product sensed at ``when``."""
    iso = f"{when[:4]}-{when[4:6]}-{when[6:8]}T{when[9:11]}:{when[11:13]}:{when[13:15]}+00:00" if when else ""
    return {
        "S2LC_PRODUCT_ID": product_id(when or "20000101T000000"),
        "S2LC_PRODUCT_LEVEL": level,
        "S2LC_BASELINE": "02.14",
        "S2LC_SENSING_TIME": iso,
        "S2LC_OFFSET_APPLIED": json.dumps({"B04": 0.0, "B03": 0.0, "B02": 0.0}),
        "S2LC_CLOUD_FRACTION": "0.100000",
        "S2LC_MODEL": model,
        "S2LC_MODEL_SHA256": sha or "",
        "S2LC_PARAMETERS": json.dumps(parameters or {"stride": 64, "max_cloud": 0.5, "tta": False}),
        "S2LC_AREA_HA": json.dumps({}),
        "S2LC_STATUS": "ok",
    }


def write_map(folder: Path, data: np.ndarray, when: str | None, *, sha: str | None = SHA, model: str = "eurosat-rgb",
              classes=CLASSES, transform=TRANSFORM, crs=CRS_UTM, confidence: np.ndarray | None = None,
              **tag_options) -> Path:
    """``<product id>_landcover.tif`` (and ``_confidence.tif``) in ``folder``, as ``s2lc classify`` names them."""
    folder.mkdir(parents=True, exist_ok=True)
    t = tags(when, sha, model, **tag_options)
    path = folder / f"{t['S2LC_PRODUCT_ID']}_landcover.tif"
    writers.write_class_map(path, data, transform, crs, classes, t)
    if confidence is not None:
        writers.write_confidence(folder / f"{t['S2LC_PRODUCT_ID']}_confidence.tif", confidence, transform, crs, t)
    return path


T1, T2, T3 = "20200406T101559", "20210411T101031", "20220406T100559"


@pytest.fixture()
def pair(tmp_path) -> tuple[Path, Path]:
    return (write_map(tmp_path / "maps", BEFORE, T1, confidence=CONF_BEFORE),
            write_map(tmp_path / "maps", AFTER, T2, confidence=CONF_AFTER))


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---- codes ------------------------------------------------------------------------------------


def test_transition_codes_are_unique_fixed_and_fit_in_uint8():
    codes = change.transition_classes(LEGEND.land_cover)
    assert sorted(codes) == list(range(3, 3 + 10 * 9))
    assert transition_code(IF, IR, 10) == 3 + 1 * 9 + 6 == 18
    assert codes[18][0].name == "Forest" and codes[18][1].name == "Residential"
    n = change.MAX_CLASSES
    assert transition_code(n - 1, n - 2, n) <= 255
    with pytest.raises(ArgumentError):
        transition_code(2, 2, 10)


def test_change_codes_of_the_hand_maps():
    codes, _ = change.compare_arrays(BEFORE, AFTER, CLASSES)
    f_r, r_a, p_f = transition_code(IF, IR, 10), transition_code(IR, IA, 10), transition_code(IP, IF, 10)
    U, X = UNCHANGED, NOT_COMPARED
    assert codes.tolist() == [
        [U, f_r, f_r, U, U, U],
        [U, U, U, U, U, r_a],
        [U, U, U, X, X, X],
        [U, U, NODATA, NODATA, p_f, p_f],
    ]
    assert codes.dtype == np.uint8


def test_compare_arrays_works_in_strips(monkeypatch):
    big_before, big_after = np.tile(BEFORE, (300, 2)), np.tile(AFTER, (300, 2))  # 1200 rows: three strips
    codes, matrix = change.compare_arrays(big_before, big_after, CLASSES)
    monkeypatch.setattr(change.core, "_CHUNK_ROWS", 10_000)
    codes_one, matrix_one = change.compare_arrays(big_before, big_after, CLASSES)
    assert np.array_equal(codes, codes_one) and np.array_equal(matrix, matrix_one)
    assert np.array_equal(matrix, expected_matrix() * 600)


def test_codes_outside_the_legend_are_refused():
    bad = AFTER.copy()
    bad[0, 0] = 42
    with pytest.raises(MapError, match=r"after\.tif holds codes \[42\] that are not in its legend"):
        change.compare_arrays(BEFORE, bad, CLASSES, labels=("before.tif", "after.tif"))


# ---- two dates --------------------------------------------------------------------------------


def test_exact_matrix_in_pixels_and_hectares(pair):
    result = change.compare(*pair)
    assert result.categories == [c.name for c in LEGEND.land_cover] + ["Cloud", "SnowIce", "NoData"]
    assert np.array_equal(result.matrix, expected_matrix())
    assert result.pixel_area_m2 == 400.0
    assert np.allclose(result.matrix_ha, expected_matrix() * HA)
    assert result.matrix_ha[IF, IR] == pytest.approx(0.08)
    assert result.pixels == {"total": 24, "compared": 19, "unchanged": 14, "changed": 5,
                             "not_compared_cloud": 3, "no_data": 2, "uncertain": 0, "flip": 0, "spectral": 0}
    # the raster says the same as the matrix
    counts = np.bincount(result.codes.ravel(), minlength=256)
    assert counts[UNCHANGED] == 14 and counts[NOT_COMPARED] == 3 and counts[NODATA] == 2
    assert counts[3:].sum() == 5


def test_masked_pixels_claim_no_change(pair):
    result = change.compare(*pair)
    masked = np.isin(BEFORE, [N, C]) | np.isin(AFTER, [N, C])
    assert (result.codes[masked] <= NOT_COMPARED).all()
    assert {(t["from"], t["to"]) for t in result.transitions()} == {
        ("Forest", "Residential"), ("Residential", "AnnualCrop"), ("Pasture", "Forest")}
    gl = result.gains_losses()
    # annual crop "gains" nothing from cloud or no data: only from residential
    assert gl["AnnualCrop"] == pytest.approx({"gain_ha": 1 * HA, "loss_ha": 0.0, "net_ha": 1 * HA})
    assert gl["Forest"] == pytest.approx({"gain_ha": 2 * HA, "loss_ha": 2 * HA, "net_ha": 0.0})
    assert gl["Residential"] == pytest.approx({"gain_ha": 2 * HA, "loss_ha": 1 * HA, "net_ha": 1 * HA})
    assert gl["Pasture"]["net_ha"] == pytest.approx(-2 * HA)
    assert gl["SeaLake"] == {"gain_ha": 0.0, "loss_ha": 0.0, "net_ha": 0.0}


def test_transitions_largest_first_and_change_legend(pair):
    result = change.compare(*pair)
    rows = result.transitions()
    assert [r["pixels"] for r in rows] == [2, 2, 1]
    assert rows[0]["label"] == "Forest → Residential" and rows[0]["area_ha"] == pytest.approx(2 * HA)
    labels = {c.code: c.label for c in result.classes}
    assert labels == {1: "Unchanged", 2: "Not compared (cloud or snow)", 18: "Forest → Residential",
                      transition_code(IR, IA, 10): "Residential → Annual crop",
                      transition_code(IP, IF, 10): "Pasture → Forest"}
    assert LEGEND.by_code(R).color == next(c.color for c in result.classes if c.code == 18)  # what it became


def test_polygons_with_from_to_area_and_both_confidences(pair):
    gdf = change.compare(*pair, min_area_ha=0).polygons()
    assert list(gdf.columns) == ["status", "change_code", "change", "transition_code", "from_code", "from_class",
                                 "to_code", "to_class", "area_ha", "confidence_before", "confidence_after",
                                 "magnitude", "geometry"]
    assert set(gdf.status) == {"change"} and gdf.magnitude.isna().all()
    assert gdf.crs == CRS_UTM
    rows = sorted(zip(gdf.from_class, gdf.to_class, gdf.area_ha.round(6), gdf.confidence_before.round(6),
                      gdf.confidence_after.round(6), gdf.change))
    assert rows == [
        ("Forest", "Residential", 2 * HA, 0.8, 0.8, "Forest->Residential"),  # mean of 0.9 and 0.7
        ("Pasture", "Forest", 2 * HA, 0.75, 0.8, "Pasture->Forest"),
        ("Residential", "AnnualCrop", 1 * HA, 0.75, 0.8, "Residential->AnnualCrop"),
    ]
    f_r = gdf[gdf.change_code == 18].geometry.iloc[0]
    x0, y0 = ORIGIN
    assert f_r.bounds == (x0 + PIXEL, y0 - PIXEL, x0 + 3 * PIXEL, y0)
    assert set(gdf.from_code) == {F, R, P} and set(gdf.to_code) == {R, A, F}


def test_polygons_without_confidence_rasters_have_nan(tmp_path):
    result = change.compare(write_map(tmp_path, BEFORE, T1), write_map(tmp_path, AFTER, T2), min_area_ha=0)
    gdf = result.polygons()
    assert len(gdf) == 3 and gdf.confidence_before.isna().all() and gdf.confidence_after.isna().all()


def test_arrays_in_memory_compare_like_files():
    before = change.DatedMap(writers.ClassMap(BEFORE, TRANSFORM, rasterio.CRS.from_string(CRS_UTM), CLASSES,
                                              tags(T1)))
    after = change.DatedMap(writers.ClassMap(AFTER, TRANSFORM, rasterio.CRS.from_string(CRS_UTM), CLASSES,
                                             tags(T2)), CONF_AFTER)
    result = change.compare(before, after)
    assert np.array_equal(result.matrix, expected_matrix())
    assert result.before.name == product_id(T1)


def test_hectares_have_no_float_noise():
    """10 m pixels: 1 234 of them are 12.34 ha (taking 8 766 × 0.01 from 10 000 × 0.01 gives
    12.340000000000003); a class that lost as much as it gained has a net of exactly 0."""
    before = np.full((100, 200), F, np.uint8)
    before[:, :100] = A
    after = before.copy()
    after.flat[np.flatnonzero(before == A)[:1234]] = F
    after.flat[np.flatnonzero(before == F)[:1234]] = A
    crs = rasterio.CRS.from_string(CRS_UTM)
    maps = [change.DatedMap(writers.ClassMap(m, from_origin(*ORIGIN, 10, 10), crs, CLASSES, tags(t)))
            for m, t in ((before, T1), (after, T2))]
    result = change.compare(*maps)
    s = result.summary()
    assert s["area_ha"]["changed"] == 24.68 and s["area_ha"]["unchanged"] == 175.32
    for name in ("AnnualCrop", "Forest"):
        assert s["gains_losses"][name] == {"gain_ha": 12.34, "loss_ha": 12.34, "net_ha": 0.0}
    assert [t["area_ha"] for t in s["transitions"]] == [12.34, 12.34]
    totals = result.matrix_dict()
    assert totals["row_totals"]["area_ha"][IA] == 100.0 and totals["total"]["area_ha"] == 200.0


def test_reversed_dates_are_compared_as_given_with_a_warning(pair, caplog):
    result = change.compare(pair[1], pair[0])
    assert "was sensed before" in caplog.text
    assert result.matrix[IR, IF] == 2  # residential -> forest: the order given


# ---- outputs ----------------------------------------------------------------------------------


def test_save_writes_every_output(pair, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = change.compare(*pair, min_area_ha=0)
    paths = result.save(out)
    prefix = "change_20200406_20210411"
    assert files(out) == sorted([f"{prefix}.tif", f"{prefix}.qml", f"{prefix}.tif.aux.xml", f"{prefix}.gpkg",
                                 f"{prefix}.png", f"{prefix}.json", f"{prefix}_matrix.json",
                                 f"{prefix}_matrix_pixels.csv", f"{prefix}_matrix_ha.csv"])
    assert paths["map"] == out / f"{prefix}.tif"

    # the change raster: grid, dtype, no data, kind, legend, colours, provenance
    with rasterio.open(paths["map"]) as src:
        assert src.crs == CRS_UTM and src.transform == TRANSFORM and src.dtypes[0] == "uint8"
        assert src.nodata == 0
        assert np.array_equal(src.read(1), result.codes)
        t = src.tags()
        assert t["S2LC_KIND"] == "change" and t["S2LC_MODEL_SHA256"] == SHA
        assert t["S2LC_BEFORE_PRODUCT_ID"] == product_id(T1) and t["S2LC_AFTER_SENSING_TIME"].startswith("2021-04-11")
        assert src.colormap(1)[18][:3] == LEGEND.by_code(R).color and src.colormap(1)[0][3] == 0
        assert src.tags(1)["CLASS_18"] == "Forest → Residential"
    back = writers.read_class_map(paths["map"], kind="change")
    assert {c.code: c.label for c in back.classes} == {c.code: c.label for c in result.classes}
    qml = paths["map"].with_suffix(".qml").read_text()
    assert 'label="Forest → Residential"' in qml and 'value="18"' in qml

    # the matrices
    with open(paths["matrix_pixels"], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["before \\ after", *result.categories, "Total"]
    forest = rows[1 + IF]
    assert forest[0] == "Forest" and forest[1 + IF] == "4" and forest[1 + IR] == "2" and forest[-1] == "6"
    assert rows[-1][0] == "Total" and rows[-1][-1] == "24" and rows[-1][1 + IA] == "9"
    with open(paths["matrix_ha"], newline="") as f:
        rows_ha = list(csv.reader(f))
    assert float(rows_ha[1 + IF][1 + IR]) == pytest.approx(2 * HA) and float(rows_ha[-1][-1]) == pytest.approx(24 * HA)
    m = json.loads(paths["matrix"].read_text())
    assert m["pixels"] == expected_matrix().tolist() and m["categories"][-3:] == ["Cloud", "SnowIce", "NoData"]
    assert m["row_totals"]["pixels"][IF] == 6 and m["column_totals"]["pixels"][IA] == 9
    assert m["area_ha"][IP][IF] == pytest.approx(2 * HA) and m["total"]["area_ha"] == pytest.approx(24 * HA)

    # the polygons, with their default style
    gdf = pyogrio.read_dataframe(paths["polygons"], layer="change")
    assert len(gdf) == 3 and set(gdf.change) == {"Forest->Residential", "Pasture->Forest", "Residential->AnnualCrop"}
    with sqlite3.connect(paths["polygons"]) as con:
        qml_style, default = con.execute("SELECT styleQML, useAsDefault FROM layer_styles").fetchone()
    assert default == 1 and 'attr="change_code"' in qml_style and "Forest → Residential" in qml_style

    # the figure and the summary
    image = (imread(paths["figure"])[..., :3] * 255).round().astype(int)
    assert image.shape[0] > 400 and image.shape[1] > 800
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert {LEGEND.by_code(P).color, (176, 196, 222), (220, 220, 220)} <= colours  # pasture, not compared, unchanged
    summary = json.loads(paths["summary"].read_text())
    assert summary["pixels"]["changed"] == 5 and summary["area_ha"]["changed"] == pytest.approx(5 * HA)
    assert summary["area_ha"]["not_compared_cloud"] == pytest.approx(3 * HA)
    assert summary["changed_fraction"] == pytest.approx(5 / 19)
    assert summary["before"]["product_id"] == product_id(T1) and summary["checks"]["model"] == "same"
    assert summary["outputs"]["map"] == f"{prefix}.tif"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_save_refuses_existing_outputs_and_writes_nothing(pair, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "change_20200406_20210411_matrix_ha.csv").write_text("mine")
    result = change.compare(*pair)
    with pytest.raises(OutputError,
                       match=r"change_20200406_20210411_matrix_ha\.csv already exists; use overwrite=True to replace"):
        result.save(out)
    assert files(out) == ["change_20200406_20210411_matrix_ha.csv"]
    assert (out / "change_20200406_20210411_matrix_ha.csv").read_text() == "mine"
    result.save(out, overwrite=True)
    assert (out / "change_20200406_20210411_matrix_ha.csv").read_text().startswith("before")


def test_a_failing_write_removes_what_the_save_wrote(pair, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(change.outputs, "_write_figure", broken)
    with pytest.raises(OSError, match="disk full"):
        change.compare(*pair).save(tmp_path)
    assert files(tmp_path) == ["maps"]


def test_a_failing_overwrite_keeps_the_previous_outputs(pair, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    change.compare(*pair).save(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(change.outputs, "_write_figure", broken)  # after the map, matrices and polygons
    with pytest.raises(OSError, match="disk full"):
        change.compare(*pair).save(out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ---- refusals ---------------------------------------------------------------------------------


def test_different_grids_are_refused_without_align(tmp_path):
    before = write_map(tmp_path, BEFORE, T1)
    shifted = write_map(tmp_path, AFTER, T2, transform=from_origin(ORIGIN[0] + PIXEL / 2, ORIGIN[1], PIXEL, PIXEL))
    with pytest.raises(MapError, match=r"_landcover\.tif \(EPSG:32633, 6x4 px of 20 m at \(300000, 5900040\)\) and "
                                       r".*_landcover\.tif \(EPSG:32633, 6x4 px of 20 m at \(300010, 5900040\)\) are "
                                       r"on different grids; pass align=True"):
        change.compare(before, shifted)


def test_align_resamples_the_second_map_onto_the_first_grid(tmp_path):
    before = write_map(tmp_path, BEFORE, T1)
    # the second date on a 40 m grid: each of its pixels covers 2 x 2 pixels of the first
    coarse = np.array([[F, R, R], [A, N, F]], np.uint8)
    conf = np.array([[0.9, 0.8, 0.7], [0.6, np.nan, 0.4]], np.float32)
    after = write_map(tmp_path, coarse, T2, transform=from_origin(*ORIGIN, 40, 40), confidence=conf)
    with pytest.raises(MapError, match="different grids"):
        change.compare(before, after)
    result = change.compare(before, after, align=True)
    assert result.aligned and result.after.map.transform == TRANSFORM
    assert np.array_equal(result.after.map.data, np.kron(coarse, np.ones((2, 2), np.uint8)))
    assert np.array_equal(result.after.confidence, np.kron(conf, np.ones((2, 2), np.float32)), equal_nan=True)
    nonzero = {(i, j): int(result.matrix[i, j]) for i, j in zip(*np.nonzero(result.matrix))}
    assert nonzero == {(IF, IF): 4, (IF, IR): 2, (IR, IR): 6, (IA, IA): 4, (IA, INODATA): 2, (ICLOUD, IF): 2,
                       (INODATA, INODATA): 2, (IP, IF): 2}
    assert result.summary()["checks"]["grid"] == "aligned (nearest neighbour)"


def test_align_fills_no_data_where_the_second_map_does_not_reach(tmp_path):
    before = write_map(tmp_path, BEFORE, T1)
    after = write_map(tmp_path, AFTER[:, :5], T2, transform=from_origin(ORIGIN[0] + PIXEL, ORIGIN[1], PIXEL, PIXEL))
    result = change.compare(before, after, align=True)
    assert (result.after.map.data[:, 0] == N).all()
    assert np.array_equal(result.after.map.data[:, 1:], AFTER[:, :5])
    assert (result.codes[:, 0] == NODATA).all()


def test_maps_that_do_not_overlap_are_refused_even_with_align(tmp_path):
    before = write_map(tmp_path, BEFORE, T1)
    far = write_map(tmp_path, AFTER, T2, transform=from_origin(ORIGIN[0] + 10_000, ORIGIN[1], PIXEL, PIXEL))
    for align in (False, True):
        with pytest.raises(MapError,
                           match=r"_landcover\.tif and .*_landcover\.tif do not overlap; compare maps of the same place"):
            change.compare(before, far, align=align)


def test_other_crs_is_refused_then_aligned(tmp_path):
    before = write_map(tmp_path, BEFORE, T1)
    # the same place in UTM 32N
    from rasterio.warp import transform as warp

    xs, ys = warp(CRS_UTM, "EPSG:32632", [ORIGIN[0]], [ORIGIN[1]])
    other = write_map(tmp_path, AFTER, T2, crs="EPSG:32632", transform=from_origin(xs[0], ys[0], PIXEL, PIXEL))
    with pytest.raises(MapError, match="EPSG:32632.*different grids; pass align=True"):
        change.compare(before, other)
    result = change.compare(before, other, align=True)
    assert result.after.map.crs == CRS_UTM and result.pixels["total"] == 24


def test_different_legends_are_refused(tmp_path):
    renamed = tuple(LandCoverClass(c.code, "Woodland" if c.name == "Forest" else c.name, c.label, c.color)
                    for c in CLASSES)
    before = write_map(tmp_path, BEFORE, T1)
    with pytest.raises(MapError, match=r"have different legends \(code 2: Forest vs Woodland\); compare maps "
                                       "classified with the same model"):
        change.compare(before, write_map(tmp_path, AFTER, T2, classes=renamed))


def test_different_class_sets_are_refused_not_a_crash(tmp_path):
    fewer = Legend.from_names(["AnnualCrop", "Forest", "Pasture", "Residential"]).classes  # cloud is 5 here
    small = np.array([[1, 2], [3, 4]], np.uint8)
    before = write_map(tmp_path, np.kron(small, np.ones((2, 3), np.uint8)), T1, classes=fewer)
    with pytest.raises(MapError, match=r"have different legends \(code 3: Pasture vs HerbaceousVegetation, code 4: "
                                       r"Residential vs Highway, code 5: Cloud vs Industrial and 7 more\)"):
        change.compare(before, write_map(tmp_path, AFTER, T2))


def test_different_models_are_refused_unless_allowed(tmp_path, caplog):
    before = write_map(tmp_path, BEFORE, T1, sha="a" * 64, model="eurosat-2020")
    after = write_map(tmp_path, AFTER, T2, sha="b" * 64, model="eurosat-2021")
    with pytest.raises(MapError, match=r"\(model eurosat-2020, sha256 aaaaaaaaaaaa\) and .* \(model eurosat-2021, "
                                       r"sha256 bbbbbbbbbbbb\) come from different models, whose difference mixes "
                                       r"algorithm change with land change; classify both dates with one model, or "
                                       r"pass allow_model_mismatch=True"):
        change.compare(before, after)
    result = change.compare(before, after, allow_model_mismatch=True)
    assert result.model_mismatch and "different models" in caplog.text
    assert result.summary()["checks"]["model"] == "different, allowed"
    assert result.tags()["S2LC_MODEL_MISMATCH"] == "true"


def test_a_map_without_model_hash_is_refused_unless_allowed(tmp_path):
    before = write_map(tmp_path, BEFORE, T1, sha=None)
    after = write_map(tmp_path, AFTER, T2)
    with pytest.raises(MapError,
                       match=r"_landcover\.tif has no model hash \(S2LC_MODEL_SHA256\).*pass allow_model_mismatch=True"):
        change.compare(before, after)
    assert change.compare(before, after, allow_model_mismatch=True).model_mismatch


def test_maps_classified_differently_are_compared_with_a_warning_on_record(tmp_path, caplog, pair):
    """A map at stride 32 against one at 64 shows the finer map's edges as change (27 % of the
    T33UUU crop, one product classified twice): said, and kept in the summary and the tags."""
    other = write_map(tmp_path / "other", AFTER, T3, level="L1C", parameters={"stride": 32, "max_cloud": 0.3, "tta": True})
    result = change.compare(pair[0], other)
    expected = "stride 64 and 32; test-time augmentation off and on; product level L2A and L1C"  # not max_cloud
    assert f"were classified differently ({expected}): part of the change shown is the settings'" in caplog.text
    assert result.checks()["settings"] == f"different: {expected}" and result.checks()["acquisition"] == "different"
    assert json.loads(result.tags()["S2LC_CHECKS"])["settings"] == f"different: {expected}"
    assert change.time_series([pair[0], pair[1], other]).summary()["settings"] == {str(other): expected}
    caplog.clear()
    plain = change.compare(*pair)
    assert plain.checks() == {"legend": "same", "grid": "same", "model": "same", "settings": "same",
                              "acquisition": "different"}
    assert "differently" not in caplog.text and change.time_series(pair).summary()["settings"] == "same"


def test_maps_of_one_acquisition_are_compared_with_a_warning(tmp_path, caplog):
    result = change.compare(write_map(tmp_path / "a", BEFORE, T1), write_map(tmp_path / "b", AFTER, T1))
    assert "are of the same acquisition (2020-04-06): their difference is not land change" in caplog.text
    assert result.checks()["acquisition"] == "same"


def _dated(when: str, **tag_changes) -> change.DatedMap:
    return change.DatedMap(writers.ClassMap(BEFORE, TRANSFORM, CRS_UTM, CLASSES, {**tags(when), **tag_changes}))


def test_one_acquisition_is_one_product_id_or_one_sensing_time():
    same_id = {"S2LC_PRODUCT_ID": product_id(T1)}
    assert change.same_acquisition(_dated(T1), _dated(T2, **same_id))  # the same product, another time tag
    assert change.same_acquisition(_dated(T1), _dated(T1, S2LC_PRODUCT_ID="another"))
    assert not change.same_acquisition(_dated(T1), _dated(T2))
    # a GeoTIFF's id is its file name: two exports of different years called export.tif are two dates
    export = {"S2LC_PRODUCT_LEVEL": "GeoTIFF", "S2LC_PRODUCT_ID": "export", "S2LC_SENSING_TIME": ""}
    assert not change.same_acquisition(_dated(T1, **export), _dated(T2, **export))


def test_a_geotiff_map_is_not_classified_differently_from_a_product_map():
    geotiff = _dated(T2, S2LC_PRODUCT_LEVEL="GeoTIFF")
    assert change.settings_difference(_dated(T1), geotiff) == []  # its level is unknown, not different
    assert change.settings_difference(_dated(T1), _dated(T2, S2LC_PRODUCT_LEVEL="L1C")) == ["product level L2A and L1C"]
    assert repr(geotiff).endswith("(2021-04-11) <ClassMap 6x4 EPSG:32633 12 classes>>")  # a CRS given as text


def test_files_that_are_not_s2lc_classifications_are_refused(tmp_path, pair):
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=6, height=4, count=1, dtype="uint8", crs=CRS_UTM,
                       transform=TRANSFORM) as dst:
        dst.write(BEFORE, 1)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    out = tmp_path / "out"
    out.mkdir()
    change_map = change.compare(*pair).save(out)["map"]
    for path, why in ((plain, ""), (text, r" \(cannot be read as a raster\)"),
                      (change_map, r" \(it is a change map\)"), (tmp_path / "missing.tif", r" \(cannot be read")):
        with pytest.raises(MapError, match=rf"not an s2lc classification map: {path}{why}.*; pass the "
                                           r"<id>_landcover\.tif that `s2lc classify` writes"):
            change.compare(pair[0], path)


def test_geographic_maps_are_refused_for_areas(tmp_path):
    geo = Affine(0.0002, 0, 15, 0, -0.0002, 53)
    before = write_map(tmp_path, BEFORE, T1, crs="EPSG:4326", transform=geo)
    after = write_map(tmp_path, AFTER, T2, crs="EPSG:4326", transform=geo)
    with pytest.raises(MapError, match="areas need a projected CRS in metres, got EPSG:4326; reproject"):
        change.compare(before, after)


# ---- the real classify output -----------------------------------------------------------------


def _classification(when: str, data: np.ndarray, conf: np.ndarray):
    from s2lc.classify import Classification

    iso = tags(when)["S2LC_SENSING_TIME"]
    provenance = {"product_id": product_id(when), "level": "L2A", "baseline": "02.14", "sensing_time": iso,
                  "offsets_applied": {"B04": 0.0}, "cloud_fraction": 0.1,
                  "model": {"name": "eurosat-rgb", "sha256": SHA}, "parameters": {"stride": 1}}
    stats = {"status": "ok", "area_ha": {}}
    return Classification(class_map=data, transform=TRANSFORM, crs=CRS_UTM, legend=LEGEND, cell_map=data,
                          cell_confidence=conf, stride=1, product_id=product_id(when), stats=stats,
                          provenance=provenance)


def test_maps_saved_by_classify_are_compared_with_their_confidence(tmp_path):
    paths = [_classification(T1, BEFORE, CONF_BEFORE).save(tmp_path, polygons=False)["map"],
             _classification(T2, AFTER, CONF_AFTER).save(tmp_path, polygons=False)["map"]]
    loaded = change.load_map(paths[0])
    assert loaded.confidence is not None and loaded.sensing_time.year == 2020
    result = change.compare(*paths, min_area_ha=0)
    assert np.array_equal(result.matrix, expected_matrix())
    assert sorted(result.polygons().confidence_before.round(6)) == [0.75, 0.75, 0.8]


def test_identical_maps_show_no_change_and_still_write_every_output(tmp_path):
    result = change.compare(write_map(tmp_path / "a", BEFORE, T1), write_map(tmp_path / "b", BEFORE, T2))
    assert result.pixels["changed"] == 0 and result.transitions() == []
    assert [c.code for c in result.classes] == [UNCHANGED, NOT_COMPARED]
    assert result.pixels["not_compared_cloud"] == 2 and result.pixels["no_data"] == 2
    paths = result.save(tmp_path)
    assert len(pyogrio.read_dataframe(paths["polygons"], layer="change")) == 0
    assert json.loads(paths["summary"].read_text())["changed_fraction"] == 0


def test_an_all_cloud_date_compares_nothing_and_says_so(tmp_path, caplog):
    cloudy = np.full(BEFORE.shape, C, np.uint8)
    result = change.compare(write_map(tmp_path, BEFORE, T1), write_map(tmp_path, cloudy, T2))
    assert result.pixels["compared"] == 0 and result.pixels["not_compared_cloud"] == 22
    assert (result.codes[BEFORE != N] == NOT_COMPARED).all()
    assert "share no pixel with land cover at both dates" in caplog.text
    assert result.summary()["changed_fraction"] is None


def test_the_package_offers_every_public_name_of_its_modules():
    from s2lc.change import core, maps, results

    offered = set(change.__all__)
    for module in (core, maps, results):
        assert set(module.__all__) <= offered, module.__name__
    assert all(hasattr(change, name) for name in offered)


# ---- grids on one lattice ---------------------------------------------------------------------


def test_maps_on_one_lattice_are_compared_on_their_intersection(tmp_path, caplog):
    """The second map is a window of the same grid, two columns to the right and one row down,
    and reaches one column past the first: no resampling, only the overlap is compared."""
    before = write_map(tmp_path / "a", BEFORE, T1)
    after_data = np.full((4, 5), F, np.uint8)
    after_data[:3, :4] = AFTER[1:, 2:]
    after = write_map(tmp_path / "b", after_data, T2,
                      transform=from_origin(ORIGIN[0] + 2 * PIXEL, ORIGIN[1] - PIXEL, PIXEL, PIXEL))
    assert change.on_one_lattice(change.load_map(before).map, change.load_map(after).map)
    with caplog.at_level("WARNING", logger="s2lc.change"):
        result = change.compare(before, after)
    assert not result.aligned and result.before.cut and result.after.cut
    assert result.codes.shape == (3, 4) and result.transform == from_origin(ORIGIN[0] + 2 * PIXEL, ORIGIN[1] - PIXEL,
                                                                            PIXEL, PIXEL)
    assert np.array_equal(result.before.map.data, BEFORE[1:, 2:]) and np.array_equal(result.after.map.data, AFTER[1:, 2:])
    expected = change.compare_arrays(BEFORE[1:, 2:], AFTER[1:, 2:], result.before.map.classes)[0]
    assert np.array_equal(result.codes, expected)
    said = [r.getMessage() for r in caplog.records if "intersection" in r.getMessage()]
    assert len(said) == 1 and "4 columns x 3 rows" in said[0] and "20 m grid" in said[0]
    assert result.summary()["checks"]["grid"] == "one lattice, cut to the intersection"


def test_a_series_on_one_lattice_is_cut_to_the_common_intersection(tmp_path):
    first = write_map(tmp_path / "a", BEFORE, T1)
    second = write_map(tmp_path / "b", AFTER[:, 1:], T2, transform=from_origin(ORIGIN[0] + PIXEL, ORIGIN[1], PIXEL, PIXEL))
    third = write_map(tmp_path / "c", BEFORE[1:], T3, transform=from_origin(ORIGIN[0], ORIGIN[1] - PIXEL, PIXEL, PIXEL))
    result = change.time_series([third, first, second])
    assert [m.map.data.shape for m in result.maps] == [(3, 5)] * 3 and not any(result.aligned)
    assert np.array_equal(result.maps[1].map.data, AFTER[1:, 1:])


def test_grids_off_the_lattice_still_need_align(tmp_path):
    before = write_map(tmp_path / "a", BEFORE, T1)
    half = write_map(tmp_path / "b", AFTER, T2, transform=from_origin(ORIGIN[0] + PIXEL / 2, ORIGIN[1], PIXEL, PIXEL))
    assert not change.on_one_lattice(change.load_map(before).map, change.load_map(half).map)
    with pytest.raises(MapError, match="different grids; pass align=True"):
        change.compare(before, half)


def test_a_tenth_of_a_pixel_far_from_the_origin_is_off_the_lattice(tmp_path):
    a = change.load_map(write_map(tmp_path / "a", BEFORE, T1)).map
    far = change.load_map(write_map(tmp_path / "b", AFTER, T2, transform=from_origin(
        ORIGIN[0] + 20_000 * PIXEL + 0.1 * PIXEL, ORIGIN[1], PIXEL, PIXEL))).map
    assert not change.on_one_lattice(a, far)
