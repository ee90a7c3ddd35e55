"""What changed between land-cover maps of one place: two dates, or a time series.

The inputs are classification maps written by ``s2lc classify`` (``<id>_landcover.tif``, with
the ``<id>_confidence.tif`` beside it when there is one). Before anything is compared,
:func:`check_comparable` refuses maps that would show something other than land change: other
legends, other models (their difference mixes algorithm change with land change), other grids
(unless ``align``), maps that do not overlap.

Pure computation — :func:`compare_arrays`, :func:`trajectory_arrays`,
:func:`trajectory_histories` — takes arrays; only the edges touch files: :func:`load_map` reads
a map, :meth:`ChangeResult.save` and :meth:`SeriesResult.save` write through :mod:`s2lc.writers`.

Change raster codes (uint8, ``docs/change.md``):

* 0 — no data in either date (the raster's no-data value);
* 1 — unchanged;
* 2 — not compared: cloud in either date (and data in both);
* 3 and up — one code per from→to pair of land-cover classes, fixed by the legend:
  :func:`transition_code`; the raster's legend lists the transitions it holds.

Cloud and no-data never count as change: they have their own rows and columns (``Cloud``,
``NoData``) in the transition matrix and their own totals.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from s2lc import __version__, writers
from s2lc.errors import MapError
from s2lc.legend import LandCoverClass
from s2lc.writers import ClassMap

if TYPE_CHECKING:
    import geopandas

__all__ = [
    "CLOUD_NAME",
    "FIRST_TRANSITION",
    "FLICKER",
    "MAX_CLASSES",
    "MAX_DATES",
    "NODATA",
    "NOT_COMPARED",
    "PAIR_SUFFIXES",
    "SERIES_FILES",
    "UNCHANGED",
    "ChangeResult",
    "DatedMap",
    "SeriesResult",
    "Trajectory",
    "align_to",
    "check_comparable",
    "compare",
    "compare_arrays",
    "load_map",
    "order_by_time",
    "same_acquisition",
    "settings_difference",
    "time_series",
    "trajectory_arrays",
    "trajectory_classes",
    "trajectory_code",
    "trajectory_histories",
    "transition_classes",
    "transition_code",
]

logger = logging.getLogger(__name__)

#: Change raster: no data in either date.
NODATA = 0
#: Change raster: the same land-cover class in both dates.
UNCHANGED = 1
#: Change raster: cloud in either date, data in both; no change is claimed.
NOT_COMPARED = 2
#: Change raster: the first transition code (:func:`transition_code`).
FIRST_TRANSITION = 3
#: Land-cover classes a change raster can hold: 3 + n (n − 1) codes must fit in uint8.
MAX_CLASSES = 16
#: Trajectory raster: codes of pixels that returned to a class they had left start here.
FLICKER = 128
#: Dates a time series can hold: the trajectory codes 1 + k and 128 + k (k ≤ dates − 1) fit in uint8.
MAX_DATES = 127
#: The legend entry that is cloud, not land cover (:meth:`s2lc.legend.Legend.from_names`).
CLOUD_NAME = "Cloud"

_UNCHANGED_CLASS = LandCoverClass(UNCHANGED, "Unchanged", "Unchanged", (220, 220, 220))
_NOT_COMPARED_CLASS = LandCoverClass(NOT_COMPARED, "NotCompared", "Not compared (cloud)", (176, 196, 222))
_CHUNK_ROWS = 512
#: Matrix rows and columns after the land-cover classes.
_MASK_CATEGORIES = (CLOUD_NAME, "NoData")
_AREA_NOTE = ("Areas are pixel counts times the pixel area. Classification errors bias them; for area "
              "estimates with confidence intervals use a reference sample (Olofsson et al. 2014).")
_FLICKER_NOTE = ("Flicker: a pixel that returned to a class it had left (A -> B -> A). It is mostly "
                 "classification noise, and it makes the sum of two-date changes overstate lasting change.")


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
    """

    map: ClassMap
    confidence: np.ndarray | None = None
    path: Path | None = None

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
        try:
            t = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise MapError(f"{self.name}: S2LC_SENSING_TIME {text!r} is not an ISO date; "
                           "classify the product again with `s2lc classify`") from exc
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

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
    from s2lc.classify import OUTPUT_SUFFIXES

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


def _split_legend(classes: Sequence[LandCoverClass]) -> tuple[tuple[LandCoverClass, ...], int | None]:
    """(land-cover classes in code order, the cloud code or None)."""
    land = tuple(sorted((c for c in classes if c.name != CLOUD_NAME), key=lambda c: c.code))
    cloud = [c.code for c in classes if c.name == CLOUD_NAME]
    return land, (cloud[0] if cloud else None)


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
            raise MapError(f"{reason}; classify both dates with one model, or pass --allow-model-mismatch")
        logger.warning("%s; comparing anyway (--allow-model-mismatch)", reason)

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
                       "grids; pass --align to resample the second onto the first's grid")
    return mismatch


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
# Two dates: pure computation


def transition_code(i: int, j: int, n: int) -> int:
    """The change raster code for the change from the i-th to the j-th of ``n`` land-cover classes.

    ``i`` and ``j`` count from 0 in code order and differ. Codes run from
    :data:`FIRST_TRANSITION`, row by row: from the first class to the second, third, …, then
    from the second class, and so on; they depend only on the legend, so one code means one
    transition in every change map of the same legend.
    """
    if i == j or not (0 <= i < n and 0 <= j < n):
        raise ValueError(f"need two different class indexes below {n}, got {i} and {j}")
    return FIRST_TRANSITION + i * (n - 1) + (j if j < i else j - 1)


def transition_classes(land: Sequence[LandCoverClass]) -> dict[int, tuple[LandCoverClass, LandCoverClass]]:
    """Every transition code of a legend's land-cover classes (code order) → (from, to)."""
    land = tuple(land)
    return {transition_code(i, j, len(land)): (a, b)
            for i, a in enumerate(land) for j, b in enumerate(land) if i != j}


