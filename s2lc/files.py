"""Small file helpers: hashing, output folders and atomic writes.

Every s2lc output goes through :func:`staged_outputs` (a set of files) or :func:`atomic_path`
(one file): each file is written under its own name into a hidden temporary folder beside its
destination (``.NAME.XXXX.s2lc-tmp/``, so the rename stays on one file system), then renamed onto
it. An interrupted run leaves nothing half-written, and an existing output is refused unless the
caller passes ``overwrite=True``. :func:`check_outputs` makes the same refusals up front, before
any work.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from s2lc.errors import ArgumentError, OutputError

__all__ = ["atomic_path", "atomic_paths", "check_outputs", "file_sha256", "make_folder", "staged_outputs"]

logger = logging.getLogger(__name__)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def make_folder(path: str | os.PathLike, what_to_do: str = "choose a writable one") -> Path:
    """The output folder ``path``, created with its parents if needed (as ``-o`` is).

    Raises:
        OutputError: it cannot be created; the message ends with ``what_to_do``.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror}); {what_to_do}") from exc
    return out


def check_outputs(paths: Iterable[str | os.PathLike], overwrite: bool) -> None:
    """Refuse, before any work, outputs that exist or that cannot be written.

    Args:
        paths: the files a step is about to write.
        overwrite: replace existing files instead of refusing them.

    Raises:
        OutputError: a file exists (and ``overwrite`` is false) or is a folder; a destination
            folder is missing, not a folder, or not writable.
    """
    paths = [Path(p) for p in paths]
    try:
        for folder in dict.fromkeys(p.parent for p in paths):
            if not folder.exists():
                raise OutputError(f"output folder {folder} does not exist; create it first")
            if not folder.is_dir():
                raise OutputError(f"output folder {folder} is not a folder; choose another output folder")
            _probe_writable(folder)
        for p in paths:
            if p.is_dir():
                raise OutputError(f"{p} is a folder; choose another output name")
        existing = [str(p) for p in paths if p.exists()]
    except PermissionError as exc:  # a folder on the way that cannot be searched
        raise OutputError(f"cannot reach {exc.filename} ({exc.strerror}); choose another output folder") from exc
    if existing and not overwrite:
        raise OutputError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                          "use overwrite=True to replace")


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in ``folder``: permission bits do not tell (root ignores them; a
    read-only mount or /proc has writable-looking bits)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"output folder {folder} is not writable ({exc.strerror}); choose another output folder") from exc


#: Characters of the first output's name that name its hidden staging folder.
_SCRATCH_NAME = 24


