"""Writing what changed: the files of a pair of dates and of a series.

A pair (:class:`~s2lc.change.results.ChangeResult`) gives a change raster (GeoTIFF with its
legend), the transition matrix in pixels and hectares (CSV and JSON), change polygons
(GeoPackage with QGIS styles), a summary figure (PNG) and a summary (JSON); a series
(:class:`~s2lc.change.results.SeriesResult`) adds a trajectory raster, its polygons and
quicklook, and a series summary. File names are :mod:`s2lc.naming`'s.

Every file goes through :mod:`s2lc.writers`, to the temporary path that the ``stage`` of
:func:`s2lc.files.staged_outputs` gives, so that the ``save`` methods write all or nothing.
The figure and the trajectory legend's colours come from matplotlib.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from s2lc import writers
from s2lc.change.core import FIRST_TRANSITION, FLICKER, NODATA
from s2lc.change.maps import _date_or_name
from s2lc.files import atomic_path
from s2lc.legend import LandCoverClass

if TYPE_CHECKING:
    from s2lc.change.results import ChangeResult, SeriesResult

__all__ = ["trajectory_classes", "write_pair", "write_series"]


# --------------------------------------------------------------------------------------------
# Two dates


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


def _steps(items: list, progress: bool, desc: str) -> Iterator:
    from tqdm import tqdm

    return iter(tqdm(items, desc=desc, unit="file", disable=not progress, leave=False))


def write_pair(result: ChangeResult, paths: dict[str, Path], stage: Callable[[Path], Path], progress: bool) -> None:
    """Write a pair's outputs (:data:`s2lc.naming.PAIR_SUFFIXES`), each to ``stage(paths[kind])``."""
    from s2lc.qgis import polygon_qml, polygon_sld

    names = result.categories
    summary = result.summary()
    summary["outputs"] = {k: p.name for k, p in paths.items()}
    layer = "change"
    trans = [c for c in result.polygon_classes() if c.code >= FIRST_TRANSITION]
    confident = result.matrix_of("confident")
    writes = {
        "map": lambda p: writers.write_class_map(p, result.reported, result.transform, result.crs, result.classes,
                                                 result.tags(), nodata=NODATA, kind="change"),
        "matrix_pixels": lambda p: writers.write_text(p, _matrix_csv(names, confident, lambda v: str(int(v)))),
        "matrix_ha": lambda p: writers.write_text(p, _matrix_csv(names, result._ha(confident), _ha)),
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

    step = max(1, math.ceil(max(result.reported.shape) / max_size))
    b, a = result.before, result.after
    titles = [f"Before: {_date_or_name(b)}", f"After: {_date_or_name(a)}", "Change"]
    images = [_rgba(b.map.data, b.map.classes, step), _rgba(a.map.data, a.map.classes, step),
              _rgba(result.reported, result.classes, step)]
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
                 f"{px['not_compared_cloud'] * area:.4g} ha cloud or snow, {px['no_data'] * area:.4g} ha no data",
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


# --------------------------------------------------------------------------------------------
# Time series


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


def write_series(series: SeriesResult, paths: dict[str, Path], stage: Callable[[Path], Path]) -> None:
    """Write a series' trajectory raster, polygons and quicklook, and its summary
    (:data:`s2lc.naming.SERIES_FILES`), each to ``stage(paths[kind])``."""
    from s2lc.qgis import polygon_qml, polygon_sld

    first = series.maps[0].map
    classes = series.trajectory_classes()
    writers.write_class_map(stage(paths["trajectory"]), series.trajectory.codes, first.transform, first.crs,
                            classes, series.tags(), nodata=NODATA, kind="change")
    gdf = series.trajectory_polygons()
    writers.write_gpkg(stage(paths["trajectory_polygons"]), gdf, "trajectory",
                       polygon_qml(classes, "trajectory_code"),
                       polygon_sld(classes, "trajectory", "trajectory_code"))
    first_label, last_label = _date_or_name(series.maps[0]), _date_or_name(series.maps[-1])
    writers.write_quicklook(stage(paths["trajectory_quicklook"]), series.trajectory.codes, classes,
                            f"Changes {first_label} → {last_label} ({len(series.maps)} dates)", nodata=NODATA,
                            nodata_label="Land cover at fewer than two dates")
    summary = series.summary()
    summary["outputs"] = {k: p.name for k, p in paths.items()}
    writers.write_json(stage(paths["summary"]), summary)