def _transition_class(code: int, a: LandCoverClass, b: LandCoverClass) -> LandCoverClass:
    """The legend entry of a transition: coloured as what the land became."""
    return LandCoverClass(code, f"{a.name}->{b.name}", f"{a.label} → {b.label}", b.color)


def _category_lut(land: Sequence[LandCoverClass], cloud: int | None, nodata: int) -> np.ndarray:
    """Code → matrix index: land classes 0..n−1, cloud n, no-data n + 1, anything else −1."""
    lut = np.full(256, -1, np.int16)
    for i, c in enumerate(land):
        lut[c.code] = i
    if cloud is not None:
        lut[cloud] = len(land)
    lut[nodata] = len(land) + 1
    return lut


def _pair_code_lut(n: int) -> np.ndarray:
    """Pair index (before index × (n + 2) + after index) → change raster code."""
    k = n + 2
    lut = np.full(k * k, NOT_COMPARED, np.uint8)
    for i in range(k):
        for j in range(k):
            if i == n + 1 or j == n + 1:
                lut[i * k + j] = NODATA
            elif i < n and j < n:
                lut[i * k + j] = UNCHANGED if i == j else transition_code(i, j, n)
    return lut


def _indexes(data: np.ndarray, lut: np.ndarray, label: str) -> np.ndarray:
    idx = lut[data]
    if (idx < 0).any():
        unknown = sorted(set(np.unique(data[idx < 0]).tolist()))
        raise MapError(f"{label} holds codes {unknown} that are not in its legend; classify it again")
    return idx


def compare_arrays(
    before: np.ndarray,
    after: np.ndarray,
    classes: Sequence[LandCoverClass],
    *,
    nodata: int = 0,
    labels: tuple[str, str] = ("the first map", "the second map"),
) -> tuple[np.ndarray, np.ndarray]:
    """Change codes and the transition matrix of two maps on one grid.

    Memory stays bounded: the maps are processed in strips of rows.

    Args:
        before, after: (h, w) uint8 class codes, no-data ``nodata``.
        classes: their legend, cloud included (the class named :data:`CLOUD_NAME`).
        nodata: the maps' no-data code.
        labels: how error messages name the two maps.

    Returns:
        ``(codes, matrix)``: codes (h, w) uint8 as in the module docstring; matrix
        (n + 2, n + 2) int64 pixel counts, rows the ``before`` category and columns the
        ``after`` one, categories the n land-cover classes in code order, then cloud, then no-data.

    Raises:
        MapError: a code that is not in the legend; more than :data:`MAX_CLASSES` classes.
        ValueError: maps of different shapes.
    """
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape or before.ndim != 2:
        raise ValueError(f"expected two (h, w) maps of one shape, got {before.shape} and {after.shape}")
    if before.dtype != np.uint8 or after.dtype != np.uint8:
        raise TypeError(f"class maps are uint8, got {before.dtype} and {after.dtype}")
    land, cloud = _split_legend(classes)
    n = len(land)
    if n > MAX_CLASSES:
        raise MapError(f"change maps hold at most {MAX_CLASSES} land-cover classes, got {n}")
    k = n + 2
    lut, code_lut = _category_lut(land, cloud, nodata), _pair_code_lut(n)
    codes = np.empty(before.shape, np.uint8)
    matrix = np.zeros(k * k, np.int64)
    for r0 in range(0, before.shape[0], _CHUNK_ROWS):
        rows = slice(r0, r0 + _CHUNK_ROWS)
        pair = _indexes(before[rows], lut, labels[0]) * k + _indexes(after[rows], lut, labels[1])
        codes[rows] = code_lut[pair]
        matrix += np.bincount(pair.ravel(), minlength=k * k)
    return codes, matrix.reshape(k, k)


def _matrix_counts(matrix: np.ndarray) -> dict[str, int]:
    """Pixels by what a comparison could say about them, from an (n + 2)² matrix."""
    n = matrix.shape[0] - 2
    land = matrix[:n, :n]
    no_data = int(matrix[n + 1, :].sum() + matrix[:, n + 1].sum() - matrix[n + 1, n + 1])
    unchanged = int(np.trace(land))
    changed = int(land.sum()) - unchanged
    total = int(matrix.sum())
    return {"total": total, "compared": unchanged + changed, "unchanged": unchanged, "changed": changed,
            "not_compared_cloud": total - no_data - unchanged - changed, "no_data": no_data}


def _pixel_area_m2(transform: Affine) -> float:
    return abs(transform.a * transform.e - transform.b * transform.d)


def _hectares(pixels: Any, pixel_area_m2: float) -> Any:
    """Pixel counts (an int or an integer array) in hectares. Multiplying the count by the area in
    m² and dividing by 10 000 last keeps 74 752 pixels of 100 m² at 747.52 ha, where multiplying
    by 0.01 gives 747.5199999999995; sums are taken in pixels for the same reason."""
    return pixels * pixel_area_m2 / 10_000


# --------------------------------------------------------------------------------------------
# Two dates: result and outputs


def _labels(maps: Sequence[DatedMap]) -> list[str]:
    """Short names for output files: sensing dates, else date-times, product ids, file stems, 1, 2, …"""
    from s2lc.classify import OUTPUT_SUFFIXES

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


#: Output kind → file-name suffix after the prefix (``change_<before>_<after>``).
PAIR_SUFFIXES = {
    "map": ".tif",
    "matrix_pixels": "_matrix_pixels.csv",
    "matrix_ha": "_matrix_ha.csv",
    "matrix": "_matrix.json",
    "polygons": ".gpkg",
    "figure": ".png",
    "summary": ".json",
}


def _matrix_csv(names: Sequence[str], matrix: np.ndarray, fmt) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["before \\ after", *names, "Total"])
    for name, row in zip(names, matrix):
        out.writerow([name, *map(fmt, row), fmt(row.sum())])
    out.writerow(["Total", *map(fmt, matrix.sum(axis=0)), fmt(matrix.sum())])
    return buf.getvalue()