@contextmanager
def staged_outputs(paths: Sequence[str | os.PathLike], overwrite: bool) -> Iterator[Callable[[Path], Path]]:
    """Write a set of outputs all or nothing.

    Yields ``stage(path)``, the path to write ``path`` through: the same name (drivers that look
    at the extension see the right one) in a hidden folder created beside it, so the rename
    stays on one file system. When the block ends, every staged file is given the usual
    permissions (:func:`_usual_mode`) and renamed onto its final path, the first of ``paths``
    last (a reader that finds it finds the others). If the block raises, nothing is renamed:
    existing files are left as they were, and no new one appears. Anything else written into
    the hidden folder (a driver's scratch files) is discarded.

    With ``overwrite`` the set is replaced as a whole: a file of ``paths`` that the block did
    not write (an output left out this time, a sidecar no longer made) is removed, so an older
    run's file never sits beside the new ones as if it described them.

    Args:
        paths: every file the set may hold (sidecars included); checked up front, so every
            existing one is named at once.
        overwrite: replace existing files instead of refusing them.

    Raises:
        OutputError: as :func:`check_outputs`; the hidden folder cannot be created; writing a
            file failed (a full disk, a file-size limit, an I/O error from GDAL, SQLite or the
            OS), naming the file being written, the reason and the space left on its disk.
    """
    paths = [Path(p) for p in paths]
    check_outputs(paths, overwrite)
    scratch: dict[Path, Path] = {}
    try:
        try:
            for folder in dict.fromkeys(p.parent for p in paths):
                # the name cut short: a GeoPackage staged inside another staging folder must stay
                # under SQLite's 512-character path limit however long the product ids are
                scratch[folder] = Path(tempfile.mkdtemp(prefix=f".{paths[0].name[:_SCRATCH_NAME]}.", suffix=".s2lc-tmp",
                                                        dir=folder))
        except OSError as exc:
            raise OutputError(f"cannot write in {folder} ({exc.strerror}); choose another output folder") from exc

        writing: list[Path] = []  # the file being written: the last one staged

        def stage(path: str | os.PathLike) -> Path:
            path = Path(path)
            if path not in paths:
                raise ArgumentError(f"{path} is not one of the staged outputs")
            writing.append(path)
            return scratch[path.parent] / path.name

        try:
            yield stage
        except OutputError as exc:  # a writer's own atomic write inside: name the final path, not the hidden one
            message = _unstaged(str(exc), scratch)
            if message == str(exc):
                raise
            raise OutputError(message) from exc
        except Exception as exc:
            if not _is_write_error(exc):
                raise
            raise OutputError(_write_failed(writing[-1] if writing else paths[0], exc)) from exc
        for path in paths[1:] + paths[:1]:
            tmp = scratch[path.parent] / path.name
            if tmp.is_file():
                _usual_mode(tmp)
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise OutputError(_write_failed(path, exc)) from exc
                logger.debug("wrote %s", path)
            elif overwrite and path.is_file():
                path.unlink()
                logger.debug("removed %s, left over from an earlier run", path)
    finally:
        for folder in scratch.values():
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike], overwrite: bool = False) -> Iterator[list[Path]]:
    """:func:`staged_outputs` for files that must all be written: all are refused, or all
    written; if one is missing when the block ends, none is renamed.

    Yields:
        The paths to write to, one per path of ``paths``, in its order.

    Raises:
        OutputError: as :func:`staged_outputs`; a file was not written.
    """
    paths = [Path(p) for p in paths]
    with staged_outputs(paths, overwrite) as stage:
        tmps = [stage(p) for p in paths]
        stage(paths[0])  # staged last, so a write error names the main file (a raster, not its sidecar)
        yield tmps
        for path, tmp in zip(paths, tmps):
            if not tmp.is_file():
                raise OutputError(f"{path} was not written (nothing at {tmp})")


@contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through; rename it onto ``path`` on success
    (:func:`atomic_paths` for one file).

    Args:
        path: the final file.
        overwrite: replace ``path`` if it exists.

    Yields:
        The path to write to.

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is false; its folder cannot be written;
            nothing was written at the temporary path.
    """
    with atomic_paths([path], overwrite) as (tmp,):
        yield tmp


def _usual_mode(path: Path) -> None:
    """Give a finished file the permissions a plain ``open(path, "w")`` would have (0666 less the
    umask): some writers (safetensors) create private 0600 files, which colleagues cannot read."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


#: Libraries whose exceptions, raised while an output is written, are write errors.
_WRITING_LIBRARIES = ("rasterio", "pyogrio", "sqlite3", "safetensors", "PIL")


def _is_write_error(exc: BaseException) -> bool:
    """An error of the file system or of a library writing to it, not a bug or a refusal of s2lc's."""
    return isinstance(exc, OSError) or type(exc).__module__.partition(".")[0] in _WRITING_LIBRARIES


def _write_failed(path: Path, exc: BaseException) -> str:
    """One line: the file, why writing it failed, and the space left where it goes."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split()) or type(exc).__name__
    try:
        free_mb = shutil.disk_usage(path.parent).free / 2**20
    except OSError:
        free_mb = None
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or (free_mb is not None and free_mb < 100)
    free = "" if free_mb is None else f"; {free_mb:,.0f} MB free there"
    advice = "free some space or choose another output folder" if full else "choose another output folder (-v shows more)"
    return f"cannot write {path} ({reason}{free}); {advice}"


def _unstaged(message: str, scratch: dict[Path, Path]) -> str:
    """``message`` with the hidden folders' paths written as the final folders'."""
    for folder, hidden in scratch.items():
        message = message.replace(f"{hidden}{os.sep}", f"{folder}{os.sep}")
    return message
