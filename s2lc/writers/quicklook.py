"""PNG quicklooks of class maps: the map with a legend of its classes, and the scene beside it."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from s2lc.errors import ArgumentError
from s2lc.files import atomic_path, check_outputs
from s2lc.legend import LandCoverClass
from s2lc.writers.rasters import _code_counts

logger = logging.getLogger(__name__)

_NODATA_HATCH = "////"
_DPI = 100

#: Largest side of a quicklook's map, in pixels.
QUICKLOOK_MAX_SIZE = 1024


def quicklook_step(shape: tuple[int, int], max_size: int = QUICKLOOK_MAX_SIZE) -> int:
    """The integer step a quicklook decimates a map of ``shape`` by, so its larger side is at most ``max_size``."""
    return max(1, math.ceil(max(shape) / max_size))


def true_colour_preview(rgb: np.ndarray, low: float = 2.0, high: float = 98.0, *, alpha: bool = False) -> np.ndarray:
    """(h, w, 3) uint8 for display from (3, h, w) red, green and blue values (NaN: no data, white):
    each band stretched linearly between its ``low`` and ``high`` percentiles of the valid
    pixels, as QGIS's default cumulative count cut does. With ``alpha``, (h, w, 4): a fourth
    band 255 where all three have data, else 0."""
    rgb = np.asarray(rgb, dtype=np.float32)
    out = np.full((*rgb.shape[1:], 4 if alpha else 3), 255, np.uint8)
    valid = np.isfinite(rgb).all(axis=0)
    if alpha:
        out[..., 3] = np.where(valid, 255, 0)
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
    fig = _figure(lut[data[::step, ::step]], _legend_handles(classes, counts, nodata, nodata_label), title, true_colour)
    with atomic_path(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
    logger.info("wrote quicklook %s", path)
    return path


def _legend_handles(classes: Sequence[LandCoverClass], counts: np.ndarray, nodata: int, nodata_label: str) -> list:
    """Legend entries of the classes present (``counts`` per code), then hatched no-data if any."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=np.array(c.color) / 255, edgecolor="0.4", label=c.label)
               for c in sorted(classes, key=lambda c: c.code) if counts[c.code]]
    if counts[nodata]:
        handles.append(Patch(facecolor="white", edgecolor="0.6", hatch=_NODATA_HATCH, label=nodata_label))
    return handles


def _figure(rgba: np.ndarray, handles: list, title: str, true_colour: np.ndarray | None):
    """The quicklook's figure, one image pixel per figure pixel: the title above, then the scene
    (when given), the map and the legend side by side, in inches laid out here."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    pad, title_h = 0.15, 0.45
    legend_w = 2.8  # long labels (a series' trajectories) widen it, a long title the figure
    if handles:
        legend_w = max(legend_w, _inches_wide(_DPI, lambda f: f.legend(handles=handles, frameon=False, fontsize=9)) + pad)
    title_w = _inches_wide(_DPI, lambda f: f.text(0, 0, title, fontsize=12)) + 2 * pad
    img_h, img_w = rgba.shape[0] / _DPI, rgba.shape[1] / _DPI
    scene_w = 0.0 if true_colour is None else img_w + pad  # the scene's panel, left of the map
    body_h = max(img_h, 0.22 * len(handles) + 0.3)
    fig_w, fig_h = max(scene_w + img_w + legend_w + 3 * pad, title_w), body_h + title_h + 2 * pad
    fig = Figure(figsize=(fig_w, fig_h), dpi=_DPI, facecolor="white")

    def panel(left: float):
        ax = fig.add_axes((left / fig_w, (pad + body_h - img_h) / fig_h, img_w / fig_w, img_h / fig_h))
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor("0.6")
        return ax

    if true_colour is not None:
        panel(pad).imshow(true_colour, interpolation="bilinear",
                          extent=(-0.5, rgba.shape[1] - 0.5, rgba.shape[0] - 0.5, -0.5))
    ax = panel(pad + scene_w)
    ax.add_patch(Rectangle((-0.5, -0.5), rgba.shape[1], rgba.shape[0], facecolor="white", edgecolor="0.6",
                           hatch=_NODATA_HATCH, linewidth=0, zorder=0))  # shows through no-data (alpha 0)
    ax.imshow(rgba, interpolation="nearest", zorder=1)
    fig.text(pad / fig_w, 1 - pad / fig_h, title, ha="left", va="top", fontsize=12)
    legend_at = ((2 * pad + scene_w + img_w) / fig_w, (pad + body_h) / fig_h)
    if handles:
        fig.legend(handles=handles, loc="upper left", frameon=False, fontsize=9, bbox_to_anchor=legend_at)
    else:
        fig.text(*legend_at, "no data", va="top", fontsize=9)
    return fig