def _ha(value: float) -> str:
    return repr(round(float(value), 6))


@dataclass(eq=False)
class ChangeResult:
    """What changed between two maps: the result of :func:`compare`.

    Attributes:
        before, after: the maps; ``after`` is on ``before``'s grid (resampled if ``aligned``).
        codes: (h, w) uint8 change codes (module docstring).
        matrix: (n + 2, n + 2) int64 pixel counts, rows ``before``, columns ``after``, in the
            order of :attr:`categories`.
        aligned: whether ``after`` was resampled onto ``before``'s grid.
        model_mismatch: whether the maps come from different (or unknown) models.
    """

    before: DatedMap
    after: DatedMap
    codes: np.ndarray
    matrix: np.ndarray
    aligned: bool = False
    model_mismatch: bool = False

    @property
    def transform(self) -> Affine:
        return self.before.map.transform

    @property
    def crs(self) -> CRS:
        return self.before.map.crs

    @property
    def land(self) -> tuple[LandCoverClass, ...]:
        """The land-cover classes compared, in code order."""
        return _split_legend(self.before.map.classes)[0]

    @property
    def categories(self) -> list[str]:
        """Names of the matrix rows and columns: land-cover classes, ``Cloud``, ``NoData``."""
        return [c.name for c in self.land] + list(_MASK_CATEGORIES)

    @property
    def pixel_area_m2(self) -> float:
        return _pixel_area_m2(self.transform)

    def _ha(self, pixels: Any) -> Any:
        return _hectares(pixels, self.pixel_area_m2)

    @property
    def matrix_ha(self) -> np.ndarray:
        """:attr:`matrix` in hectares, float64."""
        return self._ha(self.matrix)

    @property
    def pixels(self) -> dict[str, int]:
        """Pixel totals: ``total``, ``compared`` (= ``unchanged`` + ``changed``),
        ``not_compared_cloud`` and ``no_data``."""
        return _matrix_counts(self.matrix)

    @property
    def classes(self) -> tuple[LandCoverClass, ...]:
        """The change raster's legend: unchanged, not compared, and the transitions it holds."""
        n = len(self.land)
        land = self.matrix[:n, :n]
        present = [_transition_class(code, a, b) for code, (a, b) in transition_classes(self.land).items()
                   if land[self.land.index(a), self.land.index(b)]]
        return (_UNCHANGED_CLASS, _NOT_COMPARED_CLASS, *present)

    def transitions(self) -> list[dict[str, Any]]:
        """The transitions present, largest first: code, from, to, label, pixels, area_ha."""
        rows = []
        for code, (a, b) in transition_classes(self.land).items():
            count = int(self.matrix[self.land.index(a), self.land.index(b)])
            if count:
                rows.append({"code": code, "from": a.name, "to": b.name, "label": f"{a.label} → {b.label}",
                             "pixels": count, "area_ha": self._ha(count)})
        return sorted(rows, key=lambda r: (-r["pixels"], r["code"]))

    def gains_losses(self) -> dict[str, dict[str, float]]:
        """Per land-cover class, hectares gained from and lost to other classes, and the net.

        Only compared pixels count (land cover at both dates).
        """
        n = len(self.land)
        land = self.matrix[:n, :n]
        stay = np.diag(land)
        gain, loss = land.sum(axis=0) - stay, land.sum(axis=1) - stay
        ha = self._ha
        return {c.name: {"gain_ha": float(ha(g)), "loss_ha": float(ha(lo)), "net_ha": float(ha(g - lo))}
                for c, g, lo in zip(self.land, gain, loss)}

    def matrix_dict(self) -> dict[str, Any]:
        """The transition matrix in pixels and hectares with row and column totals, for JSON."""
        m, ha = self.matrix, self._ha
        return {
            "rows": "before", "columns": "after", "categories": self.categories,
            "pixel_area_m2": self.pixel_area_m2,
            "pixels": m, "area_ha": ha(m),
            "row_totals": {"pixels": m.sum(axis=1), "area_ha": ha(m.sum(axis=1))},
            "column_totals": {"pixels": m.sum(axis=0), "area_ha": ha(m.sum(axis=0))},
            "total": {"pixels": int(m.sum()), "area_ha": float(ha(m.sum()))},
        }

    def __repr__(self) -> str:
        px, ha = self.pixels, self._ha
        return (f"<ChangeResult {_date_or_name(self.before)} → {_date_or_name(self.after)}: "
                f"{ha(px['changed']):,.2f} ha changed of {ha(px['compared']):,.2f} ha compared>")

    def checks(self) -> dict[str, str]:
        """What was checked before comparing, and how it came out (the summary's ``checks``)."""
        settings = settings_difference(self.before, self.after)
        return {"legend": "same", "grid": "aligned (nearest neighbour)" if self.aligned else "same",
                "model": "different, allowed" if self.model_mismatch else "same",
                "settings": "different: " + "; ".join(settings) if settings else "same",
                "acquisition": "same" if same_acquisition(self.before, self.after) else "different"}

    def summary(self) -> dict[str, Any]:
        """Provenance of both maps, the checks, totals, transitions, gains and losses, codes."""
        px = self.pixels
        return {
            "before": self.before.provenance(),
            "after": self.after.provenance(),
            "checks": self.checks(),
            "pixel_area_m2": self.pixel_area_m2,
            "pixels": px,
            "area_ha": {k: self._ha(v) for k, v in px.items()},
            "changed_fraction": px["changed"] / px["compared"] if px["compared"] else None,
            "transitions": self.transitions(),
            "gains_losses": self.gains_losses(),
            "codes": {str(c.code): c.label for c in self.classes},
            "notes": [_AREA_NOTE],
            "s2lc_version": __version__,
        }

    def tags(self) -> dict[str, str]:
        """Provenance for the change raster (``S2LC_*`` tags)."""
        b, a = self.before, self.after
        return {
            "S2LC_BEFORE_PRODUCT_ID": b.product_id or "",
            "S2LC_BEFORE_SENSING_TIME": b.provenance()["sensing_time"] or "",
            "S2LC_AFTER_PRODUCT_ID": a.product_id or "",
            "S2LC_AFTER_SENSING_TIME": a.provenance()["sensing_time"] or "",
            "S2LC_MODEL": b.model or "",
            "S2LC_MODEL_SHA256": b.model_sha256 or "",
            "S2LC_MODEL_MISMATCH": json.dumps(self.model_mismatch),
            "S2LC_ALIGNED": json.dumps(self.aligned),
            "S2LC_CHECKS": json.dumps(self.checks(), ensure_ascii=False),
            "S2LC_BEFORE": json.dumps(b.provenance()),
            "S2LC_AFTER": json.dumps(a.provenance()),
        }

    def polygons(self) -> "geopandas.GeoDataFrame":
        """Polygons of changed pixels: 4-connected runs of one transition.

        Returns:
            A GeoDataFrame in the maps' CRS with columns ``change_code``, ``change``
            (``Forest->Residential``), ``from_code``, ``from_class``, ``to_code``, ``to_class``,
            ``area_ha``, ``confidence_before`` and ``confidence_after`` (the mean confidence
            of each date under the polygon; NaN where a date has no confidence raster).
        """
        trans = {c.code: c for c in self.classes if c.code >= FIRST_TRANSITION}
        pairs = transition_classes(self.land)
        data = np.where(self.codes >= FIRST_TRANSITION, self.codes, NODATA).astype(np.uint8)
        nan = None
        confidence = {}
        for key, m in (("confidence_before", self.before), ("confidence_after", self.after)):
            if m.confidence is None:
                nan = np.full(data.shape, np.nan, np.float32) if nan is None else nan
            confidence[key] = m.confidence if m.confidence is not None else nan
        extra = {
            "from_code": {c: pairs[c][0].code for c in trans},
            "from_class": {c: pairs[c][0].name for c in trans},
            "to_code": {c: pairs[c][1].code for c in trans},
            "to_class": {c: pairs[c][1].name for c in trans},
        }
        gdf = writers.polygons(data, self.transform, self.crs, tuple(trans.values()), confidence=confidence,
                               extra_codes=extra, nodata=NODATA)
        return gdf.rename(columns={"class_code": "change_code", "class_name": "change"})

    def output_paths(self, out_dir: str | os.PathLike, prefix: str | None = None) -> dict[str, Path]:
        """Where :meth:`save` writes each output: ``<out_dir>/<prefix><suffix>`` (:data:`PAIR_SUFFIXES`);
        the prefix defaults to ``change_<before>_<after>``, dates from the maps' sensing times."""
        if prefix is None:
            prefix = "change_{}_{}".format(*_labels([self.before, self.after]))
        return {k: Path(out_dir) / f"{prefix}{suffix}" for k, suffix in PAIR_SUFFIXES.items()}

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False, *, prefix: str | None = None,
             progress: bool = False) -> dict[str, Path]:
        """Write the change raster, matrices, polygons, figure and summary into ``out_dir``
        (created if needed).

        Existing outputs are refused before anything is written, unless ``overwrite``. All or
        nothing: the files are renamed into place once every one is written, so a failure
        leaves existing outputs as they were and adds none.

        Returns:
            Output kind → path (:data:`PAIR_SUFFIXES`).

        Raises:
            OutputError: outputs exist, or the folder cannot be created or written.
        """
        paths = self.output_paths(writers.make_folder(out_dir), prefix)
        with writers.staged_outputs(writers.with_sidecars(paths.values()), overwrite) as stage:
            _write_pair(self, paths, stage, progress)
        return paths


