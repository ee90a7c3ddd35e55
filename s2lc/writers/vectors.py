"""Polygons of a class map, and GeoPackage layers that QGIS opens with their default style."""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import rasterio
import rasterio.features
from affine import Affine
from rasterio.crs import CRS

from s2lc import __version__
from s2lc.errors import ArgumentError, MapError, OutputError
from s2lc.files import atomic_path
from s2lc.legend import LandCoverClass
from s2lc.writers.rasters import _COUNT_ROWS, _check_grid, _code_counts

if TYPE_CHECKING:
    import geopandas

logger = logging.getLogger(__name__)

#: GeoPackage 1.2: QGIS 3.22 LTR (GDAL 3.6) warns on 1.4 files, which GDAL ≥ 3.11 writes by default.
_GPKG_VERSION = "1.2"
#: QGIS's own schema for the table that holds layer styles (QgsOgrProviderMetadata::saveStyle).
_LAYER_STYLES_SQL = """CREATE TABLE layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  f_table_catalog TEXT(256),
  f_table_schema TEXT(256),
  f_table_name TEXT(256),
  f_geometry_column TEXT(256),
  styleName TEXT(30),
  styleQML TEXT,
  styleSLD TEXT,
  useAsDefault BOOLEAN,
  description TEXT,
  owner TEXT(30),
  ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)"""


def polygons(
    data: np.ndarray,
    transform: Affine,
    crs: Any,
    classes: Sequence[LandCoverClass],
    confidence: np.ndarray | Mapping[str, np.ndarray] | None = None,
    extra_codes: Mapping[str, Mapping[int, Any]] | None = None,
    *,
    nodata: int = 0,
    bounds: tuple[float, float, float, float] | None = None,
) -> "geopandas.GeoDataFrame":
    """Polygons of a class map: each a 4-connected run of pixels of one code, no-data left out.

    Cost and memory grow with the pixel count (the polygon ids are burnt back into an int32
    image to average confidence). For a map predicted patch by patch, pass the map at patch
    resolution — one pixel per patch, ``transform @ Affine.scale(patch)`` — where a full tile is
    172 × 172 pixels instead of 10980 × 10980, and ``bounds`` to clip the last, partial row and
    column of patches to the scene.

    Args:
        data: (h, w) uint8 class codes.
        transform: the map's affine transform.
        crs: a projected CRS in metres (areas are in hectares).
        classes: the legend; every code in ``data`` other than ``nodata`` must be in it.
        confidence: (h, w) float arrays on the same grid, NaN for no data: one array gives a
            ``mean_confidence`` column; a mapping gives one column per key (e.g.
            ``{"confidence_before": a, "confidence_after": b}``). Means ignore NaN; a polygon
            with no valid value gets NaN.
        extra_codes: more columns derived from the polygon's code: column name → {code: value}
            (e.g. ``{"from_class": {12: "Forest", ...}}`` for change maps); codes missing from a
            mapping get None.
        nodata: the code that is not polygonised.
        bounds: (minx, miny, maxx, maxy) in CRS units to clip the polygons to; areas are of the
            clipped polygons.

    Returns:
        A GeoDataFrame in ``crs`` with columns ``class_code`` (int32), ``class_name``, the
        ``extra_codes`` columns, ``area_ha`` (float64, m² / 10 000), the confidence columns and
        ``geometry`` (Polygon, or MultiPolygon where clipping splits one), in raster scan order.

    Raises:
        MapError: codes missing from the legend; a CRS that is not projected in metres.
        ArgumentError: arrays of different shapes.
    """
    import geopandas as gpd
    import shapely

    data = np.asarray(data)
    _check_grid(data, transform, crs)
    crs = CRS.from_user_input(crs)
    if not crs.is_projected or (crs.linear_units or "").lower() not in ("metre", "meter"):
        raise MapError(f"polygon areas need a projected CRS in metres, got {crs.to_string()}; reproject the map")
    _code_counts(data, classes, nodata)
    if isinstance(confidence, np.ndarray):
        confidence = {"mean_confidence": confidence}
    confidence = dict(confidence or {})
    for name, values in confidence.items():
        if np.shape(values) != data.shape:
            raise ArgumentError(f"{name} has shape {np.shape(values)}, the map {data.shape}")

    shapes = list(rasterio.features.shapes(data, mask=data != nodata, connectivity=4, transform=transform))
    geoms = np.array([shapely.geometry.shape(g) for g, _ in shapes], dtype=object)
    codes = np.array([int(v) for _, v in shapes], dtype=np.int32)
    means = {name: _zonal_means(values, geoms, transform) for name, values in confidence.items()}
    if bounds is not None and len(geoms):
        geoms = shapely.intersection(geoms, shapely.box(*bounds))
        keep = ~shapely.is_empty(geoms)
        geoms, codes = geoms[keep], codes[keep]
        means = {name: m[keep] for name, m in means.items()}

    names = {c.code: c.name for c in classes}
    columns: dict[str, Any] = {"class_code": codes, "class_name": [names[c] for c in codes.tolist()]}
    for name, lookup in (extra_codes or {}).items():
        columns[name] = [lookup.get(c) for c in codes.tolist()]
    columns["area_ha"] = shapely.area(geoms) / 10_000 if len(geoms) else np.zeros(0)
    columns.update(means)
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(list(geoms), crs=crs.to_string()))


