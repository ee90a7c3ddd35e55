"""File helpers: hashes, output folders, atomic writes of single files and of sets."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from s2lc import files, writers
from s2lc.errors import ArgumentError, OutputError


def _no_scratch(folder: Path) -> None:
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "a temporary file was left"


def test_file_sha256_reads_in_chunks_and_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3000)
    path.write_bytes(data)
    assert files.file_sha256(path, chunk=1024) == hashlib.sha256(data).hexdigest()


def test_make_folder_creates_parents_and_names_the_folder_it_cannot_create(tmp_path):
    assert files.make_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"file/out: cannot create the output folder .*; choose a writable -o"):
        files.make_folder(tmp_path / "file" / "out", "choose a writable -o")


def test_the_helpers_docs_outputs_md_names_as_writers_still_import_from_there():
    assert writers.check_outputs is files.check_outputs and writers.staged_outputs is files.staged_outputs


# ---- atomic writes ----------------------------------------------------------------------------


def test_atomic_path_renames_onto_the_destination(tmp_path):
    out = tmp_path / "a.txt"
    with files.atomic_path(out, overwrite=False) as tmp:
        assert tmp.name == "a.txt" and tmp.parent.parent == tmp_path
        tmp.write_text("done")
        assert not out.exists()
    assert out.read_text() == "done"
    _no_scratch(tmp_path)


def test_atomic_path_leaves_nothing_on_exception(tmp_path):
    out = tmp_path / "a.txt"
    with pytest.raises(RuntimeError, match="interrupted"):
        with files.atomic_path(out, overwrite=False) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_refuses_an_existing_file_and_leaves_it_untouched(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    with pytest.raises(OutputError, match=r"a\.txt already exists; use overwrite=True to replace"):
        with files.atomic_path(out, overwrite=False) as tmp:
            tmp.write_text("new")
    assert out.read_text() == "old"
    with files.atomic_path(out, overwrite=True) as tmp:
        tmp.write_text("new")
    assert out.read_text() == "new"
    _no_scratch(tmp_path)


def test_atomic_path_fails_when_nothing_was_written(tmp_path):
    with pytest.raises(OutputError, match="was not written"):
        with files.atomic_path(tmp_path / "a.txt"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_and_file_as_folder_are_refused(tmp_path):
    with pytest.raises(OutputError, match="does not exist; create it"):
        with files.atomic_path(tmp_path / "missing" / "a.txt"):
            pass
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is not a folder"):
        files.check_outputs([tmp_path / "file" / "a.txt"], overwrite=True)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="is not writable"):
            writers.write_json(folder / "a.json", {})
    finally:
        folder.chmod(0o755)


def test_failing_temporary_folder_is_an_output_error(tmp_path, monkeypatch):
    """Simulated: the folder passes the up-front check but creating files in it fails (a
    read-only mount, root on NFS) — cannot be arranged for real when tests run as root."""
    def failing_mkdtemp(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkdtemp", failing_mkdtemp)
    with pytest.raises(OutputError, match=r"cannot write in .* \(Permission denied\); choose another"):
        writers.write_json(tmp_path / "a.json", {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.access("/proc/self", os.F_OK), reason="needs Linux /proc")
def test_a_folder_that_cannot_take_files_is_refused_even_for_root():
    """Permission bits do not tell (root ignores them); the check creates a file to see."""
    with pytest.raises(OutputError, match=r"output folder /proc/self is not writable \(.+\); choose another"):
        files.check_outputs(["/proc/self/a.json"], overwrite=True)


def test_staged_outputs_rename_the_whole_set_at_the_end(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "a.json"
    with files.staged_outputs([a, b], overwrite=False) as stage:
        writers.write_text(stage(b), "b")
        writers.write_text(stage(a), "a")
        assert not a.exists() and not b.exists()
        with pytest.raises(ArgumentError, match="not one of the staged outputs"):
            stage(tmp_path / "c.txt")
    assert a.read_text() == "a" and b.read_text() == "b"
    _no_scratch(tmp_path)


def test_staged_outputs_leave_the_old_set_when_the_new_one_fails(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "a.json"
    a.write_text("old a")
    b.write_text("old b")
    with pytest.raises(OutputError, match="already exist"):
        with files.staged_outputs([a, b], overwrite=False):
            pass
    with pytest.raises(RuntimeError, match="disk full"):
        with files.staged_outputs([a, b], overwrite=True) as stage:
            writers.write_text(stage(a), "new a")
            raise RuntimeError("disk full")
    assert a.read_text() == "old a" and b.read_text() == "old b"
    _no_scratch(tmp_path)


def test_an_overwrite_replaces_the_whole_set(tmp_path):
    """A file of the set that the new run does not write (an output left out, a sidecar no
    longer made) goes: left, it would sit beside the new files as if it described them."""
    a, b, c = tmp_path / "a.tif", tmp_path / "a.gpkg", tmp_path / "other.gpkg"
    for p in (a, b, c):
        p.write_text("old")
    with files.staged_outputs([a, b], overwrite=True) as stage:
        writers.write_text(stage(a), "new a")
        assert b.exists()  # only once the new set is in place
    assert a.read_text() == "new a" and not b.exists()
    assert c.read_text() == "old"  # not one of the set
    _no_scratch(tmp_path)


def test_check_outputs_names_every_existing_file(tmp_path):
    a, b, c = tmp_path / "a.tif", tmp_path / "b.qml", tmp_path / "c.png"
    a.write_text("")
    b.write_text("")
    with pytest.raises(OutputError, match=r"a\.tif, .*b\.qml already exist; use overwrite=True"):
        files.check_outputs([a, b, c], overwrite=False)
    files.check_outputs([a, b, c], overwrite=True)


# --------------------------------------------------------------------------------------------
# Write errors: a real file-size limit (RLIMIT_FSIZE), which fails writes as a full disk does


_LIMITED = r'''
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from s2lc.cli.main import cli
cli(sys.argv[2:])
'''


def _limited(limit: int, *args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", _LIMITED, str(limit), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ as Linux has them")
@pytest.mark.parametrize("limit, failing", [(4096, "t33uuu_crop_landcover.tif"), (60_000, None)])
def test_a_write_error_names_the_file_in_one_line_and_leaves_nothing(tmp_path, limit, failing):
    """Whichever output the limit stops, the error names it, exits 1 and leaves no file."""
    crop = Path(__file__).parent / "data" / "t33uuu_crop.tif"
    out = tmp_path / "out"
    r = _limited(limit, "-q", "classify", str(crop), "-o", str(out), "--clouds", "none")
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: cannot write {out}{os.sep}t33uuu_crop_"), last
    assert last.endswith(("MB free there); free some space or choose another output folder",
                          "MB free there); choose another output folder (-v shows more)"))
    if failing:
        assert last.startswith(f"Error: cannot write {out / failing} (")
    assert "Traceback" not in r.stderr and not out.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ as Linux has them")
def test_a_write_error_in_a_folder_of_the_users_leaves_it_as_it_was(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    crop = Path(__file__).parent / "data" / "t33uuu_crop.tif"
    r = _limited(4096, "-q", "classify", str(crop), "-o", str(out), "--clouds", "none")
    assert r.returncode == 1 and "cannot write" in r.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_geopackage_with_a_long_name_in_a_deep_folder_is_written(tmp_path):
    """Staging folders nest (a GeoPackage staged inside a set's staging folder); with long product
    ids their names once pushed the path past SQLite's 512 characters."""
    import geopandas as gpd
    import shapely

    from s2lc import writers
    from s2lc.files import staged_outputs

    deep = tmp_path / ("d" * 80) / ("e" * 80)
    deep.mkdir(parents=True)
    name = "change_" + "S2B_MSIL1C_20200406T101559_N0209_R065_T33UUU_20200406T130159_" * 2
    gpkg = deep / f"{name}.gpkg"
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:32633")
    with staged_outputs([deep / f"{name}.tif", gpkg], overwrite=False) as stage:
        stage(deep / f"{name}.tif").write_bytes(b"x")
        writers.write_gpkg(stage(gpkg), gdf, "layer", "<qgis/>", "<sld/>")
    assert len(str(gpkg)) > 300 and gpkg.is_file()
