"""The maps to compare: reading them, checking that they can be compared, putting them on one grid.

The inputs are classification maps written by ``s2lc classify`` (``<id>_landcover.tif``, with
the ``<id>_confidence.tif`` beside it when there is one; the names are :mod:`s2lc.naming`'s).
Before anything is compared, :func:`check_comparable` refuses maps that would show something
other than land change: other legends, other models (their difference mixes algorithm change
with land change), other grids (unless ``align``), maps that do not overlap.

This module touches files: :func:`load_map` reads a map through :mod:`s2lc.writers` and its
confidence with rasterio. :func:`align_to` resamples in memory (``rasterio.warp``); the checks
read only a :class:`DatedMap`'s grid, legend and tags.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from s2lc import writers
from s2lc.change.core import MAX_CLASSES, _split_legend
from s2lc.errors import MapError
from s2lc.legend import LandCoverClass
from s2lc.naming import OUTPUT_SUFFIXES
from s2lc.times import iso_time
from s2lc.writers import ClassMap

__all__ = [
    "DatedMap",
    "align_to",
    "check_comparable",
    "common_extent",
    "load_map",
    "on_one_lattice",
    "order_by_time",
    "same_acquisition",
    "settings_difference",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Maps and their provenance


@dataclass(frozen=True, eq=False)
class DatedMap:
    """A classification map with what comparing needs from its provenance.

    Build one from arrays with ``DatedMap(ClassMap(data, transform, crs, classes, tags))``, the
    tags as ``s2lc classify`` writes them (``S2LC_SENSING_TIME``, ``S2LC_MODEL_SHA256``, …), or
    read one with :func:`load_map`.

    Attributes:
        map: the codes (h, w) uint8, grid, legend and tags.
        confidence: (h, w) float32 probability of the class given, NaN for no data; None when
            the map has no confidence raster.
        path: the file it came from, None for arrays.
        cut: whether it was cut to the intersection with maps on the same lattice
            (:func:`common_extent`).
    """

    map: ClassMap
    confidence: np.ndarray | None = None
    path: Path | None = None
    cut: bool = False  #: cut to the intersection with maps of another extent on the same lattice

    def __repr__(self) -> str:
        when = self.tags.get("S2LC_SENSING_TIME", "")[:10] or "no sensing time"  # a repr must not raise
        return f"<DatedMap {self.name} ({when}) {self.map!r}>"

    @property
    def tags(self) -> dict[str, str]:
        return self.map.tags

    @property
    def name(self) -> str:
        """How messages name the map: its file, else its product id."""
        return str(self.path) if self.path is not None else self.product_id or "the map given as arrays"

    @property
    def product_id(self) -> str | None:
        return self.tags.get("S2LC_PRODUCT_ID") or None

    @property
    def model(self) -> str | None:
        return self.tags.get("S2LC_MODEL") or None

    @property
    def model_sha256(self) -> str | None:
        return self.tags.get("S2LC_MODEL_SHA256") or None

    @property
    def sensing_time(self) -> datetime | None:
        """``S2LC_SENSING_TIME`` (ISO 8601); a time without zone is taken as UTC.

        Raises:
            MapError: the tag is there but is not a date.
        """
        text = self.tags.get("S2LC_SENSING_TIME")
        if not text:
            return None
        t = iso_time(text)
        if t is None:
            raise MapError(f"{self.name}: S2LC_SENSING_TIME {text!r} is not an ISO date; "
                           "classify the product again with `s2lc classify`")
        return t

    def provenance(self) -> dict[str, Any]:
        """What the change outputs record about this map."""
        t = self.sensing_time
        return {
            "file": str(self.path) if self.path is not None else None,
            "product_id": self.product_id,
            "sensing_time": t.isoformat() if t else None,
            "model": self.model,
            "model_sha256": self.model_sha256,
            "status": self.tags.get("S2LC_STATUS") or None,
        }


def _confidence_path(path: Path) -> Path | None:
    suffix = OUTPUT_SUFFIXES["map"]
    if not path.name.endswith(suffix):
        return None
    return path.with_name(path.name[: -len(suffix)] + OUTPUT_SUFFIXES["confidence"])


def _read_confidence(path: Path | None, m: ClassMap) -> np.ndarray | None:
    """The sibling confidence raster, if it is there and on the map's grid."""
    import rasterio
    from rasterio.errors import RasterioIOError

    if path is None or not path.is_file():
        return None
    try:
        with rasterio.open(path) as src:
            if (src.tags().get("S2LC_KIND") != "confidence" or src.count != 1
                    or (src.height, src.width) != m.data.shape or not src.transform.almost_equals(m.transform)):
                logger.warning("%s is not the confidence of its map (kind or grid differ); polygons get no "
                               "confidence for that date", path)
                return None
            return src.read(1).astype(np.float32, copy=False)
    except RasterioIOError as exc:
        logger.warning("cannot read %s (%s); polygons get no confidence for that date", path, exc)
        return None


