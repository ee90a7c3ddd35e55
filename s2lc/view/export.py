"""``s2lc view --export``: the web map as a static site that any web server can host.

The site holds the page (the same files the server sends), ``index.json`` in mode ``static``,
every layer's tiles pre-rendered for a zoom range (``tiles/<layer>/<z>/<x>/<y>.png``; tiles
without data are not written, and the page shows nothing there), and one lookup grid per map
(``grids/<layer>.json``) that the page reads for the click. It is written into a hidden folder
beside ``SITE`` and renamed into place when complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from s2lc.errors import ArgumentError, OutputError
from s2lc.view.app import STATIC, page_index
from s2lc.view.catalogue import Catalogue
from s2lc.view.tiles import ZOOM_LIMIT, lookup_grid, native_zooms, render_tile, tiles_over, zoom_range

logger = logging.getLogger(__name__)

__all__ = ["default_zooms", "export_site", "layer_zooms"]

#: Levels exported around the data's own: two coarser, to see the place, and one finer, so
#: 10 m pixels stay sharp-edged.
ZOOM_OUT, ZOOM_IN = 2, 1


def default_zooms(catalogue: Catalogue, native: dict[str, tuple[int, int]] | None = None) -> tuple[int, int]:
    """The zoom range exported when none is asked for: the data's (:func:`zoom_range`),
    widened by :data:`ZOOM_OUT` coarser levels and :data:`ZOOM_IN` finer one. ``native``: the
    layers' :func:`native_zooms`, if already read."""
    lo, hi = zoom_range(list(catalogue.layers.values()), native)
    return max(0, lo - ZOOM_OUT), min(ZOOM_LIMIT, hi + ZOOM_IN)


def _is_site(folder: Path) -> bool:
    """Whether ``folder`` holds a site this module wrote (its ``index.json`` says so)."""
    try:
        return json.loads((folder / "index.json").read_text(encoding="utf-8")).get("mode") == "static"
    except (OSError, ValueError, AttributeError):
        return False


def _check_site(site: Path, shown: str, catalogue: Catalogue, overwrite: bool) -> None:
    """Refuse a site that is, holds or lies in a folder being shown, that is not ours to replace,
    or that cannot be made. ``site`` is resolved; ``shown`` is how the user wrote it."""
    for folder in catalogue.folders:
        if site == folder or folder in site.parents:
            raise ArgumentError(f"{shown}: inside {folder}, a folder being shown; s2lc view never writes into "
                                "them, so choose a site folder outside")
        if site in folder.parents:
            raise ArgumentError(f"{shown}: holds {folder}, a folder being shown; choose a site folder beside it")
    if site.exists() and not site.is_dir():
        raise OutputError(f"{shown} exists and is not a folder; choose another site folder")
    if site.is_dir() and any(site.iterdir()):
        if not overwrite:
            raise OutputError(f"{shown} exists and is not empty; use --overwrite to replace it")
        if not _is_site(site):  # --overwrite replaces an earlier export, never a folder of something else
            raise OutputError(f"{shown} is not empty and holds no site that s2lc view wrote (no index.json of "
                              "one), so --overwrite will not delete it; choose an empty or new folder")
    if not site.parent.is_dir():
        raise OutputError(f"{site.parent} does not exist; create it, or choose another site folder")


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def layer_zooms(native: dict[str, tuple[int, int]], lo: int, hi: int) -> dict[str, tuple[int, int]]:
    """Each layer's levels within ``lo``–``hi``, from its :func:`native_zooms`: none finer than
    :data:`ZOOM_IN` past its own resolution (a 110 m true-colour preview is not cut into 10 m tiles)."""
    out = {}
    for layer_id, (_, own_max) in native.items():
        top = min(hi, own_max + ZOOM_IN)
        out[layer_id] = (min(lo, top), top)
    return out


def _move_into(stage: Path, site: Path) -> None:
    """Put the staged site in place. A site folder that exists (empty, or an earlier site) is
    kept, so a shell standing in it stays there: its contents are replaced."""
    if not site.exists():
        stage.rename(site)
        return
    for child in site.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for child in stage.iterdir():
        child.rename(site / child.name)
    stage.rmdir()


