"""Class maps and confidence as Cloud-Optimized GeoTIFFs, with their legend, GDAL PAM and QGIS
style; class maps read back with their legend."""

from __future__ import annotations

import json
import logging
import os
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from s2lc import __version__
from s2lc.errors import ArgumentError, ArgumentTypeError, MapError
from s2lc.files import atomic_paths, check_outputs
from s2lc.gdal import WHOLE_RASTER_CACHEMAX, gdal_env
from s2lc.legend import LandCoverClass, Legend
from s2lc.qgis import class_qml, confidence_qml
from s2lc.writers.text import _jsonable

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
        _copy_as_cog(mem, path, overview_resampling, predictor)


def _copy_as_cog(mem: MemoryFile, path: Path, overview_resampling: Resampling, predictor: bool = False) -> None:
    """Copy the GTiff written into ``mem`` to ``path`` with GDAL's COG driver, which builds the
    overviews (DEFLATE, :data:`_BLOCKSIZE` tiles)."""
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


def write_true_colour(path: str | os.PathLike, rgba: np.ndarray, transform: Affine, crs: Any,
                      tags: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write a scene preview as a Cloud-Optimized GeoTIFF: red, green, blue and alpha bands.

    Args:
        path: the ``.tif`` to write.
        rgba: (h, w, 4) uint8, as :func:`s2lc.writers.true_colour_preview` with ``alpha=True``
            gives it; alpha 0 where the scene has no data.
        transform, crs: the preview's grid.
        tags: provenance, as for :func:`write_class_map`.
        overwrite: replace an existing file.

    Raises:
        ArgumentTypeError: ``rgba`` is not (h, w, 4) uint8. OutputError: the file exists.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ArgumentTypeError(f"a true-colour image must be (h, w, 4) uint8, not {rgba.shape} {rgba.dtype}")
    path = Path(path)
    check_outputs([path], overwrite)
    h, w, _ = rgba.shape
    profile = dict(driver="GTiff", width=w, height=h, count=4, dtype="uint8", crs=crs, transform=transform,
                   photometric="RGB", tiled=True, blockxsize=_BLOCKSIZE, blockysize=_BLOCKSIZE, compress="deflate")
    with atomic_paths([path], overwrite) as (tmp,), MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
            dst.write(np.moveaxis(rgba, 2, 0))
            dst.update_tags(TIFFTAG_SOFTWARE=f"s2lc {__version__}", S2LC_KIND="true colour", S2LC_VERSION=__version__,
                            **_string_tags(tags))
        _copy_as_cog(mem, tmp, Resampling.average)
    logger.info("wrote true colour %s", path)
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
    size: tuple[int, int] | None = None  #: (h, w) of the file; None: that of ``data``

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the map, also when only its header was read."""
        return self.size if self.size is not None else self.data.shape

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


def _checked_legend(src, path: Path, kind: str | None) -> tuple[tuple[LandCoverClass, ...], dict[str, str]]:
    """The legend and tags of an open class map, after checking that it is one (of ``kind``)."""
    tags = src.tags()
    map_kind = tags.get("S2LC_KIND")
    if src.count != 1 or src.dtypes[0] != "uint8" or map_kind not in MAP_KINDS or "S2LC_LEGEND" not in tags:
        raise MapError(f"not an s2lc classification map: {path}")
    if kind is not None and map_kind != kind:
        raise MapError(f"not an s2lc {kind} map: {path} (it is a {map_kind} map)")
    try:
        return _legend_from_json(tags["S2LC_LEGEND"]), tags
    except (ValueError, KeyError, TypeError) as exc:
        raise MapError(f"not an s2lc classification map: {path} (its S2LC_LEGEND tag is malformed)") from exc


def _open_map(path: Path):
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise MapError(f"not an s2lc classification map: {path} (cannot be read as a raster)") from exc


def read_class_map(path: str | os.PathLike, kind: str | None = "classification", *, pixels: bool = True) -> ClassMap:
    """Read a map written by :func:`write_class_map`: codes, grid, legend and tags.

    The legend comes from the ``S2LC_LEGEND`` tag inside the TIFF, so a map copied without its
    sidecars reads back the same.

    Args:
        path: the GeoTIFF.
        kind: the kind expected (``"classification"``, ``"change"``), or None for either.
        pixels: False reads the header alone (legend, tags, grid); ``data`` is then an empty
            (0, 0) array, and :attr:`ClassMap.shape` gives the map's size.

    Raises:
        MapError: the file is not a raster, not an s2lc class map, or not of ``kind``.
    """
    path = Path(path)
    with _open_map(path) as src:
        classes, tags = _checked_legend(src, path, kind)
        if pixels:
            with gdal_env(GDAL_CACHEMAX=WHOLE_RASTER_CACHEMAX):
                data = src.read(1)
        else:
            data = np.zeros((0, 0), np.uint8)
        return ClassMap(data, src.transform, src.crs, classes, tags,
                        int(src.nodata) if src.nodata is not None else 0,
                        None if pixels else (src.height, src.width))


