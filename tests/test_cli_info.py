"""``s2lc info``: the readable summary, JSON on stdout, the --bands option."""

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from s2lc.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def test_summary_names_level_baseline_offset_grid_and_fractions(l2a_new):
    result = run("info", l2a_new)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == l2a_new.name.removesuffix(".SAFE")
    assert "L2A, processing baseline 04.00" in out
    assert "-1000 applied: values are reflectance x 10000" in out
    assert "240 x 240 px of 10 m, EPSG:32633, upper-left (300000, 5900040)" in out
    assert "B02 B03 B04 B08 read at 10 m" in out and "B01 B09 read at 60 m" in out
    assert "of valid pixels flagged by SCL" in out and "83.3 % of the grid" in out


def test_json_goes_to_stdout_and_messages_to_stderr(l2a_r60m):
    result = run("info", "--json", l2a_r60m)
    assert result.exit_code == 0
    meta = json.loads(result.stdout)  # warnings did not leak into the data
    assert meta["level"] == "L2A" and meta["baseline"] == "05.10" and meta["offset_applied"] is True
    assert meta["native_resolution"]["B04"] == 60 and "B08" in meta["bands_missing"]
    assert meta["grid"]["epsg"] == 32633 and meta["grid"]["width"] == 240
    assert "WARNING" not in result.stderr  # what the reader found is in the output; -v logs it too
    assert "only coarser than native in this product: B02 at 60 m" in run("-v", "info", "--json", l2a_r60m).stderr


def test_a_pre_04_product_reports_no_offset(l1c_old):
    result = run("info", l1c_old)
    assert "none (baseline before 04.00)" in result.stdout and "MSK_CLOUDS_B00" in result.stdout


def test_bands_option_names_geotiff_bands(tmp_path):
    path = tmp_path / "rgb.tif"
    data = np.arange(1, 3 * 12 * 12 + 1, dtype=np.uint16).reshape(3, 12, 12)
    profile = dict(driver="GTiff", width=12, height=12, count=3, dtype="uint16", crs="EPSG:32633",
                   transform=Affine(10, 0, 0, 0, -10, 120), nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    assert run("info", path).exit_code == 1
    result = run("info", "--json", "--bands", "B04=1,B03=2,B02=3", path)
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)
    assert meta["level"] == "GeoTIFF" and meta["bands_available"] == ["B02", "B03", "B04"] and meta["cloud_source"] is None


@pytest.mark.parametrize("command", ["info", "classify"])
@pytest.mark.parametrize("value", ["B04", "B04=one", "=1", "B04=1,=1", "B04=1,,B03=2", "B04=0", "B04=1,b04=2", ""])
def test_a_malformed_bands_option_is_a_usage_error(l1c_old, tmp_path, command, value):
    """info and classify read --bands with one parser, and refuse what it refuses in one line."""
    out = ["-o", tmp_path / "out"] if command == "classify" else []
    result = run(command, "--bands", value, *out, l1c_old)
    message = result.stderr.strip()
    assert result.exit_code == 2 and len(message.splitlines()) == 1, result.output
    assert f"Invalid value for '--bands': {value!r}: " in message and "write BAND=INDEX pairs" in message
    assert not (tmp_path / "out").exists()