def load_map(path: str | os.PathLike) -> DatedMap:
    """Read a classification map written by ``s2lc classify``, and its confidence when present.

    The confidence is ``<id>_confidence.tif`` beside ``<id>_landcover.tif``.

    Raises:
        MapError: the file is missing, not a raster, or not an s2lc classification map.
    """
    path = Path(path)
    try:
        m = writers.read_class_map(path, kind="classification")
    except MapError as exc:
        raise MapError(f"{exc}; pass the <id>_landcover.tif that `s2lc classify` writes") from exc
    return DatedMap(m, _read_confidence(_confidence_path(path), m), path)


def _as_map(m: str | os.PathLike | DatedMap) -> DatedMap:
    return m if isinstance(m, DatedMap) else load_map(m)


def _date_or_name(m: DatedMap) -> str:
    t = m.sensing_time
    return t.date().isoformat() if t else (m.product_id or (m.path.name if m.path else "map"))


def _labels(maps: Sequence[DatedMap]) -> list[str]:
    """Short names for output files: sensing dates, else date-times, product ids, file stems, 1, 2, …"""
    times = [m.sensing_time for m in maps]
    candidates: list[list[str | None]] = []
    if all(times):
        candidates += [[t.strftime("%Y%m%d") for t in times], [t.strftime("%Y%m%dT%H%M%S") for t in times]]
    stems = [m.path.name.removesuffix(OUTPUT_SUFFIXES["map"]).removesuffix(".tif") if m.path else None for m in maps]
    candidates += [[m.product_id for m in maps], stems]
    for names in candidates:
        if all(names) and len(set(names)) == len(names):
            return [str(s) for s in names]
    return [str(i) for i in range(1, len(maps) + 1)]


# --------------------------------------------------------------------------------------------
# Checks and alignment


def _bounds(m: ClassMap) -> tuple[float, float, float, float]:
    from rasterio.transform import array_bounds

    h, w = m.data.shape
    west, south, east, north = array_bounds(h, w, m.transform)
    return west, south, east, north


def _num(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".")


def _grid_text(m: ClassMap) -> str:
    t, (h, w) = m.transform, m.data.shape
    return (f"{m.crs.to_string() if m.crs else 'no CRS'}, {w}x{h} px of {_num(abs(t.a))} m "
            f"at ({_num(t.c)}, {_num(t.f)})")


def _same_grid(a: ClassMap, b: ClassMap) -> bool:
    return a.crs == b.crs and a.data.shape == b.data.shape and a.transform.almost_equals(b.transform)


def _legend_difference(a: Sequence[LandCoverClass], b: Sequence[LandCoverClass]) -> str | None:
    ka, kb = {c.code: c.name for c in a}, {c.code: c.name for c in b}
    diffs = [f"code {code}: {ka.get(code, 'absent')} vs {kb.get(code, 'absent')}"
             for code in sorted(set(ka) | set(kb)) if ka.get(code) != kb.get(code)]
    if not diffs:
        return None
    return ", ".join(diffs[:3]) + (f" and {len(diffs) - 3} more" if len(diffs) > 3 else "")


