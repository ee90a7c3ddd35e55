"""Web-map tiles, point values and lookup grids of the catalogue's layers, read by rio-tiler.

Tiles are 256-pixel PNGs in the Web Mercator tile matrix (``WebMercatorQuad``: the XYZ scheme
Leaflet, QGIS's XYZ layers and OpenStreetMap use). Class and change maps are read with nearest
neighbour (a code is never blended) and coloured with the map's own legend; a true-colour
preview is read bilinear. Nothing here writes a file.
"""

from __future__ import annotations

import base64
import logging
import math
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
from rasterio.errors import RasterioIOError
from rio_tiler.errors import NoOverviewWarning

from s2lc.view.catalogue import Catalogue, Layer

logger = logging.getLogger(__name__)

__all__ = ["TILE_SIZE", "ZOOM_LIMIT", "lookup_grid", "native_zooms", "point_values", "render_tile", "tiles_over", "zoom_range"]

TILE_SIZE = 256
#: Deepest zoom served: level 22 is 3.7 cm per pixel at the equator, far past any map of ours.
ZOOM_LIMIT = 22
#: Largest side, in pixels, of a lookup grid of the static site (the click there reads the grid).
GRID_MAX_SIZE = 1024
#: Lookup-grid value of a confidence without data.
NO_CONFIDENCE = 255


def _reader(layer: Layer):
    from rio_tiler.io import Reader

    return Reader(str(layer.path))


@contextmanager
def _quiet() -> Iterator[None]:
    """rio-tiler warns when a small preview has no overviews; that is expected, not news."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoOverviewWarning)
        yield


def _read_tile(layer: Layer, z: int, x: int, y: int):
    """The tile as rio-tiler's ImageData, or None where it is outside the layer."""
    from rio_tiler.errors import TileOutsideBounds

    try:
        with _quiet(), _reader(layer) as src:
            if not src.tile_exists(x, y, z):
                return None
            if layer.kind == "truecolour":
                return src.tile(x, y, z, tilesize=TILE_SIZE, indexes=(1, 2, 3), resampling_method="bilinear",
                                reproject_method="bilinear")
            return src.tile(x, y, z, tilesize=TILE_SIZE, indexes=1, resampling_method="nearest", reproject_method="nearest")
    except TileOutsideBounds:
        return None


def render_tile(layer: Layer, z: int, x: int, y: int, *, skip_empty: bool = False) -> bytes | None:
    """The PNG of tile (z, x, y) of ``layer``: class colours (RGBA, no-data transparent), or the
    true-colour preview. None where the tile does not touch the layer, and with ``skip_empty``
    also where it touches no pixel with data."""
    img = _read_tile(layer, z, x, y)
    if img is None or (skip_empty and not (img.mask > 0).any()):
        return None
    if layer.kind == "truecolour":
        return img.render(img_format="PNG")
    return img.render(img_format="PNG", colormap=layer.colormap())


def _point(path, lon: float, lat: float) -> float | None:
    """Band 1 of ``path`` at (lon, lat); None outside it, on no-data or NaN."""
    from rio_tiler.errors import PointOutsideBounds
    from rio_tiler.io import Reader

    try:
        with Reader(str(path)) as src:
            pt = src.point(lon, lat, indexes=1)
    except PointOutsideBounds:
        return None
    if not np.asarray(pt.mask).any():
        return None
    value = float(np.asarray(pt.data)[0])
    return None if math.isnan(value) else value


def _entry(layer: Layer, code: int) -> dict[str, Any]:
    found = next((e for e in layer.legend if e["code"] == code), None)
    return {"code": code, "name": found["name"] if found else None, "label": found["label"] if found else None}


