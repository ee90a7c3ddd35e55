"""Is an input fit for a model? One check for ``s2lc classify`` and ``s2lc serve``.

A model learnt its classes from Sentinel-2 DN on the 10 m grid (EuroSAT). Two kinds of input fall
outside that, and both paths say so before any inference:

* **pixels far from the band's own size** (more than :data:`RESOLUTION_TOLERANCE` either way):
  coarser pixels make blurred patches, finer ones patches of a smaller piece of land;
* **8-bit bands**: Sentinel-2 DN need 16 bits, so 8-bit data are a stretched display product
  (a screenshot, a "visual" export), not reflectance.

``classify`` warns of each; ``serve`` refuses 8-bit GeoTIFFs and returns the other notes with
the prediction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from affine import Affine
from rasterio.crs import CRS

from s2lc.sentinel2 import band

__all__ = ["RESOLUTION_TOLERANCE", "Note", "check_input", "in_ground_metres", "pixel_size_m", "utm_bounds", "utm_crs"]

#: How far a pixel size may be from the band's own (as a ratio) before a note: 25 %.
RESOLUTION_TOLERANCE = 1.25
_EIGHT_BIT = ("uint8", "int8")


@dataclass(frozen=True)
class Note:
    """One way an input differs from what the model saw: ``kind`` is ``"resolution"`` or ``"8-bit"``."""

    kind: str
    text: str


def in_ground_metres(crs: Any) -> bool:
    """Whether a CRS is projected in metres that are metres on the ground: not degrees or feet, nor
    a Mercator projection (Web Mercator's metres are 1.7 ground metres at 54° N)."""
    crs = CRS.from_user_input(crs)
    if not crs.is_projected or (crs.linear_units or "").lower() not in ("metre", "meter", "m"):
        return False
    import pyproj

    operation = pyproj.CRS.from_wkt(crs.to_wkt()).coordinate_operation
    method = (operation.method_name if operation is not None else "").lower()
    return not ("mercator" in method and "transverse" not in method)


def pixel_size_m(crs: Any, transform: Affine, width: int, height: int) -> float | None:
    """A grid's pixel size in metres on the ground: the transform's in a CRS projected in ground
    metres (:func:`in_ground_metres`); otherwise (degrees, Mercator) the square root of its area in
    the local UTM zone (:func:`utm_bounds`) over its pixel count. None without a CRS."""
    if crs is None:
        return None
    if in_ground_metres(crs):
        return abs(transform.a)
    _, (x0, y0, x1, y1) = utm_bounds(crs, transform, width, height)
    return math.sqrt((x1 - x0) * (y1 - y0) / (width * height))


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone of a point (EPSG:326xx north of the equator, 327xx south)."""
    lon = (lon + 180) % 360 - 180  # longitudes given as 0–360 too
    zone = min(int((lon + 180) // 6) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def utm_bounds(crs: Any, transform: Affine, width: int, height: int) -> tuple[CRS, tuple[float, float, float, float]]:
    """The UTM zone of a north-up grid's centre (:func:`utm_crs`), and the grid's bounds (left,
    bottom, right, top) in it, edges densified."""
    from rasterio.warp import transform as transform_points
    from rasterio.warp import transform_bounds

    left, top = transform.c, transform.f
    right, bottom = left + width * transform.a, top + height * transform.e
    (lon,), (lat,) = transform_points(crs, "EPSG:4326", [(left + right) / 2], [(bottom + top) / 2])
    utm = utm_crs(lon, lat)
    return utm, transform_bounds(crs, utm, min(left, right), min(bottom, top), max(left, right), max(bottom, top),
                                 densify_pts=21)


def check_input(bands: Sequence[str], pixel_size: Mapping[str, float | None], dtypes: Mapping[str, str],
                model: str, *, finer: bool = True) -> list[Note]:
    """Notes on how ``bands`` of an input differ from what ``model`` (its name, for the text) saw.

    A band is too coarse when its pixels are more than :data:`RESOLUTION_TOLERANCE` times its own
    resolution (B04 at 60 m, B11 at 60 m); too fine when they are that much finer than the
    model's finest band (the grid every band is read onto: B11 at 10 m in a 10 m export is fine).

    Args:
        bands: the model's band ids, e.g. ``("B04", "B03", "B02")``.
        pixel_size: band -> pixel size in metres of the data read (None: unknown, no note).
        dtypes: band -> numpy dtype name of the data read.
        model: the model's name.
        finer: note pixels that are too fine; False for an input resampled to the 10 m grid on
            read (a GeoTIFF warped from degrees), whose patches cover the model's 640 m anyway.
    """
    notes = []
    finest = min(band(b).resolution for b in bands)
    off = {}
    for b in bands:
        size = pixel_size.get(b)
        if size is None or size <= 0:
            continue
        if size > RESOLUTION_TOLERANCE * band(b).resolution:
            off[b] = (size, band(b).resolution)
        elif finer and size * RESOLUTION_TOLERANCE < finest:
            off[b] = (size, finest)
    if off:
        worst = max(off, key=lambda b: max(off[b][0] / off[b][1], off[b][1] / off[b][0]))
        size, native = off[worst]
        ratio = size / native
        effect = (f"{ratio:.1f} x coarser than model {model} saw in training: it gets blurred patches and its map "
                  "will be poor (smooth land comes out as one or two classes, such as water or forest)"
                  if ratio > 1 else
                  f"{1 / ratio:.1f} x finer than model {model} saw in training: each patch covers less land than "
                  "it learnt, and its map will be poor")
        notes.append(Note("resolution", f"pixels are {size:g} m in {', '.join(off)}, the model was trained on "
                                        f"{native} m pixels: {effect}; use Sentinel-2 bands at {native} m"))
    eight_bit = [b for b in bands if dtypes.get(b) in _EIGHT_BIT]
    if eight_bit:
        notes.append(Note("8-bit", f"band(s) {', '.join(eight_bit)} are 8-bit, but Sentinel-2 DN need 16 bits: "
                                   "8-bit data are a stretched display image, not reflectance, and the map will be "
                                   "wrong; use DN as uint16 or float"))
    return notes
