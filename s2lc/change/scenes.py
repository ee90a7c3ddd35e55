"""What changed between two scenes: classify both, compare, and weigh the bands themselves.

``s2lc change A B`` takes maps written by ``s2lc classify`` or scenes (a ``.SAFE`` product, its
zip, or a GeoTIFF of bands). A GeoTIFF whose ``S2LC_KIND`` tag is ``classification`` is a map;
anything else is a scene, classified here with the options of :func:`s2lc.classify.classify`.
Where both inputs are scenes, the change is also judged on spectral evidence
(:mod:`s2lc.change.evidence`): the model's bands of both dates, read strip by strip on the
maps' common grid, give each cell's change magnitude.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2lc.change.evidence import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_MAGNITUDE, CellStatistics
from s2lc.change.maps import DatedMap, _prepare, common_extent, load_map
from s2lc.change.polygons import DEFAULT_MIN_AREA_HA
from s2lc.change.results import ChangeResult, _compare_prepared, _evidence
from s2lc.errors import BandError, MapError, ProductError
from s2lc.gdal import gdal_env

if TYPE_CHECKING:
    from s2lc.classify import Classification

__all__ = ["SceneChange", "compare_scenes", "is_map"]

logger = logging.getLogger(__name__)

#: Rows of cells read at a time when measuring the spectral change (bounded memory).
_STRIP_CELLS = 16


def is_map(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a classification map written by ``s2lc classify`` (a GeoTIFF whose
    ``S2LC_KIND`` tag is ``classification``); anything else is taken for a scene."""
    import rasterio
    from rasterio.errors import RasterioError

    path = Path(path)
    if path.is_dir() or path.suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        with gdal_env(), rasterio.open(path) as src:
            return src.tags().get("S2LC_KIND") == "classification"
    except RasterioError:
        return False


@dataclass(eq=False)
class SceneChange:
    """The result of :func:`compare_scenes`: the change, and the classifications made on the way
    (None for an input that was already a map)."""

    change: ChangeResult
    classifications: tuple[Classification | None, Classification | None]


def _as_dated(c: Classification) -> DatedMap:
    from s2lc.writers import ClassMap

    tags = {**c.tags(), "S2LC_KIND": "classification"}
    return DatedMap(ClassMap(c.class_map, c.transform, c.crs, c.legend.classes, tags), c.confidence)


def _window(m: DatedMap, grid) -> Any:
    """The window of a product's grid that a (possibly cut) map of it covers."""
    from rasterio.windows import Window

    t, g = m.map.transform, grid.transform
    col, row = round((t.c - g.c) / g.a), round((t.f - g.f) / g.e)
    h, w = m.map.data.shape
    return Window(col, row, w, h)


def _magnitude(before: DatedMap, after: DatedMap, scenes: tuple[str, str], bands: list[str], cell: int,
               options: dict[str, Any]) -> np.ndarray:
    """(H, W) change magnitude per cell from the model's bands of both scenes, read in strips."""
    from rasterio.windows import Window

    from s2lc.legend import MASK_NAMES
    from s2lc.product import open_product

    land = np.zeros(256, bool)
    land[[c.code for c in before.map.classes if c.name not in MASK_NAMES]] = True
    h, w = before.map.data.shape
    stats = CellStatistics(len(bands), (-(-h // cell), -(-w // cell)), cell)
    with open_product(scenes[0], **options) as pb, open_product(scenes[1], **options) as pa:
        wb, wa = _window(before, pb.grid), _window(after, pa.grid)
        step = cell * _STRIP_CELLS
        for row in range(0, h, step):
            n = min(step, h - row)
            xb = pb.read(bands, Window(wb.col_off, wb.row_off + row, w, n))
            xa = pa.read(bands, Window(wa.col_off, wa.row_off + row, w, n))
            valid = land[before.map.data[row : row + n]] & land[after.map.data[row : row + n]]
            stats.add(row, xb, xa, valid)
    return stats.magnitude()


def compare_scenes(
    before: str | os.PathLike,
    after: str | os.PathLike,
    model: str | os.PathLike | None = None,
    *,
    min_confidence: float | None = DEFAULT_MIN_CONFIDENCE,
    min_magnitude: float | None = DEFAULT_MIN_MAGNITUDE,
    min_area_ha: float = DEFAULT_MIN_AREA_HA,
    allow_model_mismatch: bool = False,
    bands: dict[str, int] | None = None,
    clouds: str = "auto",
    progress: bool = False,
    **classify_options: Any,
) -> SceneChange:
    """What changed from ``before`` to ``after``, each a map or a scene.

    Scenes are classified with ``model`` and ``classify_options`` (``stride``, ``max_cloud``,
    ``device``, ``precision``, ``tta``, ``batch_size``: :func:`s2lc.classify.classify`). Where
    both are scenes, a confident transition without spectral change becomes a likely
    classification flip, and a cell that changed spectrally without a transition is reported
    too (:mod:`s2lc.change.evidence`).

    Args:
        before, after: ``<id>_landcover.tif`` maps, ``.SAFE`` products (folder or zip) or
            GeoTIFFs of bands.
        model: checkpoint for the scenes; the shipped model when None.
        min_confidence: as :func:`s2lc.change.compare`.
        min_magnitude: the spectral change magnitude a transition needs; None: no spectral test.
        min_area_ha: the minimum mapping unit of the change polygons.
        allow_model_mismatch: as :func:`s2lc.change.compare`.
        bands, clouds: how to open the scenes (:func:`s2lc.product.open_product`).
        progress: progress bars on stderr.

    Returns:
        A :class:`SceneChange`; nothing is written until its parts are saved.

    Raises:
        MapError: the maps cannot be compared. ProductError, ModelError: as
            :func:`s2lc.classify.classify`.
    """
    from s2lc.classify import classify

    inputs = (before, after)
    made: list[Classification | None] = []
    maps: list[DatedMap] = []
    for path in inputs:
        if is_map(path):
            made.append(None)
            maps.append(load_map(path))
        else:
            try:
                c = classify(path, model, bands=bands, clouds=clouds, progress=progress, **classify_options)
            except (ProductError, BandError) as exc:
                if Path(path).suffix.lower() not in (".tif", ".tiff"):
                    raise
                raise MapError(f"{path}: not an s2lc classification map (no S2LC_KIND tag), and not a scene "
                               f"s2lc can classify: {exc}") from exc
            made.append(c)
            maps.append(_as_dated(c))
    b, a = common_extent(maps)
    a, aligned = _prepare(b, a, False, allow_model_mismatch)
    spectral: dict[str, Any] = {}
    if all(c is not None for c in made) and min_magnitude is not None:
        stride = int(classify_options.get("stride", 64))
        model_bands = made[0].provenance["model"]["bands"]  # the bands classify read
        magnitude = _magnitude(b, a, (str(before), str(after)), model_bands, stride,
                               {"bands": bands, "clouds": "none"})
        spectral = {"min_magnitude": min_magnitude, "magnitude": magnitude, "cell": stride}
    elif min_magnitude is not None:
        logger.warning("%s: spectral evidence needs both scenes; with a map given, transitions are judged on "
                       "confidence only", " and ".join(str(p) for p, c in zip(inputs, made) if c is None))
    if b.map.data.shape != a.map.data.shape:
        raise MapError(f"{before} and {after} do not share a grid after classification; classify them on one grid")
    result = _compare_prepared(b, a, aligned, _evidence(b, a, min_confidence, **spectral))
    result.min_area_ha = min_area_ha
    return SceneChange(result, (made[0], made[1]))
