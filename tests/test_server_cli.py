"""``s2lc serve``: options reach the app and uvicorn, failures are one line, and the command
costs nothing (no fastapi import) until it runs. uvicorn.run is replaced: nothing listens here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from s2lc.checkpoint import RGB_SCALING, ModelContract, save_checkpoint
from s2lc.cli.main import cli
from s2lc.models import build_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("resnet18", 3, 2).eval()
    contract = ModelContract(arch="resnet18", bands=["B04", "B03", "B02"], classes=["Forest", "SeaLake"],
                             scaling=dict(RGB_SCALING), mean=[0.5] * 3, std=[0.25] * 3, name="cli-tiny")
    path = tmp_path_factory.mktemp("model") / "cli.safetensors"
    save_checkpoint(path, model, contract, dtype=torch.float32)
    return path


@pytest.fixture
def captured_run(monkeypatch):
    pytest.importorskip("uvicorn")
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_options_reach_the_app_and_uvicorn(checkpoint, captured_run):
    pytest.importorskip("fastapi")
    r = CliRunner().invoke(cli, ["serve", "--model", str(checkpoint), "--port", "8765", "--max-upload-mb", "1.5",
                                 "--batch-size", "4", "--max-wait-ms", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    (app, kw), = captured_run
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8765 and kw["log_config"] is None
    assert app.state.batcher.max_batch == 4 and app.state.batcher.max_wait_s == 0
    assert app.state.loaded.contract.name == "cli-tiny"
    assert "serving cli-tiny on http://127.0.0.1:8765" in r.stderr and r.stdout == ""


def test_quiet_silences_the_banner(checkpoint, captured_run):
    pytest.importorskip("fastapi")
    r = CliRunner().invoke(cli, ["-q", "serve", "--model", str(checkpoint)])
    assert r.exit_code == 0 and r.stderr == "" and len(captured_run) == 1


def test_missing_model_is_one_line_and_nothing_is_served(tmp_path, captured_run):
    pytest.importorskip("fastapi")
    r = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "none.safetensors")])
    assert r.exit_code == 2
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("Error: Invalid value for '--model'") and "none.safetensors" in line and "does not exist" in line
    assert captured_run == []


def test_missing_extra_says_how_to_install(monkeypatch, captured_run):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code == 1
    assert r.stderr.strip() == 'Error: s2lc serve needs fastapi: pip install "s2lc[serve]"'
    assert captured_run == []


@pytest.mark.parametrize("args", [["--port", "0"], ["--max-upload-mb", "0"], ["--batch-size", "0"], ["--device", "tpu"]])
def test_bad_options_are_usage_errors(args):
    r = CliRunner().invoke(cli, ["serve", *args])
    assert r.exit_code == 2 and "Invalid value" in r.stderr


def test_help_lists_serve_without_importing_the_server():
    code = (
        "import sys; from click.testing import CliRunner; from s2lc.cli.main import cli; "
        "r = CliRunner().invoke(cli, ['--help']); assert 'serve' in r.output, r.output; "
        "r = CliRunner().invoke(cli, ['serve', '--help']); assert '--max-wait-ms' in r.output, r.output; "
        "heavy = [m for m in ('fastapi', 'uvicorn', 'torch', 's2lc.server') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
