"""Upsampling coarse rasters onto a grid an integer factor finer: cubic for reflectance, nearest for classes.

Pure numpy; arrays in, arrays out.

**Geometry.** The fine grid and the coarse raster share their upper-left corner (true of every
Sentinel-2 band of a tile). Fine pixel ``i`` covers coarse pixel-index coordinates ``[i/f, (i+1)/f)``,
so it lies wholly inside coarse pixel ``i // f`` (nearest neighbour), and its centre sits at
``u = (i + 0.5) / f - 0.5`` in coordinates where coarse pixel ``j`` is centred on ``j``.

**Cubic.** Separable Keys (1981) cubic convolution with ``a = -0.5`` (GDAL's and OpenCV's "cubic"):
four taps ``floor(u) - 1 … floor(u) + 2`` per axis, clamped at the raster edge (edge pixels repeat).
It reproduces polynomials up to degree 2 exactly away from the edges.

**No data.** Invalid coarse pixels never enter the kernel as values: before interpolation each
one within two pixels of valid data is filled with the mean of its valid 3x3 neighbours
(:data:`FILL_ITERATIONS` passes), and after interpolation every fine pixel whose coarse pixel is
invalid is set to NaN. A valid fine pixel therefore always comes out finite, and a no-data value
(0) never bleeds into it.

**Windows.** Every output pixel depends only on coarse pixels within a fixed reach of it, computed
in the same order whatever the window, so upsampling the coarse window given by
:func:`source_window` and cropping gives exactly (bit for bit) the same values as upsampling the
whole raster.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rasterio.windows import Window

from s2lc.errors import ArgumentError

__all__ = [
    "FILL_ITERATIONS",
    "KEYS_A",
    "UPSAMPLERS",
    "cell_index",
    "fill_invalid",
    "keys_weights",
    "source_window",
    "upsample_cubic",
    "upsample_nearest",
]

#: Keys' free parameter; -0.5 makes the kernel third-order accurate.
KEYS_A = -0.5
#: Passes of the no-data fill; the cubic taps reach two coarse pixels, so two suffice.
FILL_ITERATIONS = 2


def keys_weights(t: np.ndarray, a: float = KEYS_A) -> np.ndarray:
    """Keys cubic weights of the four taps at offsets -1, 0, 1, 2 from ``floor(u)``.

    Args:
        t: (n,) fractional positions ``u - floor(u)`` in [0, 1).

    Returns:
        (n, 4) float64 weights, each row summing to 1.
    """
    t = np.asarray(t, dtype=np.float64)
    d = np.stack([t + 1.0, t, 1.0 - t, 2.0 - t], axis=-1)  # distances to the taps
    near = (a + 2.0) * d**3 - (a + 3.0) * d**2 + 1.0
    far = a * d**3 - 5.0 * a * d**2 + 8.0 * a * d - 4.0 * a
    return np.where(d <= 1.0, near, np.where(d < 2.0, far, 0.0))


def _cubic_taps(start: int, stop: int, factor: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Tap indices (n, 4), clamped to ``[0, size)``, and float32 weights (n, 4) of fine pixels
    ``start … stop - 1``. Integer arithmetic: ``u = (2i + 1 - f) / 2f``."""
    numerator = 2 * np.arange(start, stop, dtype=np.int64) + 1 - factor
    base = numerator // (2 * factor)
    t = (numerator - base * 2 * factor) / (2.0 * factor)
    index = np.clip(base[:, None] + np.arange(-1, 3), 0, size - 1)
    return index, keys_weights(t).astype(np.float32)


def _span_cubic(start: int, stop: int, factor: int, size: int) -> tuple[int, int]:
    first = (2 * start + 1 - factor) // (2 * factor) - 1
    last = (2 * (stop - 1) + 1 - factor) // (2 * factor) + 2
    first = max(0, min(first, size - 1) - FILL_ITERATIONS)
    last = min(size - 1, max(last, 0) + FILL_ITERATIONS)
    return first, last + 1


def _span_nearest(start: int, stop: int, factor: int, size: int) -> tuple[int, int]:
    return start // factor, min(size, (stop - 1) // factor + 1)


_SPANS: dict[str, Callable[[int, int, int, int], tuple[int, int]]] = {"cubic": _span_cubic, "nearest": _span_nearest}


def source_window(window: Window, factor: int, coarse_shape: tuple[int, int], method: str = "cubic") -> Window:
    """The window of the coarse raster that upsampling needs to compute ``window`` of the fine grid.

    Args:
        window: integer window of the fine grid.
        factor: fine pixels per coarse pixel along each axis (2 for 20 m -> 10 m).
        coarse_shape: (rows, cols) of the whole coarse raster.
        method: a key of :data:`UPSAMPLERS`.

    Returns:
        An integer window inside the coarse raster.
    """
    span = _SPANS[method]
    r0, r1 = span(int(window.row_off), int(window.row_off + window.height), factor, coarse_shape[0])
    c0, c1 = span(int(window.col_off), int(window.col_off + window.width), factor, coarse_shape[1])
    return Window(c0, r0, c1 - c0, r1 - r0)


