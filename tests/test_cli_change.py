"""``s2lc change``: exit codes, messages, and the files written (or not)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from test_change import AFTER, BEFORE, CONF_AFTER, CONF_BEFORE, ORIGIN, PIXEL, T1, T2, T3, files, from_origin, write_map
from test_change_series import DATE1, DATE2, DATE3

from s2lc.cli.main import cli

PREFIX = "change_20200406_20210411"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture()
def pair(tmp_path):
    return (write_map(tmp_path / "maps", BEFORE, T1, confidence=CONF_BEFORE),
            write_map(tmp_path / "maps", AFTER, T2, confidence=CONF_AFTER))


def test_two_maps_write_the_change_outputs(pair, tmp_path):
    out = tmp_path / "new" / "out"  # created
    r = run("change", *pair, "-o", out)
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert "2020-04-06 → 2021-04-11: 0.20 ha changed of 0.76 ha compared" in r.stderr
    assert "largest: Forest → Residential 0.08 ha" in r.stderr
    assert "wrote 9 files to" in r.stderr
    assert len(files(out)) == 9
    with rasterio.open(out / f"{PREFIX}.tif") as src:
        assert src.crs == "EPSG:32633" and src.dtypes[0] == "uint8" and src.nodata == 0
        assert src.tags()["S2LC_KIND"] == "change" and src.tags(1)["CLASS_18"] == "Forest → Residential"


def test_json_goes_to_stdout(pair, tmp_path):
    r = run("-q", "change", *pair, "-o", tmp_path / "out", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["pixels"]["changed"] == 5 and summary["outputs"]["map"].endswith(f"{PREFIX}.tif")
    assert r.stderr == ""


def test_three_maps_make_a_series_in_date_order(tmp_path):
    folder = tmp_path / "maps"
    maps = [write_map(folder, DATE3, T3), write_map(folder, DATE1, T1), write_map(folder, DATE2, T2)]
    r = run("change", *maps, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    names = files(tmp_path / "out")
    assert {"change_20200406_20210411.tif", "change_20210411_20220406.tif", "change_20200406_20220406.tif",
            "trajectory_20200406_20220406.tif", "series_20200406_20220406.json"} <= set(names)
    lines = [line for line in r.stderr.splitlines() if "ha changed of" in line]
    assert lines[0].startswith("2020-04-06 → 2021-04-11") and lines[1].startswith("2021-04-11 → 2022-04-06")
    assert lines[2].startswith("2020-04-06 → 2022-04-06")
    assert "0.28 ha changed at least once, 0.08 ha flickered" in r.stderr
    assert "add up to 2.2 times the first-to-last change" in r.stderr


def test_refusals_are_one_line_exit_1_and_write_nothing(pair, tmp_path):
    inputs = files(tmp_path / "maps")
    cases = {
        "different grids": write_map(tmp_path / "g", AFTER, T2,
                                     transform=from_origin(ORIGIN[0] + PIXEL / 2, ORIGIN[1], PIXEL, PIXEL)),
        "come from different models": write_map(tmp_path / "m", AFTER, T2, sha="b" * 64),
        "do not overlap": write_map(tmp_path / "far", AFTER, T2,
                                    transform=from_origin(ORIGIN[0] + 50_000, ORIGIN[1], PIXEL, PIXEL)),
    }
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=6, height=4, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(*ORIGIN, PIXEL, PIXEL)) as dst:
        dst.write(AFTER, 1)
    cases["not an s2lc classification map"] = plain
    for why, second in cases.items():
        out = tmp_path / f"out-{why}"
        r = run("change", pair[0], second, "-o", out)
        assert r.exit_code == 1, (why, r.output)
        message = r.stderr.strip()
        assert message.startswith("Error: ") and why in message and str(second) in message, message
        assert len(message.splitlines()) == 1 and "Traceback" not in r.output
        assert not out.exists(), why
    assert files(tmp_path / "maps") == inputs


def test_align_and_allow_model_mismatch_let_the_comparison_run(pair, tmp_path):
    shifted = write_map(tmp_path / "g", AFTER, T2, sha="b" * 64,
                        transform=from_origin(ORIGIN[0] + PIXEL, ORIGIN[1], PIXEL, PIXEL))
    r = run("change", pair[0], shifted, "-o", tmp_path / "out", "--align")
    assert r.exit_code == 1 and r.stderr.strip().endswith("classify both dates with one model, or pass --allow-model-mismatch")
    r = run("change", pair[0], shifted, "-o", tmp_path / "out", "--align", "--allow-model-mismatch", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["checks"] == {"legend": "same", "grid": "aligned (nearest neighbour)", "model": "different, allowed",
                                 "settings": "same", "acquisition": "different"}
    assert "WARNING" in r.stderr and "different models" in r.stderr and "comparing anyway (--allow-model-mismatch)" in r.stderr


def test_existing_outputs_need_overwrite(pair, tmp_path):
    out = tmp_path / "out"
    assert run("change", *pair, "-o", out).exit_code == 0
    before = (out / f"{PREFIX}.json").stat().st_mtime_ns
    r = run("change", *pair, "-o", out)
    assert r.exit_code == 1 and "already exist; use --overwrite to replace" in r.stderr
    assert (out / f"{PREFIX}.json").stat().st_mtime_ns == before
    r = run("change", *pair, "-o", out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert (out / f"{PREFIX}.json").stat().st_mtime_ns > before


def test_usage_errors_exit_2(pair, tmp_path):
    r = run("change", pair[0], "-o", tmp_path / "out")
    assert r.exit_code == 2 and "give at least two maps" in r.stderr
    r = run("change", pair[0], tmp_path / "missing.tif", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "missing.tif" in r.stderr and "does not exist" in r.stderr
    r = run("change", pair[0], pair[0], "-o", tmp_path / "out")
    assert r.exit_code == 2 and "given more than once" in r.stderr
    r = run("change", *pair)
    assert r.exit_code == 2 and "-o" in r.stderr
    assert not (tmp_path / "out").exists()


def test_help_lists_the_options():
    r = run("change", "--help")
    assert r.exit_code == 0
    for option in ("--align", "--allow-model-mismatch", "--overwrite", "--json", "-o, --out"):
        assert option in r.stdout
    assert "change" in run("--help").stdout


def test_progress_bars_go_to_stderr_and_quiet_hides_them(pair, tmp_path):
    r = run("change", *pair, "-o", tmp_path / "a")
    assert "writing change_" in r.stderr and r.stdout == ""
    r = run("-qq", "change", *pair, "-o", tmp_path / "c")
    assert r.exit_code == 0 and r.stderr == ""
    r = run("-q", "change", *pair, "-o", tmp_path / "b")  # last: logging back at warnings for the tests after
    assert "writing change_" not in r.stderr and "ha changed of" in r.stderr  # -q keeps the summary, as classify's
    assert r.exit_code == 0 and r.stderr.strip().endswith(f"files to {tmp_path / 'b'}")
    with rasterio.open(tmp_path / "a" / f"{PREFIX}.tif") as a, rasterio.open(tmp_path / "b" / f"{PREFIX}.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))
