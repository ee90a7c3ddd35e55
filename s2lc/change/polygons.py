"""The change polygons of a pair of dates: each 4-connected run of pixels of one transition and
one status (change, uncertain, flip) or of one class that changed spectrally, down to a minimum
mapping unit.

Statuses are those of :mod:`s2lc.change.evidence`; the polygons come from
:func:`s2lc.writers.polygons`, one status at a time, so that a polygon never mixes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from s2lc import writers
from s2lc.change.core import FIRST_TRANSITION, NODATA, _transition_class, transition_classes
from s2lc.change.evidence import FLIP, SPECTRAL, UNCERTAIN

if TYPE_CHECKING:
    import geopandas

    from s2lc.change.results import ChangeResult

__all__ = ["DEFAULT_MIN_AREA_HA", "STATUS_NAMES", "pair_polygons"]

#: Default minimum mapping unit of change polygons, hectares: 100 pixels of 10 m.
DEFAULT_MIN_AREA_HA = 1.0
#: The ``status`` column's values, by change raster code.
STATUS_NAMES = {UNCERTAIN: "uncertain", FLIP: "flip", SPECTRAL: "spectral"}


def _confidences(result: ChangeResult, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    nan = None
    out = {}
    for key, m in (("confidence_before", result.before), ("confidence_after", result.after)):
        if m.confidence is None:
            nan = np.full(shape, np.nan, np.float32) if nan is None else nan
        out[key] = m.confidence if m.confidence is not None else nan
    return out


def pair_polygons(result: ChangeResult, min_area_ha: float = DEFAULT_MIN_AREA_HA) -> geopandas.GeoDataFrame:
    """Polygons of :attr:`ChangeResult.reported`, those under ``min_area_ha`` left out.

    Returns:
        A GeoDataFrame in the maps' CRS with columns ``status`` (``change``, ``uncertain``,
        ``flip`` or ``spectral``), ``change_code`` (the change raster's code: the transition, or
        the status code), ``change`` (``Forest->Residential``, or the status name),
        ``transition_code``, ``from_code``, ``from_class``, ``to_code``, ``to_class`` (for a
        spectral change, the class at both dates), ``area_ha``, ``confidence_before``,
        ``confidence_after`` (the mean of each date's confidence under the polygon, NaN without
        it) and ``magnitude`` (the mean spectral change magnitude, NaN without spectral evidence).
    """
    import geopandas as gpd
    import pandas as pd

    codes, reported = result.codes, result.reported
    pairs = transition_classes(result.land)
    columns = _confidences(result, codes.shape)
    magnitude = result.evidence.magnitude_pixels(codes.shape) if result.evidence is not None else None
    columns["magnitude"] = magnitude if magnitude is not None else np.full(codes.shape, np.nan, np.float32)
    from_to = {
        "from_code": {c: a.code for c, (a, _) in pairs.items()}, "from_class": {c: a.name for c, (a, _) in pairs.items()},
        "to_code": {c: b.code for c, (_, b) in pairs.items()}, "to_class": {c: b.name for c, (_, b) in pairs.items()},
    }
    transitions = [_transition_class(code, a, b) for code, (a, b) in pairs.items()]
    frames = []
    for status, data in (("change", np.where((reported >= FIRST_TRANSITION) & (reported < SPECTRAL), reported, NODATA)),
                         ("uncertain", np.where(reported == UNCERTAIN, codes, NODATA)),
                         ("flip", np.where(reported == FLIP, codes, NODATA))):
        if not data.any():
            continue
        gdf = writers.polygons(data.astype(np.uint8), result.transform, result.crs, transitions, confidence=columns,
                               extra_codes=from_to, nodata=NODATA)
        gdf = gdf.rename(columns={"class_code": "transition_code", "class_name": "change"})
        gdf.insert(0, "status", status)
        code = {"change": None, "uncertain": UNCERTAIN, "flip": FLIP}[status]
        gdf.insert(1, "change_code", gdf["transition_code"] if code is None else np.int32(code))
        if code is not None:
            gdf["change"] = STATUS_NAMES[code]
        frames.append(gdf)
    spectral = reported == SPECTRAL
    if spectral.any():
        data = np.where(spectral, result.before.map.data, NODATA).astype(np.uint8)
        same = {c.code: c for c in result.land}
        extra = {"from_code": {k: k for k in same}, "from_class": {k: c.name for k, c in same.items()},
                 "to_code": {k: k for k in same}, "to_class": {k: c.name for k, c in same.items()}}
        gdf = writers.polygons(data, result.transform, result.crs, result.land, confidence=columns, extra_codes=extra,
                               nodata=NODATA)
        gdf = gdf.drop(columns=["class_code"]).assign(change=STATUS_NAMES[SPECTRAL])
        gdf.insert(0, "status", "spectral")
        gdf.insert(1, "change_code", np.int32(SPECTRAL))
        gdf.insert(3, "transition_code", pd.array([None] * len(gdf), dtype="Int32"))
        frames.append(gdf.drop(columns=["class_name"]) if "class_name" in gdf else gdf)
    order = ["status", "change_code", "change", "transition_code", "from_code", "from_class", "to_code", "to_class",
             "area_ha", "confidence_before", "confidence_after", "magnitude", "geometry"]
    if not frames:
        empty = {k: pd.Series(dtype="object") for k in order[:-1]}
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=result.crs))
    gdf = pd.concat(frames, ignore_index=True)[order]
    gdf["transition_code"] = gdf["transition_code"].astype("Int32")
    return gpd.GeoDataFrame(gdf[gdf["area_ha"] >= min_area_ha].reset_index(drop=True), geometry="geometry",
                            crs=frames[0].crs)
