"""Many products: in this process and on a real Dask LocalCluster of worker processes."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from s2lc.batch import BATCH_SUMMARY, classify_many, expand_inputs, product_id
from s2lc.cli.main import cli
from s2lc.errors import ArgumentError
from s2lc.testing import make_product

from toymodel import brightness_model

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    paths = [make_product(root / f"p{i}", level, baseline, size=480, seed=i)
             for i, (level, baseline) in enumerate([("L1C", "02.09"), ("L1C", "04.00"), ("L2A", "04.00"),
                                                    ("L2A", "02.14")])]
    return paths, brightness_model(root / "toy.safetensors")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def arrays(folder, pid):
    out = []
    for kind in ("landcover", "confidence"):
        with rasterio.open(folder / pid / f"{pid}_{kind}.tif") as src:
            out.append(src.read())
    return out


def no_scratch(folder):
    return not [p for p in folder.rglob("*") if p.name.endswith(".s2lc-tmp")]


def test_inputs_from_paths_globs_and_lists(products, tmp_path):
    paths, _ = products
    listed = tmp_path / "list.txt"
    listed.write_text(f"# two products\n{paths[0]}\n\n{paths[1].parent}/*.SAFE\n")
    assert expand_inputs([f"@{listed}", str(paths[2])]) == [paths[0], paths[1], paths[2]]
    with pytest.raises(ArgumentError, match="no such file"):
        expand_inputs([str(paths[0]), str(tmp_path / "missing.SAFE")])
    with pytest.raises(ArgumentError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.SAFE")])
    with pytest.raises(ArgumentError, match="give each product once"):
        expand_inputs([str(paths[0]), str(paths[0])])
    assert product_id(paths[0]) == paths[0].name.removesuffix(".SAFE")


def test_usage_errors_come_before_any_work(products, tmp_path):
    paths, model = products
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["classify", str(paths[0]), str(tmp_path / "nope.SAFE"), "-o", str(out),
                                 "--model", str(model)])
    assert r.exit_code == 2 and "nope.SAFE: no such file or folder" in r.output and not out.exists()


def test_a_cluster_gives_the_maps_of_the_loop_bit_for_bit(products, client, tmp_path):
    paths, model = products
    here = classify_many(paths, tmp_path / "here", model)
    there = classify_many(paths, tmp_path / "there", model, client=client)
    assert list(here.status) == list(there.status) == ["done"] * 4
    for p in paths:
        pid = product_id(p)
        for a, b in zip(arrays(tmp_path / "here", pid), arrays(tmp_path / "there", pid)):
            assert np.array_equal(a, b, equal_nan=True)
    summary = json.loads((tmp_path / "there" / BATCH_SUMMARY[1]).read_text())
    assert summary["counts"] == {"done": 4} and [r["product"] for r in summary["products"]] == [str(p) for p in paths]
    assert (tmp_path / "there" / BATCH_SUMMARY[0]).read_text().count("\n") == 5


def test_skip_existing_leaves_finished_products_alone(products, client, tmp_path):
    paths, model = products
    classify_many(paths[:2], tmp_path, model, client=client)
    stamp = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*_landcover.tif")}
    table = classify_many(paths, tmp_path, model, client=client, skip_existing=True)
    assert list(table.status) == ["skipped", "skipped", "done", "done"]
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())


def test_a_corrupt_product_is_reported_and_the_others_finish(products, client, tmp_path):
    paths, model = products
    broken = tmp_path / "broken" / "S2A_MSIL1C_20200101T000000_N0209_R065_T33UUU_20200101T000000.SAFE"
    broken.mkdir(parents=True)
    (broken / "MTD_MSIL1C.xml").write_text("<not xml")
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["-q", "classify", str(paths[0]), str(broken), str(paths[1]), "-o", str(out),
                                 "--model", str(model), "--scheduler", client.scheduler.address])
    assert r.exit_code == 1, r.output
    assert "MTD_MSIL1C.xml" in r.stderr and "failed" in r.stderr
    rows = json.loads((out / BATCH_SUMMARY[1]).read_text())["products"]
    assert [x["status"] for x in rows] == ["done", "failed", "done"]
    assert rows[1]["error"] and "\n" not in rows[1]["error"]
    assert no_scratch(out)


def test_a_worker_killed_mid_run_leaves_no_partial_file_and_every_product_ends_done(products, client, tmp_path):
    paths, model = products
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.05)

    thread = threading.Thread(target=kill_a_busy_worker)
    thread.start()
    table = classify_many(paths, tmp_path, model, client=client)
    thread.join()
    assert killed, "no worker was busy to kill"
    assert list(table.status) == ["done"] * 4
    assert no_scratch(tmp_path)
    for p in paths:
        pid = product_id(p)
        files = sorted(f.name for f in (tmp_path / pid).iterdir())
        assert f"{pid}_landcover.tif" in files and f"{pid}_landcover.json" in files


def _tile_map(folder, tile, when, data, conf):
    from test_change import CLASSES, CRS_UTM, TRANSFORM, tags

    from s2lc import writers

    t = tags(when)
    t["S2LC_PRODUCT_ID"] = t["S2LC_PRODUCT_ID"].replace("T33UUU", tile)
    path = folder / f"{t['S2LC_PRODUCT_ID']}_landcover.tif"
    writers.write_class_map(path, data, TRANSFORM, CRS_UTM, CLASSES, t)
    writers.write_confidence(folder / f"{t['S2LC_PRODUCT_ID']}_confidence.tif", conf, TRANSFORM, CRS_UTM, t)
    return path


@pytest.fixture()
def tiles(tmp_path):
    from test_change import AFTER, BEFORE, CONF_AFTER, CONF_BEFORE, T1, T2, T3

    maps = tmp_path / "maps"
    (maps / "deep").mkdir(parents=True)
    for tile in ("T33UUU", "T32TQM"):
        _tile_map(maps, tile, T1, BEFORE, CONF_BEFORE)
        _tile_map(maps / "deep", tile, T2, AFTER, CONF_AFTER)
    _tile_map(maps, "T33UUU", T3, BEFORE, CONF_BEFORE)  # three dates of one tile: a series
    _tile_map(maps, "T31UFU", T1, BEFORE, CONF_BEFORE)  # one date only
    return maps


@pytest.mark.parametrize("on_cluster", [False, True])
def test_a_folder_of_maps_of_several_tiles_is_compared_tile_by_tile(tiles, tmp_path, client, on_cluster):
    out = tmp_path / "out"
    args = ["-q", "change", str(tiles), "-o", str(out), "--min-area", "0"]
    if on_cluster:
        args += ["--scheduler", client.scheduler.address]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    rows = {x["tile"]: x for x in json.loads((out / BATCH_SUMMARY[1]).read_text())["tiles"]}
    assert {t: x["status"] for t, x in rows.items()} == {"T31UFU": "skipped", "T32TQM": "done", "T33UUU": "done"}
    assert (rows["T32TQM"]["maps"], rows["T33UUU"]["maps"]) == (2, 3)
    assert (out / "T32TQM" / "change_20200406_20210411.tif").exists()
    assert (out / "T33UUU" / "trajectory_20200406_20220406.tif").exists()
    assert "the only map of tile T31UFU" in rows["T31UFU"]["error"] and no_scratch(out)
