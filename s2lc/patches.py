"""Patch preparation, pure numpy: Sentinel-2 DN → the model's input → patch batches.

One path from pixels to patches, shared by ``s2lc classify`` (strip by strip over a scene) and
``s2lc serve`` (a whole uploaded GeoTIFF at once), so that both feed the network the same values:

1. :func:`model_input`: DN bands (NaN = no data) scaled by the model's contract to the dataset's
   stored values (uint8 where those are 8-bit, as EuroSAT's JPEGs; else float32), with the
   validity of each pixel; no-data pixels take the contract's ``nodata`` value.
2. :func:`pad_block`: a block padded to whole patches, mirrored at the edge (``symmetric``), the
   padding marked invalid.
3. :func:`cell_counts` and :func:`patch_counts`: valid (or cloud) pixels per stride cell and per
   patch, from which the callers decide which patches to label.
4. :func:`gather`: the chosen patches as one contiguous (n, bands, patch, patch) batch.

The network's own steps (÷ divisor, normalisation, resize) happen inside the model
(:func:`s2lc.inference.predict_proba`, :class:`s2lc.models.PatchClassifier`); nothing here reads
files or imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from s2lc.errors import ArgumentError

if TYPE_CHECKING:
    from s2lc.checkpoint import ModelContract
    from s2lc.tiling import TileGrid

__all__ = ["cell_counts", "gather", "input_dtype", "model_input", "pad_block", "patch_counts"]


def input_dtype(contract: "ModelContract") -> type:
    """uint8 where the contract's stored values are rounded 8-bit ones (EuroSAT RGB), else float32."""
    return np.uint8 if contract.scaling.get("round") and contract.scaling["dst_max"] <= 255 else np.float32


def model_input(
    bands: Iterable[np.ndarray], contract: "ModelContract", valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scale DN to the model's stored values.

    Args:
        bands: one (h, w) array of DN per contract band, in contract order (NaN = no data). Taken
            one at a time, so a generator keeps a single float copy of a band in memory.
        contract: the model's contract (:meth:`~s2lc.checkpoint.ModelContract.to_dst`).
        valid: (h, w) bool, pixels known to hold data (e.g. not a product's NODATA); None: all.

    Returns:
        ``(x, valid)``: (bands, h, w) in :func:`input_dtype`, no-data pixels set to the scaling's
        ``nodata``; and (h, w) bool, valid in ``valid`` and not NaN in any band.
    """
    x = None
    seen = 0
    for i, dn in enumerate(bands):
        if x is None:
            x = np.empty((len(contract.bands),) + dn.shape, input_dtype(contract))
            invalid = np.zeros(dn.shape, bool) if valid is None else ~valid
        invalid |= np.isnan(dn)
        x[i] = contract.to_dst(dn)
        seen = i + 1
    if seen != len(contract.bands):
        raise ArgumentError(f"got {seen} band(s) for a contract of {len(contract.bands)} ({', '.join(contract.bands)})")
    ok = ~invalid
    x[:, invalid] = contract.scaling["nodata"]
    return x, ok


def pad_block(x: np.ndarray, valid: np.ndarray, bottom: int, right: int) -> tuple[np.ndarray, np.ndarray]:
    """(bands, h, w) input and its (h, w) validity padded by ``bottom`` rows and ``right`` columns.

    The input is mirrored at the edge (numpy's ``symmetric``), so an edge patch sees land rather
    than a flat fill; the padding is invalid, and so not counted as the patch's pixels.
    """
    if not bottom and not right:
        return x, valid
    x = np.pad(x, ((0, 0), (0, bottom), (0, right)), mode="symmetric")
    return x, np.pad(valid, ((0, bottom), (0, right)))


def cell_counts(mask: np.ndarray, stride: int) -> np.ndarray:
    """Set pixels of a (h, w) bool mask in each ``stride`` × ``stride`` cell (h and w padded to whole
    cells with False), as an int64 (⌈h / stride⌉, ⌈w / stride⌉) array."""
    h, w = mask.shape
    hc, wc = -(-h // stride), -(-w // stride)
    if (hc * stride, wc * stride) != (h, w):
        mask = np.pad(mask, ((0, hc * stride - h), (0, wc * stride - w)))
    return mask.reshape(hc, stride, wc, stride).sum(axis=(1, 3), dtype=np.int64)


def patch_counts(cells: np.ndarray, cells_per_patch: int, rows: int, cols: int) -> np.ndarray:
    """Per-patch sums of cell counts: patch (r, c) covers cells r .. r + m - 1, c .. c + m - 1.

    Returns:
        (rows, cols) int64.
    """
    m = cells_per_patch
    out = np.zeros((rows, cols), np.int64)
    for dr in range(m):
        for dc in range(m):
            part = cells[dr : dr + rows, dc : dc + cols]
            out[: part.shape[0], : part.shape[1]] += part
    return out


def gather(x: np.ndarray, grid: "TileGrid", rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Patches (rows[i], cols[i]) of a padded block whose first patch row starts at its top row.

    Returns:
        (n, bands, patch, patch), one contiguous copy in ``x``'s dtype.
    """
    views = sliding_window_view(x, (grid.patch, grid.patch), axis=(1, 2))[:, :: grid.stride, :: grid.stride]
    return np.ascontiguousarray(views[:, rows, cols].transpose(1, 0, 2, 3))