def _steps(items: list, progress: bool, desc: str) -> Iterator:
    from tqdm import tqdm

    return iter(tqdm(items, desc=desc, unit="file", disable=not progress, leave=False))


def _write_pair(result: ChangeResult, paths: dict[str, Path], stage: Callable[[Path], Path], progress: bool) -> None:
    from s2lc.qgis import polygon_qml, polygon_sld

    names = result.categories
    summary = result.summary()
    summary["outputs"] = {k: p.name for k, p in paths.items()}
    layer = "change"
    trans = [c for c in result.classes if c.code >= FIRST_TRANSITION]
    writes = {
        "map": lambda p: writers.write_class_map(p, result.codes, result.transform, result.crs, result.classes,
                                                 result.tags(), nodata=NODATA, kind="change"),
        "matrix_pixels": lambda p: writers.write_text(p, _matrix_csv(names, result.matrix, lambda v: str(int(v)))),
        "matrix_ha": lambda p: writers.write_text(p, _matrix_csv(names, result.matrix_ha, _ha)),
        "matrix": lambda p: writers.write_json(p, result.matrix_dict()),
        "polygons": lambda p: writers.write_gpkg(p, result.polygons(), layer, polygon_qml(trans, "change_code"),
                                                 polygon_sld(trans, layer, "change_code")),
        "figure": lambda p: _write_figure(p, result),
        "summary": lambda p: writers.write_json(p, summary),
    }
    for kind in _steps(list(writes), progress, f"writing {paths['map'].stem}"):
        writes[kind](stage(paths[kind]))


def _rgba(data: np.ndarray, classes: Sequence[LandCoverClass], step: int) -> np.ndarray:
    lut = np.zeros((256, 4), np.uint8)  # anything outside the legend (no-data): transparent
    for c in classes:
        lut[c.code] = (*c.color, 255)
    return lut[data[::step, ::step]]


