"""What ``s2lc view`` shows: the classify and change outputs found under some folders.

Only headers are read here (tags, legend, bounds); pixels are read when a tile is asked for
(:mod:`s2lc.view.tiles`). A layer is known to the page by an id made from its file name, never
by a path, so a request can only reach a file listed in the catalogue.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from s2lc.batch import UNTILED, tile_of
from s2lc.change.core import _UNCHANGED_CLASS
from s2lc.errors import ArgumentError, MapError
from s2lc.naming import OUTPUT_SUFFIXES

logger = logging.getLogger(__name__)

__all__ = ["Catalogue", "Layer", "find_layers"]

#: Layer kinds: a classification map, a change map between two dates, a true-colour preview.
KINDS = ("landcover", "change", "truecolour")
#: Change-map entries drawn transparent: the change layer shows change over the map beneath it.
HIDDEN_CHANGE_NAMES = (_UNCHANGED_CLASS.name,)


@dataclass(frozen=True)
class Layer:
    """One raster the page can draw.

    Attributes:
        id: URL-safe, unique in the catalogue; the tiles are ``tiles/<id>/{z}/{x}/{y}.png``.
        kind: one of :data:`KINDS`.
        path: the GeoTIFF.
        group: the MGRS tile (``T33UVP``) or, for maps of other GeoTIFFs, ``untiled`` (then
            ``untiled-2``, … for other grids).
        date: ``YYYY-MM-DD`` of sensing (landcover, truecolour); for change, the later date.
        before: for change, the earlier date.
        bounds: (west, south, east, north) in degrees (WGS 84).
        legend: ``[{"code", "name", "label", "color": [r, g, b]}]`` (empty for true colour).
        areas: hectares per class name (landcover).
        confidence: the map's ``<id>_confidence.tif``, or None.
        truecolour: id of the date's true-colour layer, or None.
    """

    id: str
    kind: str
    path: Path
    group: str
    date: str
    bounds: tuple[float, float, float, float]
    before: str | None = None
    legend: tuple[dict[str, Any], ...] = ()
    areas: dict[str, float] = field(default_factory=dict)
    confidence: Path | None = None
    truecolour: str | None = None

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """Code → RGBA for the tiles: the legend's colours, opaque; no-data and, in a change map,
        the unchanged code are left out (transparent)."""
        hidden = HIDDEN_CHANGE_NAMES if self.kind == "change" else ()
        return {e["code"]: (*e["color"], 255) for e in self.legend if e["name"] not in hidden}

    def describe(self) -> dict[str, Any]:
        """The layer as the page sees it (no path)."""
        out = {"id": self.id, "kind": self.kind, "group": self.group, "date": self.date,
               "bounds": list(self.bounds), "legend": list(self.legend)}
        if self.kind == "change":  # the legend says which entries the tiles leave clear
            drawn = self.colormap()
            out.update(before=self.before, legend=[{**e, "drawn": e["code"] in drawn} for e in self.legend])
        if self.kind == "landcover":
            out.update(areas=self.areas, truecolour=self.truecolour, has_confidence=self.confidence is not None)
        return out


@dataclass
class Catalogue:
    """The layers found, landcover in date order."""

    layers: dict[str, Layer]
    folders: tuple[Path, ...]

    def of_kind(self, kind: str) -> list[Layer]:
        return sorted((x for x in self.layers.values() if x.kind == kind), key=lambda x: (x.date, x.before or "", x.id))

    @property
    def dates(self) -> list[str]:
        """Every sensing date of a land-cover map, ascending, once each."""
        return sorted({x.date for x in self.of_kind("landcover")})

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) around every layer."""
        b = [x.bounds for x in self.layers.values()]
        return (min(x[0] for x in b), min(x[1] for x in b), max(x[2] for x in b), max(x[3] for x in b))

    def index(self, **extra: Any) -> dict[str, Any]:
        """What the page loads first (``index.json``)."""
        return {"dates": self.dates, "bounds": list(self.bounds),
                "landcover": [x.describe() for x in self.of_kind("landcover")],
                "change": [x.describe() for x in self.of_kind("change")],
                "truecolour": [x.describe() for x in self.of_kind("truecolour")], **extra}


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "layer"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def _date(text: str | None) -> str | None:
    match = re.match(r"\d{4}-\d{2}-\d{2}", text or "")
    return match.group(0) if match else None


def _roots(folders: Sequence[Path]) -> list[Path]:
    """The folders resolved, each once, without those inside another (it would be searched twice)."""
    resolved = sorted({f.resolve() for f in folders}, key=lambda p: len(p.parts))
    roots: list[Path] = []
    for folder in resolved:
        if not any(r == folder or r in folder.parents for r in roots):
            roots.append(folder)
    return roots


def _tifs(folders: Sequence[Path]) -> Iterable[Path]:
    """Every ``*.tif`` under the folders, hidden folders (staging, ``.git``) skipped, in name order."""
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.lower().endswith(".tif") and not name.startswith("."):
                    yield Path(root) / name


@dataclass(frozen=True)
class _Header:
    tags: dict[str, str]
    bounds: tuple[float, float, float, float]  #: degrees
    grid: str  #: CRS and bounds in it, to the metre: maps of one place share it


