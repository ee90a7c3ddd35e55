"""What changed between class maps on one grid: change codes, transition matrices, trajectories.

Maps are (h, w) uint8 class codes with their legend (:class:`s2lc.legend.LandCoverClass`, the
masks included as the classes named in :data:`s2lc.legend.MASK_NAMES`: cloud, and snow or ice in
maps that have it); a series is a (t, h, w) uint8 stack, dates in
time order. Large maps are processed in strips of rows, so memory stays bounded.

Change raster codes (uint8, ``docs/change.md``):

* 0 — no data in either date (the raster's no-data value);
* 1 — unchanged;
* 2 — not compared: cloud, or snow or ice, in either date (and data in both);
* 3 and up — one code per from→to pair of land-cover classes, fixed by the legend:
  :func:`transition_code`; the raster's legend lists the transitions it holds.

Masks and no-data never count as change: they have their own rows and columns (``Cloud``,
``SnowIce``, ``NoData``) in the transition matrix and their own totals.

Trajectory raster codes (uint8): 0 for land cover at fewer than two dates, then 1 + the number
of changes, or :data:`FLICKER` + the number of changes for a pixel that returned to a class it
had left (:func:`trajectory_code`).

Pure numpy; arrays in, arrays out. Reading maps is :mod:`s2lc.change.maps`, writing and drawing
is :mod:`s2lc.change.outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from s2lc.errors import ArgumentError, ArgumentTypeError, MapError
from s2lc.legend import MASK_NAMES, LandCoverClass

if TYPE_CHECKING:
    from affine import Affine

__all__ = [
    "CLOUD_NAME",
    "FIRST_TRANSITION",
    "FLICKER",
    "MAX_CLASSES",
    "MAX_DATES",
    "NODATA",
    "NOT_COMPARED",
    "UNCHANGED",
    "Trajectory",
    "categories",
    "compare_arrays",
    "trajectory_arrays",
    "trajectory_code",
    "trajectory_histories",
    "transition_classes",
    "transition_code",
]

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
_NOT_COMPARED_CLASS = LandCoverClass(NOT_COMPARED, "NotCompared", "Not compared (cloud or snow)", (176, 196, 222))
_CHUNK_ROWS = 512
#: The matrix row and column after the land-cover classes and the masks.
NODATA_NAME = "NoData"


def _split_legend(classes: Sequence[LandCoverClass]) -> tuple[tuple[LandCoverClass, ...], tuple[LandCoverClass, ...]]:
    """(land-cover classes in code order, the masks in :data:`s2lc.legend.MASK_NAMES` order)."""
    land = tuple(sorted((c for c in classes if c.name not in MASK_NAMES), key=lambda c: c.code))
    masks = tuple(c for name in MASK_NAMES for c in classes if c.name == name)
    return land, masks


def categories(classes: Sequence[LandCoverClass]) -> list[str]:
    """Names of a transition matrix's rows and columns: land-cover classes, masks, ``NoData``."""
    land, masks = _split_legend(classes)
    return [c.name for c in (*land, *masks)] + [NODATA_NAME]


# --------------------------------------------------------------------------------------------
# Two dates


def transition_code(i: int, j: int, n: int) -> int:
    """The change raster code for the change from the i-th to the j-th of ``n`` land-cover classes.

    ``i`` and ``j`` count from 0 in code order and differ. Codes run from
    :data:`FIRST_TRANSITION`, row by row: from the first class to the second, third, …, then
    from the second class, and so on; they depend only on the legend, so one code means one
    transition in every change map of the same legend.
    """
    if i == j or not (0 <= i < n and 0 <= j < n):
        raise ArgumentError(f"need two different class indexes below {n}, got {i} and {j}")
    return FIRST_TRANSITION + i * (n - 1) + (j if j < i else j - 1)