def _write_figure(path: Path, result: ChangeResult, max_size: int = 500) -> Path:
    """The summary PNG: both maps and the change map side by side, gains and losses per class."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    step = max(1, math.ceil(max(result.codes.shape) / max_size))
    b, a = result.before, result.after
    titles = [f"Before: {_date_or_name(b)}", f"After: {_date_or_name(a)}", "Change"]
    images = [_rgba(b.map.data, b.map.classes, step), _rgba(a.map.data, a.map.classes, step),
              _rgba(result.codes, result.classes, step)]
    fig = Figure(figsize=(15, 9), dpi=100, facecolor="white", layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=(3, 2))
    present = {int(c) for c in np.unique(np.concatenate([b.map.data.ravel()[::step], a.map.data.ravel()[::step]]))}
    no_data = dict(facecolor="white", edgecolor="0.6", hatch="////", label="No data")
    class_handles = [Patch(facecolor=np.array(c.color) / 255, edgecolor="0.4", label=c.label)
                     for c in b.map.classes if c.code in present] + [Patch(**no_data)]
    top = result.transitions()[:8]
    change_handles = [Patch(facecolor=np.array(c.color) / 255, edgecolor="0.4", label=c.label)
                      for c in result.classes[:2]]
    change_handles += [Patch(facecolor=np.array(result.land[[c.name for c in result.land].index(t["to"])].color) / 255,
                             edgecolor="0.4", label=f"{t['label']} ({t['area_ha']:.4g} ha)") for t in top]
    change_handles.append(Patch(**no_data))
    for col, (title, image) in enumerate(zip(titles, images)):
        ax = fig.add_subplot(grid[0, col])
        height, width = image.shape[:2]
        ax.add_patch(Rectangle((-0.5, -0.5), width, height, **{**no_data, "label": None}, zorder=0))
        ax.imshow(image, interpolation="nearest", zorder=1)
        ax.set_title(title, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    legend_ax = fig.add_subplot(grid[1, 2])
    legend_ax.axis("off")
    legend_ax.legend(handles=change_handles, loc="upper left", frameon=False, fontsize=8, title="Change (largest)")
    classes_ax = fig.add_subplot(grid[1, 1])
    classes_ax.axis("off")
    classes_ax.legend(handles=class_handles, loc="upper left", frameon=False, fontsize=8, title="Classes")

    ax = fig.add_subplot(grid[1, 0])
    gl = result.gains_losses()
    rows = [(name, v) for name, v in gl.items() if v["gain_ha"] or v["loss_ha"]]
    px, area = result.pixels, result.pixel_area_m2 / 10_000
    ax.set_title(f"Gains and losses per class (ha): {px['changed'] * area:.4g} ha changed, "
                 f"{px['not_compared_cloud'] * area:.4g} ha cloud, {px['no_data'] * area:.4g} ha no data",
                 fontsize=9)
    if rows:
        y = np.arange(len(rows))
        labels = [next(c.label for c in result.land if c.name == name) for name, _ in rows]
        ax.barh(y, [v["gain_ha"] for _, v in rows], color="#1a9850", label="gain")
        ax.barh(y, [-v["loss_ha"] for _, v in rows], color="#d73027", label="loss")
        ax.scatter([v["net_ha"] for _, v in rows], y, color="black", marker="|", s=200, label="net", zorder=3)
        ax.set_yticks(y, labels, fontsize=8)
        ax.axvline(0, color="0.3", linewidth=0.8)
        ax.invert_yaxis()
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no change", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    fig.suptitle(f"Land-cover change {_date_or_name(b)} → {_date_or_name(a)}", fontsize=13)
    with writers.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _date_or_name(m: DatedMap) -> str:
    t = m.sensing_time
    return t.date().isoformat() if t else (m.product_id or (m.path.name if m.path else "map"))


def compare(
    before: str | os.PathLike | DatedMap,
    after: str | os.PathLike | DatedMap,
    *,
    align: bool = False,
    allow_model_mismatch: bool = False,
) -> ChangeResult:
    """What changed from ``before`` to ``after``.

    The maps are compared in the order given; a warning says so if their sensing times are the
    other way round.

    Args:
        before, after: ``<id>_landcover.tif`` paths from ``s2lc classify``, or :class:`DatedMap`.
        align: resample ``after`` onto ``before``'s grid (nearest neighbour) when they differ.
        allow_model_mismatch: compare maps from different models (with a warning).

    Returns:
        A :class:`ChangeResult`; nothing is written until :meth:`ChangeResult.save`.

    Raises:
        MapError: a file is not an s2lc classification map, or the maps cannot be compared
            (:func:`check_comparable`); the message names the file and what to do.
    """
    b, a = _as_map(before), _as_map(after)
    tb, ta = b.sensing_time, a.sensing_time
    if tb and ta and ta < tb:
        logger.warning("%s (%s) was sensed before %s (%s): comparing in the order given", a.name, ta.date(),
                       b.name, tb.date())
    return _compare_prepared(b, *_prepare(b, a, align, allow_model_mismatch))


def _compare_prepared(b: DatedMap, a: DatedMap, aligned: bool) -> ChangeResult:
    mismatch = b.model_sha256 is None or b.model_sha256 != a.model_sha256
    codes, matrix = compare_arrays(b.map.data, _nodata_as(a.map, b.map.nodata), b.map.classes,
                                   nodata=b.map.nodata, labels=(b.name, a.name))
    result = ChangeResult(b, a, codes, matrix, aligned=aligned, model_mismatch=mismatch)
    px = result.pixels
    if not px["compared"]:
        logger.warning("%s and %s share no pixel with land cover at both dates (cloud or no data): nothing "
                       "to compare", b.name, a.name)
    return result


# --------------------------------------------------------------------------------------------
# Time series


def order_by_time(maps: Sequence[DatedMap]) -> list[DatedMap]:
    """``maps`` sorted by sensing time.

    Raises:
        MapError: a map without a sensing time, or two maps of the same time.
    """
    for m in maps:
        if m.sensing_time is None:
            raise MapError(f"{m.name} has no sensing time (S2LC_SENSING_TIME), so the series cannot be ordered; "
                           "use maps written by `s2lc classify`")
    ordered = sorted(maps, key=lambda m: m.sensing_time)
    for x, y in zip(ordered, ordered[1:]):
        if x.sensing_time == y.sensing_time:
            raise MapError(f"{x.name} and {y.name} have the same sensing time {x.sensing_time.isoformat()}; "
                           "pass one map per date")
    if [id(m) for m in ordered] != [id(m) for m in maps]:
        logger.info("ordered by sensing time: %s", ", ".join(m.name for m in ordered))
    return ordered


def trajectory_code(n_changes: int, flicker: bool) -> int:
    """The trajectory raster code: 1 + changes, or :data:`FLICKER` + changes for a pixel that
    returned to a class it had left; 0 is for pixels with land cover at fewer than two dates."""
    return (FLICKER if flicker else 1) + n_changes


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Per pixel, what happened over a series (from :func:`trajectory_arrays`).

    Attributes:
        codes: (h, w) uint8 trajectory codes (:func:`trajectory_code`).
        n_changes: (h, w) uint8 changes between successive dates with land cover.
        flicker: (h, w) bool, returned to a class it had left (A → B → A).
        n_observed: (h, w) uint8 dates with land cover (not cloud, not no-data).
    """

    codes: np.ndarray
    n_changes: np.ndarray
    flicker: np.ndarray
    n_observed: np.ndarray

    def __repr__(self) -> str:
        h, w = self.codes.shape
        return (f"<Trajectory {w}x{h}: {int((self.n_changes > 0).sum())} pixels changed at least once, "
                f"{int(self.flicker.sum())} flicker>")