def _write_tiles(stage: Path, catalogue: Catalogue, zooms: dict[str, tuple[int, int]], progress: bool) -> int:
    from tqdm import tqdm

    jobs = [(layer, t) for layer in catalogue.layers.values()
            for t in tiles_over(layer.bounds, range(zooms[layer.id][0], zooms[layer.id][1] + 1))]
    written = 0
    for layer, (z, x, y) in tqdm(jobs, desc="tiles", unit="tile", disable=not progress, leave=False):
        png = render_tile(layer, z, x, y, skip_empty=True)
        if png is not None:
            _write(stage / "tiles" / layer.id / str(z) / str(x) / f"{y}.png", png)
            written += 1
    return written


def export_site(catalogue: Catalogue, site: str | os.PathLike, *, zooms: tuple[int, int] | None = None,
                basemap: str | None = None, attribution: str = "", overwrite: bool = False,
                progress: bool = False) -> dict[str, object]:
    """Write the static site of ``catalogue`` into ``site``.

    Args:
        catalogue: what :func:`~s2lc.view.catalogue.find_layers` found.
        site: the folder to write; it must be outside the folders being shown.
        zooms: (min, max) zoom levels to pre-render; default :func:`default_zooms`. Each finer
            level has four times the tiles of the one before. A layer stops one level past its
            own resolution (:func:`layer_zooms`); the page enlarges its finest tiles beyond.
        basemap, attribution: as for :func:`~s2lc.view.app.create_view_app`.
        overwrite: replace a ``site`` that exists and is not empty, if it is a site written
            here before (its ``index.json`` says so); any other folder is left alone.
        progress: a tqdm bar over the tiles on stderr.

    Returns:
        ``{"site", "zooms", "tiles", "layers"}``: what was written.

    Raises:
        ArgumentError: a bad zoom range, or ``site`` is, holds or lies in a shown folder.
        OutputError: ``site`` exists and is not empty (without ``overwrite``, or not a site),
        or its parent does not exist.
    """
    shown, site = str(site), Path(site).resolve()  # resolved: "." has no name to stage beside
    native = native_zooms(list(catalogue.layers.values()))  # every layer opened once for all the zoom choices
    lo, hi = zooms if zooms is not None else default_zooms(catalogue, native)
    if not 0 <= lo <= hi <= ZOOM_LIMIT:
        raise ArgumentError(f"zoom range {lo}-{hi}: give MIN-MAX with 0 <= MIN <= MAX <= {ZOOM_LIMIT}")
    _check_site(site, shown, catalogue, overwrite)
    stage = site.parent / f".{site.name}.s2lc-tmp"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        shutil.copytree(STATIC, stage / "static", ignore=shutil.ignore_patterns("index.html"))
        shutil.copy2(STATIC / "index.html", stage / "index.html")
        index = page_index(catalogue, mode="static", basemap=basemap, attribution=attribution, zoom=(lo, hi))
        zooms_of = layer_zooms(native, lo, hi)
        for kind in ("landcover", "change", "truecolour"):
            for entry in index[kind]:
                entry["zoom"] = list(zooms_of[entry["id"]])
        _write(stage / "index.json", json.dumps(index, indent=1))
        for layer in catalogue.layers.values():
            if layer.kind in ("landcover", "change"):
                _write(stage / "grids" / f"{layer.id}.json", json.dumps(lookup_grid(layer)))
        tiles = _write_tiles(stage, catalogue, zooms_of, progress)
        _move_into(stage, site)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the site {shown} ({exc.strerror or exc}); free some space or choose "
                          "another site folder") from exc
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if tiles == 0:
        logger.warning("%s: no tile of zoom %d-%d holds data; the page will show no map (try the default zoom range)",
                       shown, lo, hi)
    logger.info("wrote %d tiles (zoom %d-%d) of %d layers to %s", tiles, lo, hi, len(catalogue.layers), shown)
    return {"site": shown, "zooms": [lo, hi], "tiles": tiles, "layers": len(catalogue.layers)}
