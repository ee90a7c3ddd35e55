"""Output writers: the only s2lc functions that open output files.

Everything else hands them arrays plus ``(transform, crs)``. Every write is atomic: the file is
written into a private temporary folder beside its destination, then renamed onto it, so an
interrupted run leaves nothing half-written, and an existing output is refused unless the caller
passes ``overwrite=True`` (:mod:`s2lc.files`).

What each raster carries (see ``docs/outputs.md``):

* a Cloud-Optimized GeoTIFF (GDAL's COG driver: tiled 512×512, DEFLATE, internal overviews);
* for class maps, a colour table (no-data transparent), the legend as JSON in the ``S2LC_LEGEND``
  tag and one ``CLASS_<code>`` band tag per class — all inside the TIFF — plus a GDAL PAM sidecar
  ``<file>.tif.aux.xml`` with the GDAL category names and a thematic raster attribute table.
  GeoTIFF cannot hold category names or a RAT itself: GDAL's GTiff driver keeps them in PAM
  whatever writes them, and QGIS labels a paletted layer with those category names;
* ``S2LC_KIND`` (classification, change or confidence), ``S2LC_VERSION`` and the caller's
  provenance tags in the default metadata namespace;
* a QGIS style ``<file minus .tif>.qml``, which QGIS applies as the layer's default style.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import warnings
import xml.etree.ElementTree as ET
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import rasterio
import rasterio.features
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from s2lc import __version__
from s2lc.errors import ArgumentError, ArgumentTypeError, MapError, OutputError

# check_outputs and staged_outputs are documented as writers.* (docs/outputs.md) from before
# s2lc.files held them: kept importable from here
from s2lc.files import atomic_path, atomic_paths, check_outputs, staged_outputs
from s2lc.gdal import WHOLE_RASTER_CACHEMAX, gdal_env
from s2lc.legend import LandCoverClass, Legend
from s2lc.qgis import class_qml, confidence_qml

if TYPE_CHECKING:
    import geopandas

__all__ = [
    "MAP_KINDS",
    "ClassMap",
    "RowSource",
    "check_outputs",
    "class_qml",
    "count_codes",
    "polygons",
    "quicklook_step",
    "read_class_map",
    "sidecars",
    "staged_outputs",
    "true_colour_preview",
    "with_sidecars",
    "write_class_map",
    "write_confidence",
    "write_gpkg",
    "write_json",
    "write_qml",
    "write_quicklook",
    "write_text",
]

logger = logging.getLogger(__name__)

#: Kinds of class map, and the band description each gets.
MAP_KINDS: dict[str, str] = {
    "classification": "land cover class",
    "change": "land cover change",
}
#: Overview resampling allowed for class maps: both keep codes valid (no averaging).
CLASS_OVERVIEW_RESAMPLING = (Resampling.nearest, Resampling.mode)
#: Tags the writers own; callers may not set them.
RESERVED_TAGS = ("S2LC_KIND", "S2LC_LEGEND", "S2LC_VERSION")

_BLOCKSIZE = 512
_COUNT_ROWS = 256
#: GDAL raster attribute table field types and usages (gdal.h GDALRATFieldType / GDALRATFieldUsage).
_GFT_INTEGER, _GFT_STRING = 0, 2
_GFU_GENERIC, _GFU_NAME, _GFU_MINMAX, _GFU_RED, _GFU_GREEN, _GFU_BLUE, _GFU_ALPHA = 0, 2, 5, 6, 7, 8, 9
#: GeoPackage 1.2: QGIS 3.22 LTR (GDAL 3.6) warns on 1.4 files, which GDAL ≥ 3.11 writes by default.
_GPKG_VERSION = "1.2"
_NODATA_HATCH = "////"
#: QGIS's own schema for the table that holds layer styles (QgsOgrProviderMetadata::saveStyle).
_LAYER_STYLES_SQL = """CREATE TABLE layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  f_table_catalog TEXT(256),
  f_table_schema TEXT(256),
  f_table_name TEXT(256),
  f_geometry_column TEXT(256),
  styleName TEXT(30),
  styleQML TEXT,
  styleSLD TEXT,
  useAsDefault BOOLEAN,
  description TEXT,
  owner TEXT(30),
  ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)"""


# --------------------------------------------------------------------------------------------
# Text and JSON


def write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Write UTF-8 text (a CSV table, a report) atomically.

    Raises:
        OutputError: as :func:`atomic_path`.
    """
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_qml(path: str | os.PathLike, qml: str, overwrite: bool = False) -> Path:
    """Write a QGIS style file (text from :mod:`s2lc.qgis`) atomically."""
    return write_text(path, qml, overwrite)


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays, paths, tuples; NaN and infinities → null."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, np.ndarray)):
        return [_jsonable(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically.

    numpy scalars and arrays, paths and tuples are converted; NaN and infinities become null.

    Raises:
        OutputError: as :func:`atomic_path`.
        TypeError: ``obj`` holds something JSON cannot represent.
    """
    text = json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_text(path, text, overwrite)


# --------------------------------------------------------------------------------------------
# Rasters


def sidecars(path: str | os.PathLike) -> tuple[Path, Path]:
    """The files a raster writer puts beside ``path``: its QGIS style (``map.qml``) and its GDAL
    PAM file (``map.tif.aux.xml``). Pass them to :func:`check_outputs` with the raster."""
    path = Path(path)
    return path.with_suffix(".qml"), path.with_name(path.name + ".aux.xml")


def with_sidecars(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """``paths`` followed by the :func:`sidecars` of the GeoTIFFs among them: every file a set of
    outputs may hold, for :func:`check_outputs` or :func:`staged_outputs`."""
    paths = [Path(p) for p in paths]
    return paths + [s for p in paths if p.suffix == ".tif" for s in sidecars(p)]


@runtime_checkable
class RowSource(Protocol):
    """A (height, width) raster produced a slice of rows at a time (``source[r0:r1]`` gives a
    (r1 - r0, width) array), so a large raster can be written without holding it whole.
    :func:`write_confidence` accepts one in place of an array."""

    shape: tuple[int, int]
    ndim: int
    dtype: np.dtype

    def __getitem__(self, rows: slice) -> np.ndarray: ...


def _check_grid(data: np.ndarray, transform: Affine, crs: Any) -> None:
    if data.ndim != 2:
        raise ArgumentError(f"expected a (height, width) array, got shape {data.shape}")
    if not isinstance(transform, Affine):
        raise ArgumentTypeError(f"transform must be an affine.Affine, got {type(transform).__name__}")
    if crs is None:
        raise ArgumentError("a CRS is required")


def _check_classes(classes: Sequence[LandCoverClass], nodata: int) -> None:
    codes = [c.code for c in classes]
    if len(set(codes)) != len(codes):
        raise ArgumentError(f"legend codes are not unique: {codes}")
    bad = [code for code in codes if not 0 <= code <= 255 or code == nodata]
    if bad:
        raise ArgumentError(f"legend codes must be 0–255 and differ from no-data ({nodata}); got {bad}")


def count_codes(data: np.ndarray) -> np.ndarray:
    """Pixels per code of a uint8 map, (256,) int64, counted in row blocks (``np.bincount``
    casts to int64: on a whole tile at once that copy alone is 960 MB).

    Raises:
        ArgumentTypeError: ``data`` is not uint8.
    """
    if data.dtype != np.uint8:
        raise ArgumentTypeError(f"class maps are uint8, got {data.dtype}")
    counts = np.zeros(256, np.int64)
    for start in range(0, data.shape[0], _COUNT_ROWS):
        counts += np.bincount(data[start:start + _COUNT_ROWS].ravel(), minlength=256)
    return counts


def _code_counts(data: np.ndarray, classes: Sequence[LandCoverClass], nodata: int) -> np.ndarray:
    """Pixels per code, (256,) int64, after checking that every code in ``data`` is in the legend.

    Raises:
        MapError: ``data`` holds codes that are neither in ``classes`` nor no-data.
    """
    counts = count_codes(data)
    unknown = sorted(set(np.flatnonzero(counts).tolist()) - {c.code for c in classes} - {nodata})
    if unknown:
        raise MapError(f"the map holds codes {unknown} that are not in its legend; add them to the classes")
    return counts


def _string_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    tags = dict(tags or {})
    reserved = sorted(set(tags) & set(RESERVED_TAGS))
    if reserved:
        raise ArgumentError(f"tags {reserved} are set by the writer; remove them")
    return {k: v if isinstance(v, str) else json.dumps(_jsonable(v)) for k, v in tags.items()}


def _write_cog(
    path: Path,
    data: np.ndarray,
    transform: Affine,
    crs: Any,
    *,
    nodata: float,
    tags: Mapping[str, str],
    band_tags: Mapping[str, str],
    description: str,
    colormap: Mapping[int, tuple[int, int, int, int]] | None,
    overview_resampling: Resampling,
    predictor: bool,
) -> None:
    """Write one band as a Cloud-Optimized GeoTIFF.

    The band goes first, one row of blocks at a time, into a DEFLATE-compressed GTiff in GDAL's
    in-memory file system (about 1 MB for a class map of a whole tile), then GDAL's COG driver
    copies it to ``path`` and builds the overviews; no whole copy of ``data`` is made and GDAL's
    block cache is held to :data:`s2lc.gdal.WHOLE_RASTER_CACHEMAX`. A whole tile (10980²) costs
    about 70 MB on top of ``data``, uint8 or float32 (measured: docs/outputs.md).
    """
    height, width = data.shape
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype=data.dtype.name, crs=crs,
                   transform=transform, nodata=nodata, tiled=True, blockxsize=_BLOCKSIZE,
                   blockysize=_BLOCKSIZE, compress="deflate", zlevel=1)
    with gdal_env(GDAL_CACHEMAX=WHOLE_RASTER_CACHEMAX), MemoryFile() as mem:
        with mem.open(**profile) as dst:
            if colormap is not None:  # before any pixel: libtiff cannot change the photometric tag later
                dst.write_colormap(1, colormap)
            for row in range(0, height, _BLOCKSIZE):  # by rows of blocks: rasterio copies what it writes
                rows = min(_BLOCKSIZE, height - row)
                dst.write(data[row:row + rows], 1, window=Window(0, row, width, rows))
            dst.set_band_description(1, description)
            dst.update_tags(TIFFTAG_SOFTWARE=f"s2lc {__version__}", **tags)
            if band_tags:
                dst.update_tags(1, **band_tags)
        with mem.open() as src:
            rio_copy(src, path, driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES" if predictor else "NO",
                     BLOCKSIZE=str(_BLOCKSIZE), OVERVIEW_RESAMPLING=overview_resampling.name.upper(),
                     BIGTIFF="IF_SAFER")


def _legend_json(classes: Sequence[LandCoverClass]) -> str:
    return json.dumps([{"code": c.code, "name": c.name, "label": c.label, "color": list(c.color)}
                       for c in sorted(classes, key=lambda c: c.code)])


def _legend_from_json(text: str) -> tuple[LandCoverClass, ...]:
    return tuple(LandCoverClass(int(e["code"]), str(e["name"]), str(e["label"]),
                                tuple(int(v) for v in e["color"]))  # type: ignore[arg-type]
                 for e in json.loads(text))


def _pam_xml(classes: Sequence[LandCoverClass], nodata: int) -> str:
    """GDAL PAM for a class map's band: category names (labels, indexed by code) and a thematic
    raster attribute table (code, name, label, RGBA)."""
    by_code = {c.code: c for c in classes}
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    categories = ET.SubElement(band, "CategoryNames")
    for code in range(max([*by_code, nodata]) + 1):
        label = "No data" if code == nodata else by_code[code].label if code in by_code else ""
        ET.SubElement(categories, "Category").text = label
    rat = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    columns = (("value", _GFT_INTEGER, _GFU_MINMAX), ("class_name", _GFT_STRING, _GFU_NAME),
               ("label", _GFT_STRING, _GFU_GENERIC), ("red", _GFT_INTEGER, _GFU_RED),
               ("green", _GFT_INTEGER, _GFU_GREEN), ("blue", _GFT_INTEGER, _GFU_BLUE),
               ("alpha", _GFT_INTEGER, _GFU_ALPHA))
    for i, (name, kind, usage) in enumerate(columns):
        defn = ET.SubElement(rat, "FieldDefn", index=str(i))
        for tag, text in (("Name", name), ("Type", str(kind)), ("Usage", str(usage))):
            ET.SubElement(defn, tag).text = text
    for i, code in enumerate(sorted(by_code)):
        c = by_code[code]
        row = ET.SubElement(rat, "Row", index=str(i))
        for value in (c.code, c.name, c.label, *c.color, 255):
            ET.SubElement(row, "F").text = str(value)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def write_class_map(
    path: str | os.PathLike,
    data: np.ndarray,
    transform: Affine,
    crs: Any,
    classes: Sequence[LandCoverClass],
    tags: Mapping[str, Any] | None = None,
    nodata: int = 0,
    overwrite: bool = False,
    *,
    kind: str = "classification",
    overview_resampling: Resampling = Resampling.mode,
) -> Path:
    """Write a class map as a styled Cloud-Optimized GeoTIFF, with its ``.qml`` and ``.aux.xml``.

    Args:
        path: the ``.tif`` to write; ``<stem>.qml`` and ``<name>.aux.xml`` are written beside it.
        data: (h, w) uint8 class codes.
        transform: the map's affine transform.
        crs: its CRS (anything rasterio accepts).
        classes: the legend: every code in ``data`` other than ``nodata`` must be in it.
        tags: provenance, written as GeoTIFF tags in the default namespace; values that are not
            strings are written as JSON.
        nodata: the no-data code (transparent in the colour table, not a class).
        overwrite: replace existing outputs instead of refusing them.
        kind: ``"classification"`` or ``"change"`` (:data:`MAP_KINDS`), stored as ``S2LC_KIND``.
        overview_resampling: ``Resampling.mode`` (default) or ``Resampling.nearest``.

    Returns:
        ``path``.

    Raises:
        OutputError: an output exists (without ``overwrite``) or cannot be written; nothing is
            written then.
        MapError: ``data`` holds codes that are not in ``classes``.
        ArgumentTypeError: ``data`` is not uint8, or ``transform`` not an Affine.
        ArgumentError: a malformed legend, array, kind or resampling, or a reserved tag.
    """
    path = Path(path)
    data = np.asarray(data)
    _check_grid(data, transform, crs)
    if kind not in MAP_KINDS:
        raise ArgumentError(f"kind must be one of {sorted(MAP_KINDS)}, got {kind!r}")
    if overview_resampling not in CLASS_OVERVIEW_RESAMPLING:
        raise ArgumentError(f"class map overviews need nearest or mode resampling, got {overview_resampling.name}")
    _check_classes(classes, nodata)
    tags = _string_tags(tags)
    qml, aux = sidecars(path)
    check_outputs([path, aux, qml], overwrite)
    _code_counts(data, classes, nodata)

    colormap = Legend(tuple(classes)).colormap()
    colormap[nodata] = colormap.pop(0)
    with atomic_paths([path, aux, qml], overwrite) as (tmp_tif, tmp_aux, tmp_qml):
        _write_cog(tmp_tif, data, transform, crs, nodata=nodata,
                   tags={**tags, "S2LC_KIND": kind, "S2LC_VERSION": __version__,
                         "S2LC_LEGEND": _legend_json(classes)},
                   band_tags={f"CLASS_{c.code}": c.label for c in classes},
                   description=MAP_KINDS[kind], colormap=colormap,
                   overview_resampling=overview_resampling, predictor=False)
        tmp_aux.write_text(_pam_xml(classes, nodata), encoding="utf-8")
        tmp_qml.write_text(class_qml(classes), encoding="utf-8")
    logger.info("wrote %s map %s", kind, path)
    return path


def write_confidence(
    path: str | os.PathLike,
    data: np.ndarray,
    transform: Affine,
    crs: Any,
    tags: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a probability raster (e.g. top-class confidence) as a COG with a ``.qml`` ramp.

    Args:
        path: the ``.tif`` to write; ``<stem>.qml`` is written beside it.
        data: (h, w) float32 in [0, 1], NaN where there is no data (no-data value NaN), or a
            :class:`RowSource` of that.
        transform: the raster's affine transform.
        crs: its CRS.
        tags: provenance, as in :func:`write_class_map`.
        overwrite: replace existing outputs (a stale ``.aux.xml`` beside them is removed).

    Returns:
        ``path``.

    Raises:
        OutputError: as :func:`write_class_map`.
        ArgumentTypeError: ``data`` is not float32.
        ArgumentError: values outside [0, 1], a reserved tag.
    """
    path = Path(path)
    if not isinstance(data, RowSource):
        data = np.asarray(data)
    _check_grid(data, transform, crs)
    if data.dtype != np.float32:
        raise ArgumentTypeError(f"confidence is float32, got {data.dtype}")
    low, high = np.inf, -np.inf
    with warnings.catch_warnings():  # an all-NaN map (all cloud) is valid
        warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
        for row in range(0, data.shape[0], _BLOCKSIZE):
            block = data[row:row + _BLOCKSIZE]
            low, high = min(low, np.nanmin(block)), max(high, np.nanmax(block))
    if low < 0 or high > 1:
        raise ArgumentError(f"confidence must lie in [0, 1] (NaN for no data); got {low}..{high}")
    tags = _string_tags(tags)
    qml, aux = sidecars(path)
    check_outputs([path, aux, qml], overwrite)
    with atomic_paths([path, qml], overwrite) as (tmp_tif, tmp_qml):
        _write_cog(tmp_tif, data, transform, crs, nodata=float("nan"),
                   tags={**tags, "S2LC_KIND": "confidence", "S2LC_VERSION": __version__},
                   band_tags={}, description="confidence (probability of the class given)", colormap=None,
                   overview_resampling=Resampling.average, predictor=True)
        tmp_qml.write_text(confidence_qml(), encoding="utf-8")
        aux.unlink(missing_ok=True)  # a stale PAM file would describe the old raster
    logger.info("wrote confidence %s", path)
    return path


@dataclass(frozen=True, eq=False)
class ClassMap:
    """A class map read back by :func:`read_class_map`."""

    data: np.ndarray  #: (h, w) uint8 codes
    transform: Affine
    crs: CRS
    classes: tuple[LandCoverClass, ...]  #: the legend, in code order
    tags: dict[str, str] = field(default_factory=dict)  #: every tag of the default namespace
    nodata: int = 0

    def __repr__(self) -> str:
        h, w = self.data.shape
        crs = CRS.from_user_input(self.crs).to_string() if self.crs else "no CRS"
        kind = self.tags.get("S2LC_KIND")
        return f"<ClassMap {kind + ' ' if kind else ''}{w}x{h} {crs} {len(self.classes)} classes>"

    @property
    def kind(self) -> str:
        """``"classification"`` or ``"change"``."""
        return self.tags["S2LC_KIND"]

    @property
    def legend(self) -> Legend:
        return Legend(self.classes)


def read_class_map(path: str | os.PathLike, kind: str | None = "classification") -> ClassMap:
    """Read a map written by :func:`write_class_map`: codes, grid, legend and tags.

    The legend comes from the ``S2LC_LEGEND`` tag inside the TIFF, so a map copied without its
    sidecars reads back the same.

    Args:
        path: the GeoTIFF.
        kind: the kind expected (``"classification"``, ``"change"``), or None for either.

    Raises:
        MapError: the file is not a raster, not an s2lc class map, or not of ``kind``.
    """
    path = Path(path)
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise MapError(f"not an s2lc classification map: {path} (cannot be read as a raster)") from exc
    with src:
        tags = src.tags()
        map_kind = tags.get("S2LC_KIND")
        if src.count != 1 or src.dtypes[0] != "uint8" or map_kind not in MAP_KINDS or "S2LC_LEGEND" not in tags:
            raise MapError(f"not an s2lc classification map: {path}")
        if kind is not None and map_kind != kind:
            raise MapError(f"not an s2lc {kind} map: {path} (it is a {map_kind} map)")
        try:
            classes = _legend_from_json(tags["S2LC_LEGEND"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MapError(f"not an s2lc classification map: {path} (its S2LC_LEGEND tag is malformed)") from exc
        with gdal_env(GDAL_CACHEMAX=WHOLE_RASTER_CACHEMAX):
            data = src.read(1)
        return ClassMap(data, src.transform, src.crs, classes, tags,
                        int(src.nodata) if src.nodata is not None else 0)


# --------------------------------------------------------------------------------------------
# Polygons and GeoPackage


def polygons(
    data: np.ndarray,
    transform: Affine,
    crs: Any,
    classes: Sequence[LandCoverClass],
    confidence: np.ndarray | Mapping[str, np.ndarray] | None = None,
    extra_codes: Mapping[str, Mapping[int, Any]] | None = None,
    *,
    nodata: int = 0,
    bounds: tuple[float, float, float, float] | None = None,
) -> "geopandas.GeoDataFrame":
    """Polygons of a class map: each a 4-connected run of pixels of one code, no-data left out.

    Cost and memory grow with the pixel count (the polygon ids are burnt back into an int32
    image to average confidence). For a map predicted patch by patch, pass the map at patch
    resolution — one pixel per patch, ``transform @ Affine.scale(patch)`` — where a full tile is
    172 × 172 pixels instead of 10980 × 10980, and ``bounds`` to clip the last, partial row and
    column of patches to the scene.

    Args:
        data: (h, w) uint8 class codes.
        transform: the map's affine transform.
        crs: a projected CRS in metres (areas are in hectares).
        classes: the legend; every code in ``data`` other than ``nodata`` must be in it.
        confidence: (h, w) float arrays on the same grid, NaN for no data: one array gives a
            ``mean_confidence`` column; a mapping gives one column per key (e.g.
            ``{"confidence_before": a, "confidence_after": b}``). Means ignore NaN; a polygon
            with no valid value gets NaN.
        extra_codes: more columns derived from the polygon's code: column name → {code: value}
            (e.g. ``{"from_class": {12: "Forest", ...}}`` for change maps); codes missing from a
            mapping get None.
        nodata: the code that is not polygonised.
        bounds: (minx, miny, maxx, maxy) in CRS units to clip the polygons to; areas are of the
            clipped polygons.

    Returns:
        A GeoDataFrame in ``crs`` with columns ``class_code`` (int32), ``class_name``, the
        ``extra_codes`` columns, ``area_ha`` (float64, m² / 10 000), the confidence columns and
        ``geometry`` (Polygon, or MultiPolygon where clipping splits one), in raster scan order.

    Raises:
        MapError: codes missing from the legend; a CRS that is not projected in metres.
        ArgumentError: arrays of different shapes.
    """
    import geopandas as gpd
    import shapely

    data = np.asarray(data)
    _check_grid(data, transform, crs)
    crs = CRS.from_user_input(crs)
    if not crs.is_projected or (crs.linear_units or "").lower() not in ("metre", "meter"):
        raise MapError(f"polygon areas need a projected CRS in metres, got {crs.to_string()}; reproject the map")
    _code_counts(data, classes, nodata)
    if isinstance(confidence, np.ndarray):
        confidence = {"mean_confidence": confidence}
    confidence = dict(confidence or {})
    for name, values in confidence.items():
        if np.shape(values) != data.shape:
            raise ArgumentError(f"{name} has shape {np.shape(values)}, the map {data.shape}")

    shapes = list(rasterio.features.shapes(data, mask=data != nodata, connectivity=4, transform=transform))
    geoms = np.array([shapely.geometry.shape(g) for g, _ in shapes], dtype=object)
    codes = np.array([int(v) for _, v in shapes], dtype=np.int32)
    means = {name: _zonal_means(values, geoms, transform) for name, values in confidence.items()}
    if bounds is not None and len(geoms):
        geoms = shapely.intersection(geoms, shapely.box(*bounds))
        keep = ~shapely.is_empty(geoms)
        geoms, codes = geoms[keep], codes[keep]
        means = {name: m[keep] for name, m in means.items()}

    names = {c.code: c.name for c in classes}
    columns: dict[str, Any] = {"class_code": codes, "class_name": [names[c] for c in codes.tolist()]}
    for name, lookup in (extra_codes or {}).items():
        columns[name] = [lookup.get(c) for c in codes.tolist()]
    columns["area_ha"] = shapely.area(geoms) / 10_000 if len(geoms) else np.zeros(0)
    columns.update(means)
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(list(geoms), crs=crs.to_string()))


def _zonal_means(values: np.ndarray, geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """NaN-aware mean of ``values`` under each polygon (which must follow pixel edges)."""
    if not len(geoms):
        return np.zeros(0)
    values = np.asarray(values)
    ids = rasterio.features.rasterize(zip(geoms, range(1, len(geoms) + 1)), out_shape=values.shape,
                                      transform=transform, fill=0, dtype="int32")
    sums, counts = np.zeros(len(geoms) + 1), np.zeros(len(geoms) + 1)
    for start in range(0, ids.shape[0], _COUNT_ROWS):  # by strips: no float64 copy of the whole map
        v, i = values[start:start + _COUNT_ROWS], ids[start:start + _COUNT_ROWS]
        ok = ~np.isnan(v)
        sums += np.bincount(i[ok], weights=v[ok], minlength=len(geoms) + 1)
        counts += np.bincount(i[ok], minlength=len(geoms) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts)[1:]  # id 0 is outside every polygon


def write_gpkg(
    path: str | os.PathLike,
    gdf: "geopandas.GeoDataFrame",
    layer: str,
    style_qml: str,
    style_sld: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write polygons as a GeoPackage 1.2 layer whose default QGIS style is ``style_qml``.

    The layer is MultiPolygon (polygons are promoted), written by pyogrio with ``VERSION=1.2``.
    The style goes into a ``layer_styles`` table with QGIS's schema, registered in
    ``gpkg_contents`` as attributes, in a row marked ``useAsDefault`` for this layer: QGIS
    applies it when the layer is opened.

    Args:
        path: the ``.gpkg`` to write.
        gdf: polygons with a CRS, e.g. from :func:`polygons`.
        layer: the layer name.
        style_qml: QGIS style text (:func:`s2lc.qgis.polygon_qml`).
        style_sld: the same style as SLD (:func:`s2lc.qgis.polygon_sld`), optional.
        overwrite: replace an existing file.

    Returns:
        ``path``.

    Raises:
        OutputError: as :func:`atomic_path`.
        ArgumentError: geometries that are not polygons.
    """
    import pyogrio

    path = Path(path)
    kinds = set(gdf.geom_type.dropna()) - {"Polygon", "MultiPolygon"}
    if kinds:
        raise ArgumentError(f"write_gpkg writes polygon layers; got {sorted(kinds)}")
    with atomic_path(path, overwrite) as tmp:
        pyogrio.write_dataframe(gdf, tmp, layer=layer, driver="GPKG", geometry_type="MultiPolygon",
                                promote_to_multi=True, dataset_options={"VERSION": _GPKG_VERSION})
        _add_default_style(tmp, layer, style_qml, style_sld)
    logger.info("wrote %s (layer %s)", path, layer)
    return path


def _add_default_style(path: Path, layer: str, qml: str, sld: str | None) -> None:
    with closing(sqlite3.connect(path)) as con, con:
        row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
        if row is None:
            raise OutputError(f"{path}: layer {layer} was not written")
        con.execute(_LAYER_STYLES_SQL)
        con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                    "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS layer styles')")
        con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                    "styleName, styleQML, styleSLD, useAsDefault, description, owner) "
                    "VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '')",
                    (layer, row[0], layer, qml, sld or "", f"written by s2lc {__version__}"))


# --------------------------------------------------------------------------------------------
# Quicklook


#: Largest side of a quicklook's map, in pixels.
QUICKLOOK_MAX_SIZE = 1024


def quicklook_step(shape: tuple[int, int], max_size: int = QUICKLOOK_MAX_SIZE) -> int:
    """The integer step a quicklook decimates a map of ``shape`` by, so its larger side is at most ``max_size``."""
    return max(1, math.ceil(max(shape) / max_size))


def true_colour_preview(rgb: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """(h, w, 3) uint8 for display from (3, h, w) red, green and blue values (NaN: no data, white):
    each band stretched linearly between its ``low`` and ``high`` percentiles of the valid
    pixels, as QGIS's default cumulative count cut does."""
    rgb = np.asarray(rgb, dtype=np.float32)
    out = np.full((*rgb.shape[1:], 3), 255, np.uint8)
    valid = np.isfinite(rgb).all(axis=0)
    if valid.any():
        for i, band in enumerate(rgb):
            lo, hi = np.percentile(band[valid], (low, high))
            out[..., i][valid] = np.clip(np.rint((band[valid] - lo) / max(hi - lo, 1e-6) * 255), 0, 255).astype(np.uint8)
    return out


def _inches_wide(dpi: int, draw: Callable[[Any], Any]) -> float:
    """Inches wide that what ``draw(figure)`` returns (a legend, a text) is, measured on a scratch figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    probe = Figure(dpi=dpi)
    artist = draw(probe)
    return artist.get_window_extent(FigureCanvasAgg(probe).get_renderer()).width / dpi


def write_quicklook(
    path: str | os.PathLike,
    data: np.ndarray,
    classes: Sequence[LandCoverClass],
    title: str,
    max_size: int = QUICKLOOK_MAX_SIZE,
    overwrite: bool = False,
    *,
    nodata: int = 0,
    true_colour: np.ndarray | None = None,
    nodata_label: str = "No data",
) -> Path:
    """A PNG of a class map with a legend of the classes it holds, and the scene beside it.

    Maps larger than ``max_size`` pixels on a side are decimated by an integer step (nearest
    neighbour: every step-th pixel), so a full tile costs no more than a 1024² image.
    No-data is hatched grey on white, with a legend entry, so it cannot be taken for cloud.
    With ``true_colour``, the scene is drawn left of the map at the same size, so the map can be
    judged against what it labels without opening the product.

    Args:
        path: the ``.png`` to write.
        data: (h, w) uint8 class codes.
        classes: the legend.
        title: drawn above the map.
        max_size: the largest side of the map image, in pixels.
        overwrite: replace an existing file.
        true_colour: (h', w', 3) uint8 red, green, blue of the same extent, at any size (see
            :func:`true_colour_preview`); drawn at the map's size.
        nodata_label: the legend's name for the hatched ``nodata`` pixels.

    Returns:
        ``path``.

    Raises:
        OutputError: as :func:`atomic_path`.
        MapError: codes missing from the legend.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    path = Path(path)
    data = np.asarray(data)
    if data.ndim != 2:
        raise ArgumentError(f"expected a (height, width) array, got shape {data.shape}")
    check_outputs([path], overwrite)
    counts = _code_counts(data, classes, nodata)
    step = quicklook_step(data.shape, max_size)
    lut = np.zeros((256, 4), np.uint8)
    for c in classes:
        lut[c.code] = (*c.color, 255)
    rgba = lut[data[::step, ::step]]

    handles = [Patch(facecolor=np.array(c.color) / 255, edgecolor="0.4", label=c.label)
               for c in sorted(classes, key=lambda c: c.code) if counts[c.code]]
    if counts[nodata]:
        handles.append(Patch(facecolor="white", edgecolor="0.6", hatch=_NODATA_HATCH, label=nodata_label))
    dpi, pad, title_h = 100, 0.15, 0.45
    legend_w = 2.8  # long labels (a series' trajectories) widen it, a long title the figure
    if handles:
        legend_w = max(legend_w, _inches_wide(dpi, lambda f: f.legend(handles=handles, frameon=False, fontsize=9)) + pad)
    title_w = _inches_wide(dpi, lambda f: f.text(0, 0, title, fontsize=12)) + 2 * pad
    img_h, img_w = rgba.shape[0] / dpi, rgba.shape[1] / dpi
    scene_w = 0.0 if true_colour is None else img_w + pad  # the scene's panel, left of the map
    body_h = max(img_h, 0.22 * len(handles) + 0.3)
    fig_w, fig_h = max(scene_w + img_w + legend_w + 3 * pad, title_w), body_h + title_h + 2 * pad
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, facecolor="white")
    if true_colour is not None:
        scene = fig.add_axes((pad / fig_w, (pad + body_h - img_h) / fig_h, img_w / fig_w, img_h / fig_h))
        scene.imshow(true_colour, interpolation="bilinear", extent=(-0.5, rgba.shape[1] - 0.5, rgba.shape[0] - 0.5, -0.5))
        scene.set_xticks([])
        scene.set_yticks([])
        for spine in scene.spines.values():
            spine.set_edgecolor("0.6")
    ax = fig.add_axes(((pad + scene_w) / fig_w, (pad + body_h - img_h) / fig_h, img_w / fig_w, img_h / fig_h))
    ax.add_patch(Rectangle((-0.5, -0.5), rgba.shape[1], rgba.shape[0], facecolor="white", edgecolor="0.6",
                           hatch=_NODATA_HATCH, linewidth=0, zorder=0))  # shows through no-data (alpha 0)
    ax.imshow(rgba, interpolation="nearest", zorder=1)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor("0.6")
    fig.text(pad / fig_w, 1 - pad / fig_h, title, ha="left", va="top", fontsize=12)
    if handles:
        fig.legend(handles=handles, loc="upper left", frameon=False, fontsize=9,
                   bbox_to_anchor=((2 * pad + scene_w + img_w) / fig_w, (pad + body_h) / fig_h))
    else:
        fig.text((2 * pad + scene_w + img_w) / fig_w, (pad + body_h) / fig_h, "no data", va="top", fontsize=9)
    with atomic_path(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    logger.info("wrote quicklook %s", path)
    return path