def _header(path: Path) -> _Header | None:
    """The tags, bounds and grid of a GeoTIFF of ours; None for any other file (logged when it
    looks like ours but cannot be placed on the map)."""
    import rasterio
    from rasterio.errors import CRSError, RasterioIOError
    from rasterio.warp import transform_bounds

    try:
        with rasterio.open(path) as src:
            tags = src.tags()
            if "S2LC_KIND" not in tags or src.crs is None:
                return None
            w, s, e, n = (float(v) for v in transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21))
            grid = f"{src.crs.to_string()} {' '.join(f'{v:.0f}' for v in src.bounds)}"
    except RasterioIOError:
        return None
    except CRSError as exc:
        logger.warning("%s: its CRS cannot be placed on a web map (%s); skipped", path, exc)
        return None
    if w > e:  # transform_bounds gives west > east across the antimeridian
        logger.warning("%s: crosses the antimeridian (180°), which s2lc view cannot show yet; skipped", path)
        return None
    return _Header(tags, (w, s, e, n), grid)


def _legend(path: Path, kind: str) -> tuple[dict[str, Any], ...]:
    from s2lc.writers import read_class_map

    classes = read_class_map(path, kind, pixels=False).classes
    return tuple({"code": c.code, "name": c.name, "label": c.label, "color": list(c.color)} for c in classes)


def _sibling(path: Path, kind: str) -> Path | None:
    name = path.name.removesuffix(OUTPUT_SUFFIXES["map"])
    other = path.with_name(name + OUTPUT_SUFFIXES[kind])
    return other if other.is_file() else None


class _Finder:
    """Collects the layers of one catalogue, giving each a unique id."""

    def __init__(self) -> None:
        self.layers: dict[str, Layer] = {}
        self.taken: set[str] = set()
        self.seen: dict[tuple[str, str], Path] = {}
        self.places: dict[str, str] = {}  # grid of an untiled map → its group

    def group(self, product_id: str, head: _Header) -> str:
        """The MGRS tile; for maps of other GeoTIFFs, one group per grid (``untiled``,
        ``untiled-2``, …), so crops of different places are told apart."""
        tile = tile_of(product_id)
        if tile != UNTILED:
            return tile
        if head.grid not in self.places:
            n = len(self.places) + 1
            self.places[head.grid] = UNTILED if n == 1 else f"{UNTILED}-{n}"
        return self.places[head.grid]

    def landcover(self, path: Path, head: _Header) -> None:
        tags, bounds = head.tags, head.bounds
        date = _date(tags.get("S2LC_SENSING_TIME"))
        if date is None:
            logger.warning("%s: no sensing time (S2LC_SENSING_TIME); not shown on the date slider", path)
            return
        group = self.group(tags.get("S2LC_PRODUCT_ID", ""), head)
        if (group, date) in self.seen:
            logger.warning("%s: a second map of tile %s on %s (the first: %s); only the first is shown",
                           path, group, date, self.seen[group, date])
            return
        self.seen[group, date] = path
        stem = path.name.removesuffix(OUTPUT_SUFFIXES["map"])
        truecolour = _sibling(path, "true_colour")
        tc_id = None
        if truecolour is not None and (found := _header(truecolour)) is not None:
            tc_id = _slug(f"{stem}_truecolour", self.taken)
            self.layers[tc_id] = Layer(tc_id, "truecolour", truecolour, group, date, found.bounds)
        try:
            areas = {k: float(v) for k, v in json.loads(tags.get("S2LC_AREA_HA", "{}")).items()}
        except (ValueError, AttributeError):
            areas = {}
        layer_id = _slug(stem, self.taken)
        self.layers[layer_id] = Layer(layer_id, "landcover", path, group, date, bounds, legend=_legend(path, "classification"),
                                      areas=areas, confidence=_sibling(path, "confidence"), truecolour=tc_id)

    def change(self, path: Path, head: _Header) -> None:
        tags, bounds = head.tags, head.bounds
        before, after = _date(tags.get("S2LC_BEFORE_SENSING_TIME")), _date(tags.get("S2LC_AFTER_SENSING_TIME"))
        if before is None or after is None:  # a trajectory, or a change of undated maps
            logger.info("%s: not a change between two dated maps; not shown", path)
            return
        group = self.group(tags.get("S2LC_AFTER_PRODUCT_ID", ""), head)
        layer_id = _slug(path.stem, self.taken)
        self.layers[layer_id] = Layer(layer_id, "change", path, group, after, bounds, before=before,
                                      legend=_legend(path, "change"))


def find_layers(folders: Sequence[str | os.PathLike]) -> Catalogue:
    """Find the outputs of ``s2lc classify`` (``*_landcover.tif``, with their
    ``_confidence.tif`` and ``_truecolour.tif``) and ``s2lc change`` (change maps between two
    dated maps) under ``folders``, searched recursively.

    Raises:
        ArgumentError: a folder does not exist, or none holds a land-cover map.
    """
    for folder in folders:
        if not Path(folder).is_dir():
            raise ArgumentError(f"{folder}: not a folder; pass folders that hold s2lc classify or change outputs")
    roots = _roots([Path(f) for f in folders])
    finder = _Finder()
    for path in _tifs(roots):
        head = _header(path)
        if head is None:
            continue
        try:
            if head.tags["S2LC_KIND"] == "classification":
                finder.landcover(path, head)
            elif head.tags["S2LC_KIND"] == "change":
                finder.change(path, head)
        except MapError as exc:
            logger.warning("%s; skipped", exc)
    catalogue = Catalogue(finder.layers, tuple(roots))
    if not catalogue.of_kind("landcover"):
        raise ArgumentError(f"no dated land-cover map (*{OUTPUT_SUFFIXES['map']}) under {', '.join(map(str, roots))}; "
                            "run s2lc classify first, or pass the folder it wrote to")
    return catalogue
