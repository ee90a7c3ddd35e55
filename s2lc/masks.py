"""No-data and cloud masks of a Sentinel-2 product, from the product's own mask layers.

Pure: arrays, or a GML file's bytes, in; boolean arrays out. :mod:`s2lc.product` reads the files
and puts the masks on the 10 m grid. Sources:

- Level-2A: the scene classification (SCL); classes :data:`s2lc.sentinel2.SCL_CLOUD_CLASSES` are cloud,
  class 0 is no data.
- Level-1C from baseline 04.00: ``MSK_CLASSI_B00.jp2`` (opaque clouds, cirrus).
- Level-1C before 04.00: ``MSK_CLOUDS_B00.gml`` polygons (OPAQUE, CIRRUS), rasterised here.
- Detector footprints ``MSK_DETFOO_Bxx`` (raster from 04.00, polygons before): outside every
  detector is no data.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from rasterio.features import rasterize

from s2lc.errors import ProductError
from s2lc.sentinel2 import SCL, SCL_CLOUD_CLASSES

__all__ = [
    "GmlMask",
    "Masks",
    "classi_cloud",
    "parse_gml_mask",
    "rasterize_polygons",
    "scl_cloud",
    "scl_nodata",
]

_EPSG_RE = re.compile(r"EPSG:(?:[\d.]*:)?(\d+)$")


@dataclass(frozen=True)
class Masks:
    """Masks of one window of the 10 m grid."""

    nodata: np.ndarray  #: (h, w) bool, True where the product has no data
    cloud: np.ndarray | None  #: (h, w) bool, True where cloud (never where no data); None: no cloud mask
    cloud_source: str | None  #: the mask layer used: "SCL", "MSK_CLASSI_B00", "MSK_CLOUDS_B00", "s2cloudless" (detected) or None

    @property
    def valid(self) -> np.ndarray:
        """(h, w) bool: data, cloudy or not."""
        return ~self.nodata

    @property
    def clear(self) -> np.ndarray:
        """(h, w) bool: data and not cloud (all data where the product has no cloud mask)."""
        return self.valid if self.cloud is None else self.valid & ~self.cloud


def scl_cloud(scl: np.ndarray) -> np.ndarray:
    """(h, w) bool, True where the SCL class is one of :data:`s2lc.sentinel2.SCL_CLOUD_CLASSES`."""
    return np.isin(scl, sorted(int(c) for c in SCL_CLOUD_CLASSES))


def scl_nodata(scl: np.ndarray) -> np.ndarray:
    """(h, w) bool, True where the SCL says no data."""
    return scl == SCL.NO_DATA


def classi_cloud(classi: np.ndarray) -> np.ndarray:
    """Cloud from the cloud bands of ``MSK_CLASSI_B00`` (already selected).

    Args:
        classi: (bands, h, w) uint8, the opaque-cloud and cirrus bands.

    Returns:
        (h, w) bool, True where any band flags the pixel.
    """
    return np.any(classi > 0, axis=0)


@dataclass(frozen=True)
class GmlMask:
    """The polygons of a Sentinel-2 GML mask (``MSK_CLOUDS_B00.gml``, ``MSK_DETFOO_Bxx.gml``)."""

    polygons: tuple[dict[str, Any], ...]  #: GeoJSON-like polygons in the mask's CRS
    epsg: int | None  #: the CRS declared in the file, if any


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ring(pos_list: ET.Element, dimension: int, source: str) -> list[tuple[float, float]]:
    try:
        values = np.array((pos_list.text or "").split(), dtype=np.float64)
    except ValueError:
        raise ProductError(f"{source}: a gml:posList holds something other than numbers; the mask file is damaged") from None
    dimension = int(pos_list.get("srsDimension", dimension))
    if values.size == 0 or values.size % dimension:
        raise ProductError(
            f"{source}: a gml:posList has {values.size} numbers, not a multiple of {dimension}; the mask file is damaged"
        )
    points = values.reshape(-1, dimension)[:, :2]
    return [(float(x), float(y)) for x, y in points]


def parse_gml_mask(xml: bytes, source: str, mask_types: frozenset[str] | None = None) -> GmlMask:
    """Read the polygons of a Sentinel-2 GML mask.

    Args:
        xml: the file's content.
        source: its path, quoted in error messages.
        mask_types: keep only features whose ``eop:maskType`` is one of these; None keeps all.

    Returns:
        The polygons (exterior ring first, then holes) and the declared EPSG code. A mask with no
        features (a cloudless tile) gives no polygons.

    Raises:
        ProductError: the XML is malformed or a coordinate list is.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ProductError(f"{source}: not well-formed XML ({exc}); the mask file is damaged, re-download the product") from None
    epsg = None
    for element in root.iter():
        match = _EPSG_RE.search(element.get("srsName", ""))
        if match:
            epsg = int(match.group(1))
            break
    polygons = []
    for feature in (e for e in root.iter() if _local(e.tag) == "MaskFeature"):
        kind = next((e.text.strip() for e in feature.iter() if _local(e.tag) == "maskType" and e.text), None)
        if mask_types is not None and kind not in mask_types:
            continue
        for polygon in (e for e in feature.iter() if _local(e.tag) == "Polygon"):
            dimension = int(polygon.get("srsDimension", 2))
            rings = []
            for part in ("exterior", "interior"):
                for boundary in (e for e in polygon if _local(e.tag) == part):
                    for pos_list in (e for e in boundary.iter() if _local(e.tag) == "posList"):
                        rings.append(_ring(pos_list, dimension, source))
            if rings:
                polygons.append({"type": "Polygon", "coordinates": rings})
    return GmlMask(polygons=tuple(polygons), epsg=epsg)


def rasterize_polygons(polygons: tuple[dict[str, Any], ...], shape: tuple[int, int], transform: Affine) -> np.ndarray:
    """Pixels whose centre lies inside any polygon.

    Args:
        polygons: GeoJSON-like polygons in the grid's CRS.
        shape: (h, w) of the window.
        transform: the window's affine transform.

    Returns:
        (h, w) bool.
    """
    if not polygons:
        return np.zeros(shape, dtype=bool)
    burnt = rasterize(((p, 1) for p in polygons), out_shape=shape, transform=transform, fill=0, dtype="uint8")
    return burnt.astype(bool)