def cell_index(start: int, stop: int, size: int, cells: int) -> np.ndarray:
    """Which of ``cells`` equal cells spanning ``size`` pixels holds each pixel ``start … stop-1``
    (by the pixel's centre): the mapping between a grid and a coarser one whose cells need not
    be a whole number of pixels, as GDAL's averaging onto ``out_shape`` uses."""
    return ((np.arange(start, stop) + 0.5) * cells / size).astype(np.intp)


def fill_invalid(data: np.ndarray, valid: np.ndarray, iterations: int = FILL_ITERATIONS) -> np.ndarray:
    """Replace invalid pixels near valid ones by the mean of their valid 3x3 neighbours, repeatedly.

    Args:
        data: (h, w) float32.
        valid: (h, w) bool, True where ``data`` holds a measurement.
        iterations: passes; after ``k`` passes every invalid pixel within ``k`` pixels (chessboard
            distance) of a valid one holds a value.

    Returns:
        (h, w) float32 copy; pixels still unfilled hold 0 (they only feed outputs that are masked).
    """
    out = np.where(valid, data, 0.0).astype(np.float32)
    known = valid.copy()
    h, w = out.shape
    for _ in range(iterations):
        if known.all():
            break
        weight = known.astype(np.float32)
        value = np.pad(out * weight, 1)
        count = np.pad(weight, 1)
        total = np.zeros((h, w), np.float32)
        n = np.zeros((h, w), np.float32)
        for dr in range(3):
            for dc in range(3):
                total += value[dr : dr + h, dc : dc + w]
                n += count[dr : dr + h, dc : dc + w]
        grow = ~known & (n > 0)
        out[grow] = total[grow] / n[grow]
        known |= grow
    return out


def _local(index: np.ndarray, offset: int, size: int, axis: str) -> np.ndarray:
    local = index - offset
    if local.size and (local.min() < 0 or local.max() >= size):
        raise ArgumentError(f"the coarse data do not cover the {axis} the window needs; read source_window() of it")
    return local


def upsample_nearest(
    data: np.ndarray, factor: int, *, data_window: Window, window: Window, coarse_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Nearest-neighbour upsampling (each coarse pixel becomes ``factor x factor`` fine pixels).

    Args:
        data: (..., hc, wc) any dtype, the coarse pixels of ``data_window``.
        factor: fine pixels per coarse pixel.
        data_window: where ``data`` lies in the coarse raster.
        window: the fine-grid window wanted.
        coarse_shape: unused; accepted so that all :data:`UPSAMPLERS` share one signature.

    Returns:
        (..., window.height, window.width), the dtype of ``data``.
    """
    rows = np.arange(int(window.row_off), int(window.row_off + window.height)) // factor
    cols = np.arange(int(window.col_off), int(window.col_off + window.width)) // factor
    rows = _local(rows, int(data_window.row_off), data.shape[-2], "rows")
    cols = _local(cols, int(data_window.col_off), data.shape[-1], "columns")
    return data[..., rows[:, None], cols[None, :]]


def upsample_cubic(
    data: np.ndarray,
    factor: int,
    *,
    data_window: Window,
    window: Window,
    coarse_shape: tuple[int, int],
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """No-data-aware Keys cubic upsampling.

    Args:
        data: (hc, wc) coarse values of ``data_window``, any numeric dtype.
        factor: fine pixels per coarse pixel.
        data_window: where ``data`` lies in the coarse raster; must contain
            ``source_window(window, factor, coarse_shape)``.
        window: the fine-grid window wanted.
        coarse_shape: (rows, cols) of the whole coarse raster (for the edge clamp).
        valid: (hc, wc) bool, False where ``data`` holds no data; None if all valid.

    Returns:
        (window.height, window.width) float32; NaN where the coarse pixel is invalid.

    Raises:
        ArgumentError: ``data`` does not cover what the window needs.
    """
    values = np.asarray(data, dtype=np.float32)
    if valid is not None:
        values = fill_invalid(values, valid)
    rows, row_w = _cubic_taps(int(window.row_off), int(window.row_off + window.height), factor, coarse_shape[0])
    cols, col_w = _cubic_taps(int(window.col_off), int(window.col_off + window.width), factor, coarse_shape[1])
    rows = _local(rows, int(data_window.row_off), values.shape[0], "rows")
    cols = _local(cols, int(data_window.col_off), values.shape[1], "columns")
    across = row_w[:, 0, None] * values[rows[:, 0], :]
    for k in range(1, 4):
        across = across + row_w[:, k, None] * values[rows[:, k], :]
    out = col_w[None, :, 0] * across[:, cols[:, 0]]
    for k in range(1, 4):
        out = out + col_w[None, :, k] * across[:, cols[:, k]]
    if valid is not None:
        invalid = ~upsample_nearest(valid, factor, data_window=data_window, window=window)
        out[invalid] = np.nan
    return out


#: Upsampling methods by name: cubic for reflectance, nearest for classes and masks.
UPSAMPLERS: dict[str, Callable[..., np.ndarray]] = {"cubic": upsample_cubic, "nearest": upsample_nearest}
