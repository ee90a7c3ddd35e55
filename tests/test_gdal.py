"""GDAL's configuration (``s2lc.gdal``): entered where work starts, from Python as from the command
line, in every thread that reads; and nothing set at import."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.env import get_gdal_config, hasenv

from s2lc import change
from s2lc.classify import classify
from s2lc.cli.main import cli
from s2lc.gdal import GDAL_OPTIONS, WHOLE_RASTER_CACHEMAX, gdal_env
from s2lc.product import open_product

from toymodel import brightness_model

#: What every read of a product runs under, as GDAL itself reports it.
EXPECTED = {"GDAL_NUM_THREADS": 1, "GDAL_CACHEMAX": GDAL_OPTIONS["GDAL_CACHEMAX"]}


@pytest.fixture()
def reads(monkeypatch):
    """Every ``DatasetReader.read``: the thread it ran in and the GDAL options it ran under."""
    seen = []
    real = rasterio.io.DatasetReader.read

    def read(self, *args, **kwargs):
        seen.append((threading.current_thread().name, {k: get_gdal_config(k) for k in EXPECTED}))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", read)
    return seen


def test_importing_s2lc_and_every_module_changes_no_environment_variable():
    code = """
import importlib, json, os, pkgutil
before = dict(os.environ)
import s2lc
modules = [m.name for m in pkgutil.walk_packages(s2lc.__path__, "s2lc.") if m.name != "s2lc.__main__"]
for name in modules:
    importlib.import_module(name)
changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}
print(json.dumps({"modules": len(modules), "torch": "torch" in __import__("sys").modules, "changed": sorted(changed)}))
"""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["modules"] > 30 and result["torch"]  # s2lc.models and the rest were imported
    assert result["changed"] == []


@pytest.mark.parametrize("user_value", [None, "ACTIVE"])
def test_the_command_line_asks_openmp_to_wait_passively_before_torch_loads(user_value):
    code = """
import os, sys
from s2lc.cli.main import cli
cli(["change", "--help"], standalone_mode=False)
print(os.environ.get("OMP_WAIT_POLICY"), "torch" in sys.modules)
"""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user_value:
        env["OMP_WAIT_POLICY"] = user_value
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.split()[-2:] == [user_value or "PASSIVE", "False"], r.stdout + r.stderr


def test_gdal_env_applies_the_options_once_and_lets_an_override_nest():
    assert not hasenv()
    with gdal_env():
        assert {k: get_gdal_config(k) for k in EXPECTED} == EXPECTED
        outer = rasterio.env.local._env
        with gdal_env():
            assert rasterio.env.local._env is outer  # already under it: nothing entered again
        with gdal_env(GDAL_CACHEMAX=WHOLE_RASTER_CACHEMAX):
            assert get_gdal_config("GDAL_CACHEMAX") == WHOLE_RASTER_CACHEMAX
            assert get_gdal_config("GDAL_NUM_THREADS") == 1
        assert {k: get_gdal_config(k) for k in EXPECTED} == EXPECTED
    assert not hasenv() and get_gdal_config("GDAL_NUM_THREADS") is None


def test_a_product_read_from_python_runs_under_the_options(l1c_new, reads):
    """The full-tile reader's settings (JPEG 2000 threads, block cache) apply to every read."""
    with open_product(l1c_new) as p:
        p.read(["B04", "B11"])
        p.read_averaged(["B04"], (4, 4))
        p.info()
    assert len(reads) > 5 and all(options == EXPECTED for _, options in reads), reads


@pytest.mark.parametrize("how", ["python", "cli"])
def test_classify_reads_under_the_options_in_its_read_ahead_thread_too(tmp_path, l1c_new, reads, how):
    toy = brightness_model(tmp_path / "toy.safetensors")
    if how == "python":
        classify(l1c_new, toy, strip_rows=64)
    else:
        r = CliRunner().invoke(cli, ["-q", "classify", str(l1c_new), "-o", str(tmp_path / "out"), "--model", str(toy)])
        assert r.exit_code == 0, r.output
    assert {thread for thread, _ in reads} - {"MainThread"}, "no read in the read-ahead thread"
    assert all(options == EXPECTED for _, options in reads), reads
    assert not hasenv()


def test_change_reads_maps_under_the_options_with_the_writers_cache(tmp_path, l1c_new, reads):
    toy = brightness_model(tmp_path / "toy.safetensors")
    result = classify(l1c_new, toy)
    first = result.save(tmp_path / "a")["map"]
    second = result.save(tmp_path / "b")["map"]
    reads.clear()
    compared = change.compare(first, second)
    assert np.all(compared.summary()["area_ha"]["changed"] == 0)
    # the maps through s2lc.writers, with its cache; their confidence rasters as compare's own reads
    caches = sorted(options.pop("GDAL_CACHEMAX") for _, options in reads)
    assert caches == [WHOLE_RASTER_CACHEMAX] * 2 + [GDAL_OPTIONS["GDAL_CACHEMAX"]] * 2
    assert all(options == {"GDAL_NUM_THREADS": 1} for _, options in reads), reads
