"""Patch probabilities onto the grid of stride cells, and cells back to pixels (pure numpy).

A patch of ``64`` pixels at stride ``s`` covers ``64 / s`` × ``64 / s`` cells of ``s`` × ``s``
pixels; each cell's class is the argmax of the mean probability of the patches that cover it,
and its confidence that mean's maximum (:mod:`s2lc.tiling`).
"""

from __future__ import annotations

import numpy as np

from s2lc.tiling import TileGrid

__all__ = ["CellRows", "Mosaic", "expand_cells"]


class Mosaic:
    """Accumulates patch probabilities on the cell grid (pure computation)."""

    def __init__(self, grid: TileGrid, n_classes: int):
        m = grid.cells_per_patch
        self.grid = grid
        shape = (grid.rows - 1 + m, grid.cols - 1 + m)
        self.prob = np.zeros(shape + (n_classes,), np.float32)
        self.count = np.zeros(shape, np.int32)
        self.valid = np.zeros(shape, np.int64)  # valid pixels per cell
        self.snowy = np.zeros(shape, bool)  # cells with more snow than cloud pixels

    def add(self, first_row: int, probs: np.ndarray, labelled: np.ndarray) -> None:
        """``probs``: (n_rows, cols, k); ``labelled``: (n_rows, cols) bool, patches given a class."""
        m = self.grid.cells_per_patch
        nr, nc = labelled.shape
        p = probs * labelled[..., None]
        for dr in range(m):
            for dc in range(m):
                self.prob[first_row + dr : first_row + dr + nr, dc : dc + nc] += p
                self.count[first_row + dr : first_row + dr + nr, dc : dc + nc] += labelled

    def finish(self, cloud_code: int, snow_code: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(cell codes uint8, cell confidence float32) over :attr:`TileGrid.cell_shape`. A cell with
        valid pixels that no labelled patch covers is ``snow_code`` where :attr:`snowy`, else
        ``cloud_code``."""
        hc, wc = self.grid.cell_shape
        prob, count, valid = self.prob[:hc, :wc], self.count[:hc, :wc], self.valid[:hc, :wc]
        codes = np.zeros((hc, wc), np.uint8)
        conf = np.full((hc, wc), np.nan, np.float32)
        has = count > 0
        mean = prob[has] / count[has][:, None]
        codes[has] = mean.argmax(1) + 1
        conf[has] = mean.max(1)
        masked = ~has & (valid > 0)
        codes[masked] = cloud_code
        if snow_code is not None:
            codes[masked & self.snowy[:hc, :wc]] = snow_code
        return codes, conf


def expand_cells(cells: np.ndarray, s: int, h: int, w: int) -> np.ndarray:
    """A (h, w) array from cells of s × s pixels (cropped at the far edges)."""
    out = np.empty((h, w), cells.dtype)
    for r in range(min(cells.shape[0], -(-h // s))):
        rows = out[r * s : (r + 1) * s]
        if rows.size:
            rows[:] = np.repeat(cells[r], s)[:w]
    return out


class CellRows:
    """Rows of a cell raster expanded to the pixel grid on request, NaN where the map has no
    data: a :class:`s2lc.writers.RowSource`, so a whole tile's confidence (480 MB as float32)
    is never held at once."""

    ndim = 2

    def __init__(self, cells: np.ndarray, stride: int, class_map: np.ndarray):
        self.cells, self.stride, self.class_map = cells, stride, class_map
        self.shape = class_map.shape
        self.dtype = cells.dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        r0, r1, step = rows.indices(self.shape[0])
        if step != 1:
            raise IndexError("only contiguous row slices")
        s = self.stride
        c0 = r0 // s
        block = expand_cells(self.cells[c0:], s, r1 - c0 * s, self.shape[1])[r0 - c0 * s :]
        block[self.class_map[r0:r1] == 0] = np.nan
        return block