def trajectory_arrays(stack: np.ndarray, classes: Sequence[LandCoverClass], *, nodata: int = 0) -> Trajectory:
    """Count each pixel's changes over a series and flag the ones that flip back.

    Cloud and no-data dates are skipped: a pixel's changes are counted between its successive
    dates with land cover, so Forest, cloud, Forest is no change, and Forest, cloud, Pasture one.

    Args:
        stack: (t, h, w) uint8 class codes, dates in time order, on one grid.
        classes: the legend, cloud included.
        nodata: the no-data code.

    Returns:
        A :class:`Trajectory`.

    Raises:
        MapError: more than :data:`MAX_DATES` dates or 64 land-cover classes; codes outside the legend.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.dtype != np.uint8:
        raise ValueError(f"expected a (t, h, w) uint8 stack, got {stack.shape} {stack.dtype}")
    if stack.shape[0] > MAX_DATES:
        raise MapError(f"a series holds at most {MAX_DATES} dates, got {stack.shape[0]}; split it")
    land, cloud = _split_legend(classes)
    if len(land) > 64:
        raise MapError(f"trajectories track at most 64 land-cover classes, got {len(land)}")
    lut = _category_lut(land, cloud, nodata)
    n = len(land)
    _, h, w = stack.shape
    n_changes = np.zeros((h, w), np.uint8)
    flicker = np.zeros((h, w), bool)
    n_obs = np.zeros((h, w), np.uint8)
    one = np.uint64(1)
    for r0 in range(0, h, _CHUNK_ROWS):
        rows = slice(r0, r0 + _CHUNK_ROWS)
        last = np.full((stack[0, rows].shape), -1, np.int16)
        left = np.zeros(last.shape, np.uint64)  # bit i: the pixel has left class i
        for t, layer in enumerate(stack[:, rows]):
            idx = _indexes(layer, lut, f"date {t + 1} of the series")
            valid = idx < n
            changed = valid & (last >= 0) & (idx != last)
            left[changed] |= one << last[changed].astype(np.uint64)
            flicker[rows][changed] |= ((left[changed] >> idx[changed].astype(np.uint64)) & one).astype(bool)
            n_changes[rows] += changed
            last[valid] = idx[valid]
            n_obs[rows] += valid
    codes = np.where(flicker, FLICKER, 1).astype(np.uint8) + n_changes
    codes[n_obs < 2] = NODATA
    return Trajectory(codes, n_changes, flicker, n_obs)


def trajectory_classes(codes: np.ndarray | Sequence[int]) -> tuple[LandCoverClass, ...]:
    """The legend of a trajectory raster for the codes it holds (0, no data, excluded)."""
    from matplotlib import colormaps

    present = sorted({int(c) for c in np.unique(np.asarray(codes))} - {NODATA})
    out = []
    changes, flips = colormaps["YlOrRd"], colormaps["RdPu"]
    for code in present:
        flick, k = code >= FLICKER, code - (FLICKER if code >= FLICKER else 1)
        if not flick and k == 0:
            out.append(LandCoverClass(code, "Stable", "Stable (no change)", (220, 220, 220)))
            continue
        rgb = (flips if flick else changes)(min(1.0, 0.35 + 0.15 * k))[:3]
        times = "once" if k == 1 else f"{k} times"
        name = f"Flicker{k}" if flick else f"Changed{k}"
        label = f"Flicker: changed {times}, back to an earlier class" if flick else f"Changed {times}"
        out.append(LandCoverClass(code, name, label, tuple(int(round(255 * v)) for v in rgb)))
    return tuple(out)


def trajectory_histories(stack: np.ndarray, mask: np.ndarray, classes: Sequence[LandCoverClass], *,
                         nodata: int = 0) -> tuple[np.ndarray, list[list[LandCoverClass]]]:
    """Number each pixel's history — its succession of land-cover classes — for polygons.

    Cloud and no-data dates are skipped and repeats collapse: Forest, Forest, cloud, Pasture
    is the history Forest → Pasture.

    Args:
        stack: (t, h, w) uint8 class codes, dates in time order.
        mask: (h, w) bool, the pixels to number (e.g. those that changed).
        classes: the legend, cloud included.
        nodata: the no-data code.

    Returns:
        ``(ids, histories)``: (h, w) int32 history ids, 0 outside ``mask``; ``histories[i - 1]``
        is the succession of classes of id ``i``.
    """
    land, _ = _split_legend(classes)
    by_code = {c.code: c for c in land}
    ids = np.zeros(mask.shape, np.int32)
    if not mask.any():
        return ids, []
    sequences, inverse = np.unique(stack[:, mask].T, axis=0, return_inverse=True)
    histories: list[list[LandCoverClass]] = []
    number: dict[tuple[int, ...], int] = {}
    seq_ids = np.empty(len(sequences), np.int32)
    for s, seq in enumerate(sequences):
        hist: list[int] = []
        for code in seq.tolist():
            if code in by_code and (not hist or hist[-1] != code):
                hist.append(code)
        key = tuple(hist)
        if key not in number:
            number[key] = len(number) + 1
            histories.append([by_code[c] for c in hist])
        seq_ids[s] = number[key]
    ids[mask] = seq_ids[inverse.ravel()]
    return ids, histories


#: Series output kind → file name after ``<out_dir>/``, formatted with the first and last labels.
SERIES_FILES = {
    "trajectory": "trajectory_{first}_{last}.tif",
    "trajectory_polygons": "trajectory_{first}_{last}.gpkg",
    "trajectory_quicklook": "trajectory_{first}_{last}.png",
    "summary": "series_{first}_{last}.json",
}


def _pair_totals(p: ChangeResult) -> dict[str, Any]:
    px = p.pixels
    return {"before": p.before.provenance()["sensing_time"], "after": p.after.provenance()["sensing_time"],
            "changed_ha": p._ha(px["changed"]), "compared_ha": p._ha(px["compared"]),
            "changed_fraction": px["changed"] / px["compared"] if px["compared"] else None}


@dataclass(eq=False)
class SeriesResult:
    """What changed over a series of dates: the result of :func:`time_series`.

    Attributes:
        maps: the maps in time order, all on the first one's grid.
        pairs: the change between each date and the next.
        overall: the change from the first date to the last.
        trajectory: per pixel, changes counted over all dates and the flicker flag.
        aligned: for each map, whether it was resampled onto the first one's grid.
    """

    maps: tuple[DatedMap, ...]
    pairs: tuple[ChangeResult, ...]
    overall: ChangeResult
    trajectory: Trajectory
    aligned: tuple[bool, ...] = ()

    def __repr__(self) -> str:
        return (f"<SeriesResult {len(self.maps)} dates {_date_or_name(self.maps[0])} … {_date_or_name(self.maps[-1])}, "
                f"{len(self.pairs)} pairs>")

    @property
    def labels(self) -> list[str]:
        """Short names of the dates, used in output file names."""
        return _labels(self.maps)

    @property
    def land(self) -> tuple[LandCoverClass, ...]:
        return self.overall.land

    def trajectory_classes(self) -> tuple[LandCoverClass, ...]:
        return trajectory_classes(self.trajectory.codes)

    def trajectory_polygons(self) -> "geopandas.GeoDataFrame":
        """Patches of pixels that changed at least once and share one history.

        Returns:
            A GeoDataFrame in the maps' CRS with columns ``trajectory_code`` (the code of the
            pixels' change count and flicker flag), ``history`` (``Forest → Pasture → Forest``),
            ``first_class``, ``last_class``, ``n_changes``, ``flicker``, ``area_ha``.
        """
        import geopandas as gpd
        import rasterio.features
        import shapely

        first = self.maps[0].map
        stack = np.stack([m.map.data for m in self.maps])
        ids, histories = trajectory_histories(stack, self.trajectory.n_changes > 0, first.classes,
                                              nodata=first.nodata)
        shapes = list(rasterio.features.shapes(ids, mask=ids > 0, connectivity=4, transform=first.transform))
        geoms = [shapely.geometry.shape(g) for g, _ in shapes]
        hist = [histories[int(v) - 1] for _, v in shapes]
        n_changes = [len(hh) - 1 for hh in hist]
        flicker = [len({c.code for c in hh}) < len(hh) for hh in hist]
        columns = {
            "trajectory_code": np.array([trajectory_code(k, f) for k, f in zip(n_changes, flicker)], np.int32),
            "history": [" → ".join(c.label for c in hh) for hh in hist],
            "first_class": [hh[0].name for hh in hist],
            "last_class": [hh[-1].name for hh in hist],
            "n_changes": np.array(n_changes, np.int32),
            "flicker": np.array(flicker, bool),
            "area_ha": np.array([g.area / 10_000 for g in geoms], np.float64),
        }
        return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=first.crs.to_string()))

    def summary(self) -> dict[str, Any]:
        """Dates, each pair's totals, the first→last change, the trajectory and the flicker."""
        ha = self.overall._ha  # every map is on the first one's grid
        traj = self.trajectory
        counts = np.bincount(traj.codes.ravel(), minlength=256)
        pair_changed = sum(p.pixels["changed"] for p in self.pairs)
        overall_changed = self.overall.pixels["changed"]
        observed = int((traj.n_observed >= 2).sum())
        changed = int((traj.n_changes > 0).sum())
        flicker = int(traj.flicker.sum())
        return {
            "dates": [m.provenance() for m in self.maps],
            "aligned": list(self.aligned),
            "settings": {m.name: "; ".join(diff) for m in self.maps[1:]
                         if (diff := settings_difference(self.maps[0], m))} or "same",
            "pairs": [_pair_totals(p) for p in self.pairs],
            "first_to_last": {"changed_ha": ha(overall_changed), "compared_ha": ha(self.overall.pixels["compared"])},
            "trajectory": {
                "observed_twice_or_more_ha": ha(observed),
                "changed_at_least_once_ha": ha(changed),
                "flicker_ha": ha(flicker),
                "flicker_fraction_of_changed": flicker / changed if changed else None,
                "area_ha_by_code": {str(c.code): ha(int(counts[c.code])) for c in self.trajectory_classes()},
                "codes": {str(c.code): c.label for c in self.trajectory_classes()},
            },
            "sum_of_consecutive_changes_ha": ha(pair_changed),
            "overstatement": pair_changed / overall_changed if overall_changed else None,
            "notes": [_FLICKER_NOTE, _AREA_NOTE],
            "s2lc_version": __version__,
        }

    def _pair_prefixes(self) -> list[tuple[ChangeResult, str]]:
        labels = self.labels
        out = [(p, f"change_{labels[i]}_{labels[i + 1]}") for i, p in enumerate(self.pairs)]
        if len(self.pairs) > 1:  # with two dates, first to last is the one pair
            out.append((self.overall, f"change_{labels[0]}_{labels[-1]}"))
        return out

    def output_paths(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Where :meth:`save` writes: ``<prefix>:<kind>`` for every pair (consecutive, then
        first→last), and the series files (:data:`SERIES_FILES`)."""
        out = Path(out_dir)
        paths = {f"{prefix}:{kind}": p for result, prefix in self._pair_prefixes()
                 for kind, p in result.output_paths(out, prefix).items()}
        labels = self.labels
        paths.update({k: out / name.format(first=labels[0], last=labels[-1]) for k, name in SERIES_FILES.items()})
        return paths

    def tags(self) -> dict[str, str]:
        first = self.maps[0]
        return {
            "S2LC_DATES": json.dumps([m.provenance()["sensing_time"] for m in self.maps]),
            "S2LC_PRODUCT_IDS": json.dumps([m.product_id for m in self.maps]),
            "S2LC_MODEL": first.model or "",
            "S2LC_MODEL_SHA256": first.model_sha256 or "",
            "S2LC_ALIGNED": json.dumps(list(self.aligned)),
        }

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False, *, progress: bool = False) -> dict[str, Path]:
        """Write every pair's outputs, the first→last change, and the trajectory into ``out_dir``
        (created if needed).

        Existing outputs are refused before anything is written, unless ``overwrite``. All or
        nothing, as :meth:`ChangeResult.save`.

        Returns:
            :meth:`output_paths`.

        Raises:
            OutputError: outputs exist, or the folder cannot be created or written.
        """
        from tqdm import tqdm

        from s2lc.qgis import polygon_qml, polygon_sld

        paths = self.output_paths(writers.make_folder(out_dir))
        first = self.maps[0].map
        with writers.staged_outputs(writers.with_sidecars(paths.values()), overwrite) as stage:
            for result, prefix in tqdm(self._pair_prefixes(), desc="writing changes", unit="pair",
                                       disable=not progress):
                _write_pair(result, result.output_paths(out_dir, prefix), stage, False)
            classes = self.trajectory_classes()
            writers.write_class_map(stage(paths["trajectory"]), self.trajectory.codes, first.transform, first.crs,
                                    classes, self.tags(), nodata=NODATA, kind="change")
            gdf = self.trajectory_polygons()
            writers.write_gpkg(stage(paths["trajectory_polygons"]), gdf, "trajectory",
                               polygon_qml(classes, "trajectory_code"),
                               polygon_sld(classes, "trajectory", "trajectory_code"))
            first_label, last_label = _date_or_name(self.maps[0]), _date_or_name(self.maps[-1])
            writers.write_quicklook(stage(paths["trajectory_quicklook"]), self.trajectory.codes, classes,
                                    f"Changes {first_label} → {last_label} ({len(self.maps)} dates)", nodata=NODATA,
                                    nodata_label="Land cover at fewer than two dates")
            summary = self.summary()
            summary["outputs"] = {k: p.name for k, p in paths.items()}
            writers.write_json(stage(paths["summary"]), summary)
        return paths


def time_series(
    maps: Sequence[str | os.PathLike | DatedMap],
    *,
    align: bool = False,
    allow_model_mismatch: bool = False,
    progress: bool = False,
) -> SeriesResult:
    """What changed over a series of maps of one place, ordered by their sensing times.

    Every map is checked against the earliest (:func:`check_comparable`) and, with ``align``,
    resampled onto its grid. Then each date is compared with the next, the first with the
    last, and each pixel's changes are counted over all dates (:func:`trajectory_arrays`).

    Args:
        maps: two or more ``<id>_landcover.tif`` paths or :class:`DatedMap`, in any order.
        align: resample maps on other grids onto the earliest map's grid.
        allow_model_mismatch: accept maps from different models (with a warning).
        progress: a progress bar on stderr.

    Returns:
        A :class:`SeriesResult`; nothing is written until :meth:`SeriesResult.save`.

    Raises:
        MapError: fewer than two maps; a map that is not an s2lc classification, has no
            sensing time or shares one with another; maps that cannot be compared.
    """
    from tqdm import tqdm

    if len(maps) < 2:
        raise MapError(f"a series needs at least two maps, got {len(maps)}")
    loaded = [_as_map(m) for m in tqdm(maps, desc="reading maps", unit="map", disable=not progress)]
    ordered = order_by_time(loaded)
    ref = ordered[0]
    prepared = [(ref, False)] + [_prepare(ref, m, align, allow_model_mismatch) for m in ordered[1:]]
    series = [m for m, _ in prepared]
    aligned = tuple(flag for _, flag in prepared)
    pairs = tuple(_compare_prepared(x, y, aligned[i] or aligned[i + 1])
                  for i, (x, y) in enumerate(tqdm(list(zip(series, series[1:])), desc="comparing", unit="pair",
                                                  disable=not progress)))
    overall = pairs[0] if len(series) == 2 else _compare_prepared(series[0], series[-1], aligned[-1])
    stack = np.stack([_nodata_as(m.map, ref.map.nodata) for m in series])
    traj = trajectory_arrays(stack, ref.map.classes, nodata=ref.map.nodata)
    return SeriesResult(tuple(series), pairs, overall, traj, aligned)


def _nodata_as(m: ClassMap, nodata: int) -> np.ndarray:
    return m.data if m.nodata == nodata else np.where(m.data == m.nodata, nodata, m.data).astype(np.uint8)
