"""s2lc.change time series: ordering by sensing time, consecutive and first-to-last changes,
the trajectory (changes per pixel) and flicker."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import rasterio
from test_change import HA, ORIGIN, PIXEL, T1, T2, T3, A, C, F, N, P, R, files, from_origin, product_id, write_map

from s2lc import change, writers
from s2lc.errors import MapError, OutputError
from s2lc.legend import default_legend

CLASSES = default_legend().classes
# pixel:        p0 p1 p2 p3 p4 p5 p6 p7 p8 p9
DATE1 = np.array([F, F, F, F, F, N, N, F, P, F], np.uint8).reshape(2, 5)
DATE2 = np.array([F, P, P, C, C, F, N, F, F, P], np.uint8).reshape(2, 5)
DATE3 = np.array([F, F, R, P, F, P, F, P, P, P], np.uint8).reshape(2, 5)
# p0 stable; p1 F-P-F flicker; p2 F-P-R two changes; p3 F-cloud-P one change; p4 F-cloud-F none;
# p5 nodata-F-P one; p6 seen once; p7 F-F-P one; p8 P-F-P flicker; p9 F-P-P one
N_CHANGES = [0, 2, 2, 1, 0, 1, 0, 1, 2, 1]
FLICKER = [False, True, False, False, False, False, False, False, True, False]
CODES = [1, 130, 3, 2, 1, 2, 0, 2, 130, 2]


@pytest.fixture()
def series_files(tmp_path):
    """The three dates, in a shuffled order."""
    folder = tmp_path / "maps"
    return [write_map(folder, DATE3, T3), write_map(folder, DATE1, T1), write_map(folder, DATE2, T2)]


def test_maps_are_ordered_by_sensing_time_not_by_argument(series_files):
    result = change.time_series(series_files)
    assert [m.product_id for m in result.maps] == [product_id(T1), product_id(T2), product_id(T3)]
    assert result.labels == ["20200406", "20210411", "20220406"]
    assert [(p.before.product_id, p.after.product_id) for p in result.pairs] == [
        (product_id(T1), product_id(T2)), (product_id(T2), product_id(T3))]
    assert (result.overall.before.product_id, result.overall.after.product_id) == (product_id(T1), product_id(T3))


def test_consecutive_and_first_to_last_changes(series_files):
    result = change.time_series(series_files)
    assert [p.pixels["changed"] for p in result.pairs] == [4, 5]
    assert result.overall.pixels["changed"] == 4
    assert result.overall.pixels["unchanged"] == 4  # p0, p1 and p8 came back, p4 behind cloud
    summary = result.summary()
    assert summary["sum_of_consecutive_changes_ha"] == pytest.approx(9 * HA)
    assert summary["first_to_last"]["changed_ha"] == pytest.approx(4 * HA)
    assert summary["overstatement"] == pytest.approx(9 / 4)


def test_trajectory_counts_changes_skipping_cloud_and_flags_flicker(series_files):
    traj = change.time_series(series_files).trajectory
    assert traj.n_changes.ravel().tolist() == N_CHANGES
    assert traj.flicker.ravel().tolist() == FLICKER
    assert traj.n_observed.ravel().tolist() == [3, 3, 3, 2, 2, 2, 1, 3, 3, 3]
    assert traj.codes.ravel().tolist() == CODES


def test_trajectory_in_strips_matches_one_pass(monkeypatch):
    stack = np.stack([np.tile(d, (3, 1)) for d in (DATE1, DATE2, DATE3)])
    whole = change.trajectory_arrays(stack, CLASSES)
    monkeypatch.setattr(change.core, "_CHUNK_ROWS", 1)
    strips = change.trajectory_arrays(stack, CLASSES)
    assert np.array_equal(whole.codes, strips.codes) and np.array_equal(whole.flicker, strips.flicker)
    assert whole.codes[2:4].ravel().tolist() == CODES


def test_a_return_after_two_changes_is_flicker_and_a_new_class_is_not():
    # A -> F -> P -> A returns to A; A -> F -> P -> R never returns
    stack = np.array([[[A, A]], [[F, F]], [[P, P]], [[A, R]]], np.uint8)
    traj = change.trajectory_arrays(stack, CLASSES)
    assert traj.n_changes.tolist() == [[3, 3]] and traj.flicker.tolist() == [[True, False]]
    assert traj.codes.tolist() == [[change.FLICKER + 3, 1 + 3]]


def test_trajectory_legend_names_what_each_code_means():
    labels = {c.code: c.label for c in change.trajectory_classes(np.array(CODES))}
    assert labels == {1: "Stable (no change)", 2: "Changed once", 3: "Changed 2 times",
                      130: "Flicker: changed 2 times, back to an earlier class"}


def test_trajectory_polygons_carry_the_history(series_files):
    gdf = change.time_series(series_files).trajectory_polygons()
    assert list(gdf.columns) == ["trajectory_code", "history", "first_class", "last_class", "n_changes", "flicker",
                                 "area_ha", "geometry"]
    rows = sorted(zip(gdf.history, gdf.n_changes, gdf.flicker, gdf.trajectory_code, gdf.area_ha.round(6)))
    assert rows == [
        ("Forest → Pasture", 1, False, 2, HA),  # p3 (through cloud), p5 (after no data), p7, p9: not adjacent
        ("Forest → Pasture", 1, False, 2, HA),
        ("Forest → Pasture", 1, False, 2, HA),
        ("Forest → Pasture", 1, False, 2, HA),
        ("Forest → Pasture → Forest", 2, True, 130, HA),
        ("Forest → Pasture → Residential", 2, False, 3, HA),
        ("Pasture → Forest → Pasture", 2, True, 130, HA),
    ]
    p2 = gdf[gdf.history == "Forest → Pasture → Residential"].geometry.iloc[0]
    x0, y0 = ORIGIN
    assert p2.bounds == (x0 + 2 * PIXEL, y0 - PIXEL, x0 + 3 * PIXEL, y0)
    assert set(gdf.first_class) == {"Forest", "Pasture"} and set(gdf.last_class) == {"Forest", "Pasture", "Residential"}


def test_save_writes_pairs_first_to_last_and_trajectory(series_files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    result = change.time_series(series_files)
    labels, write_quicklook = [], writers.write_quicklook

    def spy(*args, **kwargs):  # the real writer, noting the no-data label each figure gets
        labels.append(kwargs.get("nodata_label", "No data"))
        return write_quicklook(*args, **kwargs)

    monkeypatch.setattr(writers, "write_quicklook", spy)
    paths = result.save(out)
    assert labels == ["Land cover at fewer than two dates"]  # the pairs' figures are drawn by their own code
    names = files(out)
    for prefix in ("change_20200406_20210411", "change_20210411_20220406", "change_20200406_20220406"):
        assert {f"{prefix}.tif", f"{prefix}.gpkg", f"{prefix}_matrix_ha.csv", f"{prefix}.json"} <= set(names)
    assert {"trajectory_20200406_20220406.tif", "trajectory_20200406_20220406.qml", "trajectory_20200406_20220406.gpkg",
            "trajectory_20200406_20220406.png", "series_20200406_20220406.json"} <= set(names)
    assert len(names) == 3 * 9 + 3 + 1 + 1 + 1

    with rasterio.open(paths["trajectory"]) as src:
        assert src.read(1).ravel().tolist() == CODES and src.nodata == 0 and src.crs == "EPSG:32633"
        assert src.tags()["S2LC_KIND"] == "change"
        assert json.loads(src.tags()["S2LC_DATES"])[0].startswith("2020-04-06")
        assert src.tags(1)["CLASS_130"] == "Flicker: changed 2 times, back to an earlier class"
    gdf = pyogrio.read_dataframe(paths["trajectory_polygons"], layer="trajectory")
    assert len(gdf) == 7 and gdf.flicker.sum() == 2
    summary = json.loads(paths["summary"].read_text())
    assert summary["trajectory"]["flicker_ha"] == pytest.approx(2 * HA)
    assert summary["trajectory"]["changed_at_least_once_ha"] == pytest.approx(7 * HA)
    once = str(change.trajectory_code(1, False))
    assert summary["trajectory"]["codes"][once] == "Changed once"
    assert summary["trajectory"]["area_ha_by_code"][once] == pytest.approx(4 * HA)
    assert [d["product_id"] for d in summary["dates"]] == [product_id(T1), product_id(T2), product_id(T3)]
    with rasterio.open(out / "change_20200406_20220406.tif") as src:
        assert src.tags()["S2LC_BEFORE_PRODUCT_ID"] == product_id(T1)
        assert src.tags()["S2LC_AFTER_PRODUCT_ID"] == product_id(T3)


def test_save_refuses_if_any_output_exists_and_writes_nothing(series_files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "trajectory_20200406_20220406.qml").write_text("mine")
    with pytest.raises(OutputError, match="trajectory_20200406_20220406.qml already exists"):
        change.time_series(series_files).save(out)
    assert files(out) == ["trajectory_20200406_20220406.qml"]


def test_two_maps_make_a_series_of_one_pair(series_files, tmp_path):
    result = change.time_series(series_files[:2])
    assert len(result.pairs) == 1 and result.overall is result.pairs[0]
    assert result.trajectory.n_changes.max() <= 1 and not result.trajectory.flicker.any()
    result.save(tmp_path / "maps")
    names = files(tmp_path / "maps")
    assert sum(n.startswith("change_") for n in names) == 9


def test_a_map_without_sensing_time_among_dated_ones_is_named(tmp_path, series_files):
    undated = write_map(tmp_path / "undated", DATE2, None)
    with pytest.raises(MapError, match=r"^\S*undated/\S*_landcover\.tif has no sensing time \(S2LC_SENSING_TIME\) but "
                                       r"the other maps do, .*`s2lc classify --date YYYY-MM-DD`$"):
        change.time_series([*series_files[:2], undated])


def test_a_series_of_undated_maps_runs_in_the_order_given_with_a_warning(tmp_path, caplog):
    given = [write_map(tmp_path / name, data, None) for name, data in (("c", DATE3), ("a", DATE1), ("b", DATE2))]
    with caplog.at_level("WARNING", logger="s2lc.change"):
        result = change.time_series(given)
    assert [m.path for m in result.maps] == given
    said = [r.getMessage() for r in caplog.records if "no map has a sensing time" in r.getMessage()]
    assert len(said) == 1 and "in the order given" in said[0] and "--date" in said[0]
    assert np.array_equal(result.pairs[0].codes, change.compare(given[0], given[1]).codes)


def test_two_maps_of_one_date_are_refused(tmp_path, series_files):
    again = write_map(tmp_path / "again", DATE2, T2)
    with pytest.raises(MapError, match="have the same sensing time 2021-04-11T10:10:31"):
        change.time_series([*series_files, again])


def test_every_map_is_checked_against_the_first(tmp_path, series_files):
    other_model = write_map(tmp_path / "other", DATE2, "20230101T100000", sha="c" * 64)
    with pytest.raises(MapError, match=r"other/.*_landcover\.tif \(model eurosat-rgb, sha256 cccccccccccc\) come from "
                                       "different models"):
        change.time_series([*series_files, other_model])
    shifted = write_map(tmp_path / "shifted", DATE2, "20230101T100000",
                        transform=from_origin(ORIGIN[0] + 1.5 * PIXEL, ORIGIN[1], PIXEL, PIXEL))  # off the lattice
    with pytest.raises(MapError, match="different grids; pass align=True"):
        change.time_series([*series_files, shifted])
    result = change.time_series([*series_files, shifted], align=True)
    assert result.aligned == (False, False, False, True)
    assert (result.maps[-1].map.data[:, 0] == N).all()
    assert result.pairs[-1].aligned and not result.pairs[0].aligned


def test_a_series_needs_two_maps(series_files):
    with pytest.raises(MapError, match="at least two maps, got 1"):
        change.time_series(series_files[:1])


def test_the_example_classifies_each_product_once_then_walks_the_series(tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    from test_change import _classification

    script = Path(__file__).resolve().parents[1] / "examples" / "time_series.py"
    spec = importlib.util.spec_from_file_location("time_series_example", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    scenes = {"c.SAFE": (T3, DATE3), "a.SAFE": (T1, DATE1), "b.SAFE": (T2, DATE2)}

    class Product:  # what the script reads from s2lc.product.open_product
        def __init__(self, name):
            self.id = product_id(scenes[name][0])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    classified = []

    def classify(product, model, **kwargs):
        classified.append(product)
        when, data = scenes[product]
        return _classification(when, data, np.full(data.shape, 0.7, np.float32))

    monkeypatch.setattr(example, "open_product", Product)
    monkeypatch.setattr(example, "classify", classify)
    assert example.main([*scenes, "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("2020-04-06 -> 2021-04-11") and "2020-04-06 -> 2022-04-06" in out
    assert "of which flicker 0.1 ha" in out and "2.2 times the first-to-last change" in out
    assert sorted(classified) == sorted(scenes)
    assert (tmp_path / "change" / "series_20200406_20220406.json").is_file()
    assert len(list((tmp_path / "maps").glob("*_landcover.tif"))) == 3
    # a second run reuses the maps, and refuses to replace the change outputs without --overwrite
    assert example.main([*scenes, "-o", str(tmp_path)]) == 1
    assert sorted(classified) == sorted(scenes)
    assert "already exist; use overwrite=True" in capsys.readouterr().err


def test_a_stable_series_writes_an_empty_trajectory(tmp_path):
    maps = [write_map(tmp_path / "maps", DATE1, when) for when in (T1, T2, T3)]
    result = change.time_series(maps)
    assert not result.trajectory.n_changes.any() and result.summary()["overstatement"] is None
    paths = result.save(tmp_path)
    assert len(pyogrio.read_dataframe(paths["trajectory_polygons"], layer="trajectory")) == 0
    with rasterio.open(paths["trajectory"]) as src:
        assert set(np.unique(src.read(1)).tolist()) == {0, 1}


def test_results_print_as_one_line_each(series_files):
    """A user exploring in a notebook prints these: one line each, not the arrays."""
    series = change.time_series(series_files)
    texts = [repr(x) for x in (series, series.overall, series.trajectory, *series.pairs, *series.maps, series.maps[0].map)]
    assert all("\n" not in t and len(t) < 300 and "array" not in t for t in texts), texts
    assert texts[0] == "<SeriesResult 3 dates 2020-04-06 … 2022-04-06, 2 pairs>"
    assert texts[1].startswith("<ChangeResult 2020-04-06 → 2022-04-06: ") and " ha changed of " in texts[1]
    assert texts[2] == "<Trajectory 5x2: 7 pixels changed at least once, 2 flicker>"
    assert texts[-1] == "<ClassMap classification 5x2 EPSG:32633 12 classes>"