def _zonal_means(values: np.ndarray, geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """NaN-aware mean of ``values`` under each polygon (which must follow pixel edges)."""
    if not len(geoms):
        return np.zeros(0)
    values = np.asarray(values)
    ids = rasterio.features.rasterize(zip(geoms, range(1, len(geoms) + 1)), out_shape=values.shape,
                                      transform=transform, fill=0, dtype="int32")
    sums, counts = np.zeros(len(geoms) + 1), np.zeros(len(geoms) + 1)
    for start in range(0, ids.shape[0], _COUNT_ROWS):  # by strips: no float64 copy of the whole map
        v, i = values[start:start + _COUNT_ROWS], ids[start:start + _COUNT_ROWS]
        ok = ~np.isnan(v)
        sums += np.bincount(i[ok], weights=v[ok], minlength=len(geoms) + 1)
        counts += np.bincount(i[ok], minlength=len(geoms) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts)[1:]  # id 0 is outside every polygon


def write_gpkg(
    path: str | os.PathLike,
    gdf: "geopandas.GeoDataFrame",
    layer: str,
    style_qml: str,
    style_sld: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write polygons as a GeoPackage 1.2 layer whose default QGIS style is ``style_qml``.

    The layer is MultiPolygon (polygons are promoted), written by pyogrio with ``VERSION=1.2``.
    The style goes into a ``layer_styles`` table with QGIS's schema, registered in
    ``gpkg_contents`` as attributes, in a row marked ``useAsDefault`` for this layer: QGIS
    applies it when the layer is opened.

    Args:
        path: the ``.gpkg`` to write.
        gdf: polygons with a CRS, e.g. from :func:`polygons`.
        layer: the layer name.
        style_qml: QGIS style text (:func:`s2lc.qgis.polygon_qml`).
        style_sld: the same style as SLD (:func:`s2lc.qgis.polygon_sld`), optional.
        overwrite: replace an existing file.

    Returns:
        ``path``.

    Raises:
        OutputError: as :func:`atomic_path`.
        ArgumentError: geometries that are not polygons.
    """
    import pyogrio

    path = Path(path)
    kinds = set(gdf.geom_type.dropna()) - {"Polygon", "MultiPolygon"}
    if kinds:
        raise ArgumentError(f"write_gpkg writes polygon layers; got {sorted(kinds)}")
    with atomic_path(path, overwrite) as tmp:
        pyogrio.write_dataframe(gdf, tmp, layer=layer, driver="GPKG", geometry_type="MultiPolygon",
                                promote_to_multi=True, dataset_options={"VERSION": _GPKG_VERSION})
        _add_default_style(tmp, layer, style_qml, style_sld)
    logger.info("wrote %s (layer %s)", path, layer)
    return path


def _add_default_style(path: Path, layer: str, qml: str, sld: str | None) -> None:
    with closing(sqlite3.connect(path)) as con, con:
        row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
        if row is None:
            raise OutputError(f"{path}: layer {layer} was not written")
        con.execute(_LAYER_STYLES_SQL)
        con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                    "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS layer styles')")
        con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                    "styleName, styleQML, styleSLD, useAsDefault, description, owner) "
                    "VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '')",
                    (layer, row[0], layer, qml, sld or "", f"written by s2lc {__version__}"))


