"""The ``s2lc`` click group: version, verbosity, logging and error reporting, and what the
commands share: choices built from :mod:`s2lc.options`, the ``--clouds`` and ``--bands`` options,
and the options that library messages name as Python parameters (:data:`FLAGS`).

Each command lives in its own module ``s2lc.cli.<name>`` exposing a click command of the same
name; the group loads it only when it is invoked, so ``s2lc --help`` stays fast.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import os
import re
import sys
import traceback
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Callable, Iterator

import click

from s2lc import __version__
from s2lc.errors import ArgumentError, DependencyError, S2lcError
from s2lc.gdal import gdal_env
from s2lc.options import Clouds, parse_bands

__all__ = ["FLAGS", "choice", "classify_options", "cli", "clouds_option", "echo_batch", "flag_spelling",
           "parse_bands_option", "progress_enabled", "summary_enabled"]


def choice(kind: type[StrEnum]) -> click.Choice:
    """A ``click.Choice`` of the values of one of :mod:`s2lc.options`' enums, in its order."""
    return click.Choice([member.value for member in kind])


#: ``--clouds``: where the cloud mask comes from.
clouds_option = click.option(
    "--clouds", default="auto", show_default=True, type=choice(Clouds),
    help="Cloud mask: the product's own (auto: else, for a Level-1C product without one, detected with "
         "s2cloudless if installed), detected with s2cloudless, cloud and shadow detected with ukis-csmask, or none.",
)


def classify_options(prefix: str = "") -> Callable:
    """The options of ``s2lc classify`` that shape a map (model, device, precision, TTA, batch
    size, stride, cloud threshold and source), as one decorator; ``prefix`` starts each help text
    (``"Scenes only: "`` for ``s2lc change``)."""
    from s2lc.options import Device, Precision

    def say(text: str) -> str:
        text = prefix + text
        return text[:1].upper() + text[1:]

    options = [
        click.option("--model", default=None, type=click.Path(exists=True, dir_okay=False),
                     help=say("s2lc checkpoint; default: the shipped EuroSAT RGB model.")),
        click.option("--device", default="auto", show_default=True, type=choice(Device)),
        click.option("--precision", default="auto", show_default=True, type=choice(Precision),
                     help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."),
        click.option("--tta", is_flag=True, help=say("average each patch over its 8 flips/rotations: more "
                     "accurate, 8x the model's time.")),
        click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1)),
        click.option("--stride", default="64", show_default=True, type=click.Choice(["64", "32", "16", "8"]),
                     help=say("pixels between patches; below 64, overlapping patches are averaged into a finer map.")),
        click.option("--max-cloud", default=0.5, show_default=True, type=click.FloatRange(0, 1),
                     help=say("patches with a larger cloud fraction are marked cloud.")),
        clouds_option,
    ]

    def apply(f: Callable) -> Callable:
        for option in reversed(options):
            f = option(f)
        return f

    return apply


def echo_batch(table, key: str, what: str, summary: Path, as_json: bool) -> None:
    """Report a batch (:mod:`s2lc.batch`): its rows as JSON on stdout, or on stderr each row that
    did not finish and the counts; exit 1 when one failed."""
    import json

    if as_json:
        click.echo(json.dumps({what: table.to_dict(orient="records")}, indent=2, default=str))
    elif summary_enabled():
        for row in table.itertuples():
            if row.status != "done" and row.error:
                click.echo(f"{getattr(row, key)}: {row.status}: {row.error}", err=True)
        counts = table["status"].value_counts()
        click.echo(f"{len(table)} {what}: {counts.get('done', 0)} done, {counts.get('skipped', 0)} skipped, "
                   f"{counts.get('failed', 0)} failed; summary in {summary}", err=True)
    if (table["status"] == "failed").any():
        raise SystemExit(1)


