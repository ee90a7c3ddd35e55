"""Tiling: pure geometry on the product's 10 m grid; nothing here reads pixels.

Patches of ``patch`` pixels start every ``stride`` pixels from the grid's upper-left corner,
so they are aligned to the grid, and the last row and column of patches reach past the edge
(10 980 is not a multiple of 64): the reader pads them and only the part inside the grid is
kept. The map is assembled from *cells* of ``stride`` × ``stride`` pixels; with a stride
below the patch size every cell is covered by ``(patch / stride)²`` patches whose class
probabilities are averaged, which gives a finer map without seams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from rasterio.windows import Window

from s2lc.errors import ArgumentError

__all__ = ["Strip", "TileGrid"]


@dataclass(frozen=True)
class Strip:
    """A band of patch rows processed together.

    Attributes:
        first_row, n_rows: patch-row indices ``first_row .. first_row + n_rows - 1``.
        window: the pixel window to read (clipped to the grid).
        pad_bottom, pad_right: pixels to add so every patch in the strip is complete.
    """

    first_row: int
    n_rows: int
    window: Window
    pad_bottom: int
    pad_right: int


@dataclass(frozen=True)
class TileGrid:
    """Patches over a ``height`` × ``width`` pixel grid.

    Raises:
        ArgumentError: stride not a divisor of the patch size, or non-positive sizes.
    """

    height: int
    width: int
    patch: int = 64
    stride: int = 64

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ArgumentError(f"grid must be non-empty, got {self.height} x {self.width}")
        if self.stride <= 0 or self.patch % self.stride:
            raise ArgumentError(f"stride {self.stride} must divide the patch size {self.patch} (e.g. 64, 32, 16)")

    def _count(self, size: int) -> int:
        return max(1, math.ceil((size - self.patch) / self.stride) + 1)

    @property
    def rows(self) -> int:
        """Number of patch rows; the last one reaches the bottom edge."""
        return self._count(self.height)

    @property
    def cols(self) -> int:
        return self._count(self.width)

    @property
    def cells_per_patch(self) -> int:
        return self.patch // self.stride

    @property
    def cell_shape(self) -> tuple[int, int]:
        """(rows, cols) of the stride-sized cells covering the grid."""
        return math.ceil(self.height / self.stride), math.ceil(self.width / self.stride)

    def __len__(self) -> int:
        return self.rows * self.cols

    def window(self, row: int, col: int) -> Window:
        """The (unclipped) pixel window of patch (row, col)."""
        return Window(col * self.stride, row * self.stride, self.patch, self.patch)

    def windows(self) -> Iterator[tuple[int, int, Window]]:
        """Every patch as (row, col, window), row by row."""
        for r in range(self.rows):
            for c in range(self.cols):
                yield r, c, self.window(r, c)

    def strips(self, rows_per_strip: int) -> Iterator[Strip]:
        """Groups of ``rows_per_strip`` patch rows with the clipped window covering them."""
        span_w = (self.cols - 1) * self.stride + self.patch
        for first in range(0, self.rows, rows_per_strip):
            n = min(rows_per_strip, self.rows - first)
            top = first * self.stride
            span_h = (n - 1) * self.stride + self.patch
            h = min(span_h, self.height - top)
            w = min(span_w, self.width)
            yield Strip(first, n, Window(0, top, w, h), span_h - h, span_w - w)
