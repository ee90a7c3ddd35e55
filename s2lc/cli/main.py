"""The ``s2lc`` click group: version, verbosity, logging and error reporting.

Each command lives in its own module ``s2lc.cli.<name>`` exposing a click command of the same
name; the group loads it only when it is invoked, so ``s2lc --help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import click

from s2lc import __version__
from s2lc.errors import DependencyError, S2lcError

__all__ = ["cli", "clouds_option", "progress_enabled"]

#: ``--clouds``: where the cloud mask comes from (s2lc.product.CLOUD_MODES, named here so that
#: ``--help`` does not import the reader).
clouds_option = click.option(
    "--clouds", default="auto", show_default=True, type=click.Choice(["auto", "product", "s2cloudless", "none"]),
    help="Cloud mask: the product's own (auto: else, for a Level-1C product without one, detected with "
         "s2cloudless if installed), detected with s2cloudless, or none.",
)

#: Command names in help order; a module that is not present is simply not listed.
COMMANDS = ("info", "classify", "change", "train", "evaluate", "serve")


class LazyGroup(click.Group):
    """A group that imports ``s2lc.cli.<name>`` on demand and turns library errors into
    one-line messages (a traceback only with ``-v``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in COMMANDS if importlib.util.find_spec(f"s2lc.cli.{n}") is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or importlib.util.find_spec(f"s2lc.cli.{cmd_name}") is None:
            return None
        module = importlib.import_module(f"s2lc.cli.{cmd_name}")
        return _with_verbosity_options(getattr(module, cmd_name))

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
            raise click.UsageError(str(exc)) from exc
        except S2lcError as exc:
            _maybe_traceback(ctx)
            raise click.ClickException(str(exc)) from exc
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


def _with_verbosity_options(command: click.Command) -> click.Command:
    """``command`` taking -v and -q after its name too (``s2lc classify … -q``), as before it."""
    if not any(p.name == "verbose" for p in command.params):
        command.params += [
            click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_more_or_fewer(+1),
                         help="As s2lc -v: more messages, tracebacks."),
            click.Option(["-q", "--quiet"], count=True, expose_value=False, callback=_more_or_fewer(-1),
                         help="As s2lc -q: no progress bars; -qq: no warnings."),
        ]
    return command


def _more_or_fewer(sign: int) -> Callable[[click.Context, click.Parameter, int], None]:
    def callback(ctx: click.Context, param: click.Parameter, count: int) -> None:
        if count:
            _set_verbosity(ctx.find_root(), _verbosity(ctx) + sign * count)

    return callback


def _set_verbosity(ctx: click.Context, verbosity: int) -> None:
    """Log at the level ``verbosity`` asks for, on stderr, and remember it for progress bars and tracebacks."""
    logging.basicConfig(level=_log_level(verbosity), stream=sys.stderr, format="%(levelname)s: %(message)s", force=True)
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