def transition_classes(land: Sequence[LandCoverClass]) -> dict[int, tuple[LandCoverClass, LandCoverClass]]:
    """Every transition code of a legend's land-cover classes (code order) → (from, to)."""
    land = tuple(land)
    return {transition_code(i, j, len(land)): (a, b)
            for i, a in enumerate(land) for j, b in enumerate(land) if i != j}


def _transition_class(code: int, a: LandCoverClass, b: LandCoverClass) -> LandCoverClass:
    """The legend entry of a transition: coloured as what the land became."""
    return LandCoverClass(code, f"{a.name}->{b.name}", f"{a.label} → {b.label}", b.color)


def _category_lut(land: Sequence[LandCoverClass], masks: Sequence[LandCoverClass], nodata: int) -> np.ndarray:
    """Code → matrix index: land classes 0..n−1, then the masks, then no-data; anything else −1."""
    lut = np.full(256, -1, np.int16)
    for i, c in enumerate((*land, *masks)):
        lut[c.code] = i
    lut[nodata] = len(land) + len(masks)
    return lut


def _pair_code_lut(n: int, k: int) -> np.ndarray:
    """Pair index (before index × k + after index) → change raster code, for n land-cover
    classes among k categories (no-data last)."""
    lut = np.full(k * k, NOT_COMPARED, np.uint8)
    for i in range(k):
        for j in range(k):
            if i == k - 1 or j == k - 1:
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
        classes: their legend, the masks included (cloud, and snow or ice where it has it).
        nodata: the maps' no-data code.
        labels: how error messages name the two maps.

    Returns:
        ``(codes, matrix)``: codes (h, w) uint8 as in the module docstring; matrix (k, k)
        int64 pixel counts, rows the ``before`` category and columns the ``after`` one,
        categories (:func:`categories`) the n land-cover classes in code order, then the
        masks, then no-data.

    Raises:
        MapError: a code that is not in the legend; more than :data:`MAX_CLASSES` classes.
        ArgumentError: maps of different shapes.
        ArgumentTypeError: maps that are not uint8.
    """
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape or before.ndim != 2:
        raise ArgumentError(f"expected two (h, w) maps of one shape, got {before.shape} and {after.shape}")
    if before.dtype != np.uint8 or after.dtype != np.uint8:
        raise ArgumentTypeError(f"class maps are uint8, got {before.dtype} and {after.dtype}")
    land, masks = _split_legend(classes)
    n = len(land)
    if n > MAX_CLASSES:
        raise MapError(f"change maps hold at most {MAX_CLASSES} land-cover classes, got {n}")
    k = n + len(masks) + 1
    lut, code_lut = _category_lut(land, masks, nodata), _pair_code_lut(n, k)
    codes = np.empty(before.shape, np.uint8)
    matrix = np.zeros(k * k, np.int64)
    for r0 in range(0, before.shape[0], _CHUNK_ROWS):
        rows = slice(r0, r0 + _CHUNK_ROWS)
        pair = _indexes(before[rows], lut, labels[0]) * k + _indexes(after[rows], lut, labels[1])
        codes[rows] = code_lut[pair]
        matrix += np.bincount(pair.ravel(), minlength=k * k)
    return codes, matrix.reshape(k, k)


def _matrix_counts(matrix: np.ndarray, n: int) -> dict[str, int]:
    """Pixels by what a comparison could say about them, from a matrix of n land-cover classes
    (``not_compared_cloud``: cloud, or snow or ice, at either date)."""
    land = matrix[:n, :n]
    no_data = int(matrix[-1, :].sum() + matrix[:, -1].sum() - matrix[-1, -1])
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
# Time series


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
        raise ArgumentError(f"expected a (t, h, w) uint8 stack, got {stack.shape} {stack.dtype}")
    if stack.shape[0] > MAX_DATES:
        raise MapError(f"a series holds at most {MAX_DATES} dates, got {stack.shape[0]}; split it")
    land, masks = _split_legend(classes)
    if len(land) > 64:
        raise MapError(f"trajectories track at most 64 land-cover classes, got {len(land)}")
    lut = _category_lut(land, masks, nodata)
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
