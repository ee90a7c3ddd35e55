import subprocess
import sys

import pytest
from click.testing import CliRunner

from s2lc import __version__
from s2lc.cli.main import COMMANDS, cli, flag_spelling


def test_version_and_help_list_every_command():
    runner = CliRunner()
    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
    r = runner.invoke(cli, ["--help"])
    assert r.exit_code == 0
    for name in COMMANDS:
        assert name in r.output


def test_python_dash_m_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "s2lc", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and __version__ in r.stdout


def test_bare_s2lc_prints_its_help_not_an_error():
    r = CliRunner().invoke(cli, [])
    assert "Usage:" in r.output and "Commands:" in r.output and "Error" not in r.output


def test_unknown_command_is_a_usage_error():
    r = CliRunner().invoke(cli, ["frobnicate"])
    assert r.exit_code == 2 and "No such command" in r.output


def test_errors_are_one_line_and_tracebacks_need_v(tmp_path):
    runner = CliRunner()
    folder = tmp_path / "not_a_product"
    folder.mkdir()
    r = runner.invoke(cli, ["info", str(folder)])
    assert r.exit_code == 1
    assert "not_a_product" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = runner.invoke(cli, ["-v", "info", str(folder)])
    assert r.exit_code == 1 and "Traceback" in r.output
    r = runner.invoke(cli, ["info", str(folder), "-v"])  # after the command too
    assert r.exit_code == 1 and "Traceback" in r.output


def test_every_command_lists_the_verbosity_options():
    for name in COMMANDS:
        r = CliRunner().invoke(cli, [name, "--help"])
        assert "-v, --verbose" in r.output and "-q, --quiet" in r.output, name


def test_help_does_not_import_torch():
    code = "import sys; from s2lc.cli.main import cli; cli(['--help'], standalone_mode=False); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().endswith("False"), r.stdout + r.stderr


@pytest.mark.parametrize("python, command_line", [
    ("device='cuda' asked for; use device='cpu' or device='auto'", "--device cuda asked for; use --device cpu or --device auto"),
    ("x: holds an earlier run; pass resume=True to continue it", "x: holds an earlier run; pass --resume to continue it"),
    ("comparing anyway (allow_model_mismatch=True)", "comparing anyway (--allow-model-mismatch)"),
    ("d: translate=40 must be below the patch size 32", "d: --translate 40 must be below the patch size 32"),
    ("name them: bands={'B04': 1, 'B03': 2}", "name them: --bands B04=1,B03=2"),
    ("does not match the given pretrained_sha256 (ab)", "does not match the given --pretrained-sha256 (ab)"),
    # words that are also parameter names, and parameters the command line does not have, stay as they are
    ("device 'cuda' has 3 bands; resume_from=True, layout=2", "device 'cuda' has 3 bands; resume_from=True, layout=2"),
])
def test_flag_spelling_writes_python_parameters_as_options(python, command_line):
    assert flag_spelling(python) == command_line