def parse_bands_option(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> dict[str, int] | None:
    """The ``--bands`` callback: :func:`s2lc.options.parse_bands`, or None when the option is not given.

    Raises:
        click.BadParameter: not comma-separated BAND=INDEX pairs.
    """
    if value is None:
        return None
    try:
        return parse_bands(value)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


#: The Python parameters that library messages name, and the options that set them: a message
#: says ``device='cpu'`` or ``resume=True`` to a Python caller, and ``--device cpu`` or
#: ``--resume`` on the command line (:func:`flag_spelling`).
FLAGS = {
    "align": "--align",
    "allow_model_mismatch": "--allow-model-mismatch",
    "bands": "--bands",
    "clouds": "--clouds",
    "device": "--device",
    "overwrite": "--overwrite",
    "pretrained": "--pretrained",
    "pretrained_sha256": "--pretrained-sha256",
    "resume": "--resume",
    "sensing_time": "--date",
    "translate": "--translate",
}
#: ``name=value`` (a string, a dict, True or a number); a name with an underscore also on its own.
_PYTHON_SPELLING = re.compile(
    r"\b(?P<name>" + "|".join(sorted(FLAGS, key=len, reverse=True)) + r")\b"
    r"(?:=(?P<value>'[^']*'|\{[^{}]*\}|True|-?[0-9]+(?:\.[0-9]+)?))?"
)


def flag_spelling(message: str) -> str:
    """``message`` with the Python parameters of :data:`FLAGS` written as their options:
    ``device='cpu'`` -> ``--device cpu``, ``resume=True`` -> ``--resume``,
    ``bands={'B04': 1, 'B03': 2}`` -> ``--bands B04=1,B03=2``. A name without a value is rewritten
    only where it holds an underscore (``pretrained_sha256``): ``device`` alone is also a word."""

    def flag(match: re.Match) -> str:
        name, text = match["name"], match["value"]
        if text is None:
            return FLAGS[name] if "_" in name else match[0]
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):  # a string with a stray backslash: left as it is
            return match[0]
        if value is True:
            return FLAGS[name]
        if isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        return f"{FLAGS[name]} {value}"

    return _PYTHON_SPELLING.sub(flag, message)