def point_values(catalogue: Catalogue, lon: float, lat: float) -> dict[str, Any]:
    """What every land-cover and change layer holds at (lon, lat): ``{"lon", "lat",
    "landcover": [{"layer", "group", "date", "code", "name", "label", "confidence"}],
    "change": [{"layer", "before", "date", "code", "name", "label"}]}``, layers without data
    there (or whose file can no longer be read) left out."""
    out: dict[str, Any] = {"lon": lon, "lat": lat, "landcover": [], "change": []}
    for kind in ("landcover", "change"):
        for layer in catalogue.of_kind(kind):
            w, s, e, n = layer.bounds
            if not (w <= lon <= e and s <= lat <= n):
                continue
            try:
                code = _point(layer.path, lon, lat)
                if code is None:
                    continue
                row = {"layer": layer.id, "group": layer.group, "date": layer.date, **_entry(layer, int(code))}
                if kind == "landcover":
                    row["confidence"] = _point(layer.confidence, lon, lat) if layer.confidence else None
                else:
                    row["before"] = layer.before
            except RasterioIOError as exc:  # removed or rewritten since it was found: the others still answer
                logger.warning("%s: %s; left out of the point's answer", layer.path, exc)
                continue
            out[kind].append(row)
    return out


def native_zooms(layers: list[Layer]) -> dict[str, tuple[int, int]]:
    """Each layer's own (min, max) zoom, as rio-tiler gives it: from the level at which the layer
    fits a tile or two, to the level whose pixels are as fine as its own. Opens each file once."""
    out = {}
    for layer in layers:
        with _quiet(), _reader(layer) as src:
            out[layer.id] = (src.minzoom, src.maxzoom)
    return out


def zoom_range(layers: list[Layer], native: dict[str, tuple[int, int]] | None = None) -> tuple[int, int]:
    """(min, max) zoom from the data: from the level at which the widest layer fits a tile or
    two, to the level whose pixels are as fine as the finest layer's. ``native``: the layers'
    :func:`native_zooms`, if already read."""
    native = native_zooms(layers) if native is None else native
    lo = min((native[x.id][0] for x in layers), default=ZOOM_LIMIT)
    hi = max((native[x.id][1] for x in layers), default=0)
    return min(lo, hi), hi


def tiles_over(bounds: tuple[float, float, float, float], zooms: range) -> list[tuple[int, int, int]]:
    """(z, x, y) of every tile that touches ``bounds`` (west, south, east, north, degrees)."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    return [(t.z, t.x, t.y) for t in tms.tiles(*bounds, zooms=list(zooms))]


def lookup_grid(layer: Layer) -> dict[str, Any]:
    """The layer's codes (and a land-cover map's confidence) on a Web Mercator grid of at most
    :data:`GRID_MAX_SIZE` pixels a side, for the static site's click: ``{"bounds": [xmin,
    ymin, xmax, ymax] (EPSG:3857 metres), "width", "height", "codes": base64 uint8 row-major
    (0 no data), "confidence": base64 uint8 (0–250 = 0–1, 255 no data) or absent}``."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    merc = CRS.from_epsg(3857)
    bbox = transform_bounds("EPSG:4326", merc, *layer.bounds)
    with _quiet():
        with _reader(layer) as src:
            img = src.part(bbox, dst_crs=merc, bounds_crs=merc, indexes=1, max_size=GRID_MAX_SIZE,
                           resampling_method="nearest", reproject_method="nearest")
        codes = np.where(img.mask > 0, np.asarray(img.data[0]), 0).astype(np.uint8)
        out = {"bounds": list(img.bounds), "width": int(img.width), "height": int(img.height),
               "codes": base64.b64encode(codes.tobytes()).decode("ascii")}
        if layer.kind == "landcover" and layer.confidence is not None:
            from rio_tiler.io import Reader

            with Reader(str(layer.confidence)) as src:
                conf = src.part(bbox, dst_crs=merc, bounds_crs=merc, indexes=1, width=img.width, height=img.height,
                                resampling_method="nearest", reproject_method="nearest")
            values = np.asarray(conf.data[0], dtype=np.float32)
            ok = (conf.mask > 0) & np.isfinite(values)
            packed = np.where(ok, np.rint(np.clip(np.nan_to_num(values), 0, 1) * 250), NO_CONFIDENCE).astype(np.uint8)
            out["confidence"] = base64.b64encode(packed.tobytes()).decode("ascii")
    return out