#: Settings of ``s2lc classify`` whose difference between two dates shows as change: (parameter
#: in ``S2LC_PARAMETERS``, how to name it). Precision, batch size and device change a few
#: patches at most; the cloud threshold changes what is compared, not the land cover.
_CHANGING_SETTINGS = (("stride", "stride"), ("patch_size", "patch size"), ("tta", "test-time augmentation"))


def settings_difference(before: DatedMap, after: DatedMap) -> list[str]:
    """How ``before`` and ``after`` were classified differently, in ways that show as change:
    stride, patch size, test-time augmentation (``S2LC_PARAMETERS``) and product level (a model
    sees Level-1C and Level-2A reflectance differently). Empty when the same, or unknown.
    """
    def params(m: DatedMap) -> dict[str, Any]:
        try:
            value = json.loads(m.tags.get("S2LC_PARAMETERS") or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    pb, pa = params(before), params(after)
    out = [f"{name} {_setting_text(pb[key])} and {_setting_text(pa[key])}" for key, name in _CHANGING_SETTINGS
           if key in pb and key in pa and pb[key] != pa[key]]
    lb, la = before.tags.get("S2LC_PRODUCT_LEVEL"), after.tags.get("S2LC_PRODUCT_LEVEL")
    if {lb, la} == {"L1C", "L2A"}:  # a GeoTIFF's level is unknown, not different
        out.append(f"product level {lb} and {la}")
    return out


def _setting_text(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def same_acquisition(before: DatedMap, after: DatedMap) -> bool:
    """Whether both maps come from one product or one sensing time: their difference is not land change.

    Product ids count for Sentinel-2 products only: a GeoTIFF's id is its file name, which two
    exports of different years can share."""
    products = all(m.tags.get("S2LC_PRODUCT_LEVEL") in ("L1C", "L2A") for m in (before, after))
    if products and before.product_id and before.product_id == after.product_id:
        return True
    tb, ta = before.sensing_time, after.sensing_time
    return tb is not None and tb == ta


def check_comparable(before: DatedMap, after: DatedMap, *, align: bool = False,
                     allow_model_mismatch: bool = False) -> bool:
    """Refuse two maps whose difference would not be land change.

    Args:
        before, after: the maps, in date order.
        align: accept different grids (``after`` is to be resampled onto ``before``'s).
        allow_model_mismatch: accept maps from different models (or without a model hash),
            with a warning.

    Returns:
        Whether the maps come from different models (only possible with ``allow_model_mismatch``).

    Raises:
        MapError: legends differ (codes or names); models differ; ``before``'s CRS is not
            projected in metres; the maps do not overlap; grids differ without ``align``.
    """
    import rasterio.warp

    a, b = before.map, after.map
    diff = _legend_difference(a.classes, b.classes)
    if diff:
        raise MapError(f"{before.name} and {after.name} have different legends ({diff}); "
                       "compare maps classified with the same model")
    land, _ = _split_legend(a.classes)
    if len(land) > MAX_CLASSES:
        raise MapError(f"{before.name}: change maps hold at most {MAX_CLASSES} land-cover classes, "
                       f"its legend has {len(land)}; merge classes before comparing")

    mismatch = False
    missing = [m.name for m in (before, after) if m.model_sha256 is None]
    if missing or before.model_sha256 != after.model_sha256:
        mismatch = True
        if missing:
            reason = (f"{missing[0]} has no model hash (S2LC_MODEL_SHA256), so nothing shows that both dates "
                      "come from one model")
        else:
            reason = (f"{before.name} (model {before.model}, sha256 {before.model_sha256[:12]}) and {after.name} "
                      f"(model {after.model}, sha256 {after.model_sha256[:12]}) come from different models, "
                      "whose difference mixes algorithm change with land change")
        if not allow_model_mismatch:
            raise MapError(f"{reason}; classify both dates with one model, or pass allow_model_mismatch=True")
        logger.warning("%s; comparing anyway (allow_model_mismatch=True)", reason)

    crs = CRS.from_user_input(a.crs) if a.crs else None
    if crs is None or not crs.is_projected or (crs.linear_units or "").lower() not in ("metre", "meter"):
        raise MapError(f"{before.name}: areas need a projected CRS in metres, got "
                       f"{crs.to_string() if crs else 'none'}; reproject the map")

    if _same_grid(a, b):
        return mismatch
    w1, s1, e1, n1 = _bounds(a)
    w2, s2, e2, n2 = _bounds(b)
    if b.crs and b.crs != a.crs:
        w2, s2, e2, n2 = rasterio.warp.transform_bounds(b.crs, a.crs, w2, s2, e2, n2)
    if min(e1, e2) <= max(w1, w2) or min(n1, n2) <= max(s1, s2):
        raise MapError(f"{before.name} and {after.name} do not overlap; compare maps of the same place")
    if not align:
        raise MapError(f"{before.name} ({_grid_text(a)}) and {after.name} ({_grid_text(b)}) are on different "
                       "grids; pass align=True to resample the second onto the first's grid")
    return mismatch


def on_one_lattice(a: ClassMap, b: ClassMap) -> bool:
    """Same CRS and pixel size, north-up, and origins a whole number of pixels apart: the two grids
    are windows of one grid, so cutting them needs no resampling."""
    ta, tb = a.transform, b.transform
    if a.crs != b.crs or ta.b or ta.d or tb.b or tb.d or not (np.isclose(ta.a, tb.a) and np.isclose(ta.e, tb.e)):
        return False
    cols, rows = (tb.c - ta.c) / ta.a, (tb.f - ta.f) / ta.e
    return bool(np.isclose(cols, round(cols), rtol=0, atol=1e-6) and np.isclose(rows, round(rows), rtol=0, atol=1e-6))


def common_extent(maps: Sequence[DatedMap]) -> list[DatedMap]:
    """``maps`` with those on the first one's lattice (:func:`on_one_lattice`) but of other
    extents cut to their common intersection, with a warning; the others as they are (they need
    ``align=True``). Maps whose intersection is empty are left for :func:`check_comparable` to
    refuse. :func:`~s2lc.change.compare` and :func:`~s2lc.change.time_series` call it unless
    ``align=True`` asks for the maps on the first one's whole grid."""
    from rasterio.windows import Window

    first = maps[0].map
    group = [i for i, m in enumerate(maps) if on_one_lattice(first, m.map)]
    if all(_same_grid(first, maps[i].map) for i in group):
        return list(maps)
    offsets = {}  # each map's (row, col) offset from the first's origin, and its size
    for i in group:
        t = maps[i].map.transform
        offsets[i] = (round((t.f - first.transform.f) / first.transform.e), round((t.c - first.transform.c) / first.transform.a),
                      *maps[i].map.data.shape)
    r0, c0 = max(o[0] for o in offsets.values()), max(o[1] for o in offsets.values())
    r1, c1 = min(o[0] + o[2] for o in offsets.values()), min(o[1] + o[3] for o in offsets.values())
    if r1 <= r0 or c1 <= c0:
        return list(maps)
    out = list(maps)
    for i, (row, col, _, _) in offsets.items():
        out[i] = _cut(maps[i], Window(c0 - col, r0 - row, c1 - c0, r1 - r0))
    logger.warning("%s cover different extents of one %g m grid: compared on their intersection, %d columns x %d rows; "
                   "change outside it is not shown", ", ".join(maps[i].name for i in group), abs(first.transform.a),
                   c1 - c0, r1 - r0)
    return out


def _cut(m: DatedMap, window) -> DatedMap:
    rows, cols = window.toslices()
    data = np.ascontiguousarray(m.map.data[rows, cols])
    confidence = None if m.confidence is None else np.ascontiguousarray(m.confidence[rows, cols])
    transform = m.map.transform @ Affine.translation(window.col_off, window.row_off)
    return DatedMap(replace(m.map, data=data, transform=transform), confidence, m.path, cut=True)


def align_to(m: DatedMap, ref: DatedMap) -> DatedMap:
    """``m`` resampled onto ``ref``'s grid, nearest neighbour; no data where ``m`` has none.

    Its confidence, if any, is resampled the same way.
    """
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    src, dst_map = m.map, ref.map
    data = np.full(dst_map.data.shape, src.nodata, np.uint8)
    reproject(src.data, data, src_transform=src.transform, src_crs=src.crs, src_nodata=src.nodata,
              dst_transform=dst_map.transform, dst_crs=dst_map.crs, dst_nodata=src.nodata,
              resampling=Resampling.nearest)
    confidence = None
    if m.confidence is not None:
        confidence = np.full(dst_map.data.shape, np.nan, np.float32)
        reproject(m.confidence, confidence, src_transform=src.transform, src_crs=src.crs, src_nodata=np.nan,
                  dst_transform=dst_map.transform, dst_crs=dst_map.crs, dst_nodata=np.nan,
                  resampling=Resampling.nearest)
    logger.info("resampled %s onto the grid of %s (nearest neighbour)", m.name, ref.name)
    return DatedMap(replace(src, data=data, transform=dst_map.transform, crs=dst_map.crs), confidence, m.path)


def _prepare(ref: DatedMap, m: DatedMap, align: bool, allow_model_mismatch: bool) -> tuple[DatedMap, bool]:
    """``m`` checked against ``ref`` and, if needed, aligned to it: (map, whether it was aligned)."""
    check_comparable(ref, m, align=align, allow_model_mismatch=allow_model_mismatch)
    if same_acquisition(ref, m):
        logger.warning("%s and %s are of the same acquisition (%s): their difference is not land change", ref.name,
                       m.name, _date_or_name(ref))
    settings = settings_difference(ref, m)
    if settings:
        logger.warning("%s and %s were classified differently (%s): part of the change shown is the settings', "
                       "not the land's; classify every date the same way", ref.name, m.name, "; ".join(settings))
    if _same_grid(ref.map, m.map):
        return m, False
    return align_to(m, ref), True


# --------------------------------------------------------------------------------------------
# Order and no-data


def order_by_time(maps: Sequence[DatedMap]) -> list[DatedMap]:
    """``maps`` sorted by sensing time; maps of which none has a sensing time stay in the order
    given, with a warning.

    Raises:
        MapError: some maps have a sensing time and others not (the message names those without),
            or two maps share one.
    """
    undated = [m for m in maps if m.sensing_time is None]
    if undated and len(undated) < len(maps):
        names = ", ".join(m.name for m in undated)
        raise MapError(f"{names} {'has' if len(undated) == 1 else 'have'} no sensing time (S2LC_SENSING_TIME) but the "
                       "other maps do, so the series cannot be ordered; classify the input again with "
                       "`s2lc classify --date YYYY-MM-DD`")
    if undated:
        logger.warning("no map has a sensing time: the series runs in the order given (%s); classify with "
                       "`--date YYYY-MM-DD` to order it by date", ", ".join(m.name for m in maps))
        return list(maps)
    ordered = sorted(maps, key=lambda m: m.sensing_time)
    for x, y in zip(ordered, ordered[1:]):
        if x.sensing_time == y.sensing_time:
            raise MapError(f"{x.name} and {y.name} have the same sensing time {x.sensing_time.isoformat()}; "
                           "pass one map per date")
    if [id(m) for m in ordered] != [id(m) for m in maps]:
        logger.info("ordered by sensing time: %s", ", ".join(m.name for m in ordered))
    return ordered


def _nodata_as(m: ClassMap, nodata: int) -> np.ndarray:
    return m.data if m.nodata == nodata else np.where(m.data == m.nodata, nodata, m.data).astype(np.uint8)