class _FlagFormatter(logging.Formatter):
    """s2lc's log messages with options where they name Python parameters (:func:`flag_spelling`)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return flag_spelling(text) if record.name.partition(".")[0] == "s2lc" else text


#: Command names in help order; a module that is not present is simply not listed.
COMMANDS = ("info", "classify", "change", "sample", "assess", "train", "evaluate", "calibrate", "bands", "serve", "view")


class LazyGroup(click.Group):
    """A group that imports ``s2lc.cli.<name>`` on demand and turns library errors into
    one-line messages (a traceback only with ``-v``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in COMMANDS if importlib.util.find_spec(f"s2lc.cli.{n}") is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or importlib.util.find_spec(f"s2lc.cli.{cmd_name}") is None:
            return None
        module = importlib.import_module(f"s2lc.cli.{cmd_name}")
        return _as_subcommand(getattr(module, cmd_name))

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:  # bare `s2lc`: the help, as it is
            raise
        except click.UsageError as exc:  # the group's own options, an unknown command
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:  # a command's arguments and options
            raise _one_line(exc) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except DependencyError as exc:  # an optional package to install: a usage error, exit 2
            _maybe_traceback(ctx)
            raise click.UsageError(flag_spelling(str(exc))) from exc
        except S2lcError as exc:
            _maybe_traceback(ctx)
            raise click.ClickException(flag_spelling(str(exc))) from exc
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:  # an unexpected failure: one line, unless -v
            _maybe_traceback(ctx)
            raise click.ClickException(f"{type(exc).__name__}: {exc} (run with -v for the traceback)") from exc


def _verbosity(ctx: click.Context) -> int:
    obj = ctx.find_root().obj or {}
    return obj.get("verbosity", 0)


def _maybe_traceback(ctx: click.Context) -> None:
    if _verbosity(ctx) > 0:
        traceback.print_exc(file=sys.stderr)


def _log_level(verbosity: int) -> int:
    """WARNING by default, INFO with -v, DEBUG with -vv; -q keeps warnings (it hides progress
    bars), -qq shows errors only."""
    if verbosity >= 0:
        return max(logging.DEBUG, logging.WARNING - 10 * verbosity)
    return logging.WARNING if verbosity == -1 else logging.ERROR


def summary_enabled(ctx: click.Context | None = None) -> bool:
    """Whether a command's closing summary lines are shown: not with ``-qq`` (``-q`` keeps them,
    as it keeps warnings)."""
    ctx = ctx or click.get_current_context()
    return _verbosity(ctx) >= -1


def progress_enabled(ctx: click.Context | None = None) -> bool:
    """Whether progress bars should be shown: not with ``-q``."""
    ctx = ctx or click.get_current_context()
    return _verbosity(ctx) >= 0


@contextmanager
def output_folder(path: str) -> Iterator[Path]:
    """The ``-o`` folder, created if needed; if the command then fails, a folder it created and
    left empty is removed again (a mistyped product should not leave folders behind).

    Raises:
        OutputError: the folder cannot be created.
    """
    from s2lc.files import make_folder

    created = not Path(path).exists()
    out = make_folder(path, "choose a writable -o")
    try:
        yield out
    except BaseException:
        if created:
            try:
                out.rmdir()  # only when empty
            except OSError:
                pass
        raise


def _one_line(exc: click.UsageError) -> click.UsageError:
    """``exc`` as one ``Error:`` line that says where help is, instead of click's usage block."""
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    one = click.UsageError(f"{exc.format_message()}{where}")
    one.exit_code = exc.exit_code
    return one


def _as_subcommand(command: click.Command) -> click.Command:
    """``command`` taking -v and -q after its name too (``s2lc classify … -q``), as before it, and
    doing its work under s2lc's GDAL configuration (:func:`s2lc.gdal.gdal_env`; entered when the
    work starts, so that ``s2lc classify --help`` does not load GDAL)."""
    if not any(p.name == "verbose" for p in command.params):
        command.params += [
            click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_more_or_fewer(+1),
                         help="As s2lc -v: more messages, tracebacks."),
            click.Option(["-q", "--quiet"], count=True, expose_value=False, callback=_more_or_fewer(-1),
                         help="As s2lc -q: no progress bars; -qq: no warnings."),
        ]
        command.callback = gdal_env()(command.callback)
    return command


def _more_or_fewer(sign: int) -> Callable[[click.Context, click.Parameter, int], None]:
    def callback(ctx: click.Context, param: click.Parameter, count: int) -> None:
        if count:
            _set_verbosity(ctx.find_root(), _verbosity(ctx) + sign * count)

    return callback


def _set_verbosity(ctx: click.Context, verbosity: int) -> None:
    """Log at the level ``verbosity`` asks for, on stderr, and remember it for progress bars and tracebacks."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FlagFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=_log_level(verbosity), handlers=[handler], force=True)
    logging.captureWarnings(True)
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbosity


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="s2lc")
@click.option("-v", "--verbose", count=True, help="More messages; -v also shows tracebacks.")
@click.option("-q", "--quiet", count=True, help="Fewer messages: -q hides progress bars, -qq also warnings.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """Sentinel-2 scenes to land-cover maps, and what changed between dates.

    Messages and progress go to stderr; data (--json) goes to stdout.
    """
    _set_verbosity(ctx, verbose - quiet)
    # s2lc decodes JPEG 2000 (GDAL's worker threads) while the network runs (torch's OpenMP
    # threads). OpenMP workers that spin while they wait starve the decoder on a small machine,
    # and each side then runs several times slower; passive waiting lets them share the cores.
    # OpenMP reads this once, when torch loads, which the commands do in their bodies, after this
    # line. Set here, at the command line's entry, rather than when s2lc is imported: a library
    # import must not change the environment. A value the user set wins.
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
