"""No-data and cloud masks of a Sentinel-2 product, from the product's own mask layers.

Pure: arrays, or a GML file's bytes, in; boolean arrays out. :mod:`s2lc.product` reads the files
and puts the masks on the 10 m grid. Sources:

- Level-2A: the scene classification (SCL); classes :data:`s2lc.sentinel2.SCL_CLOUD_CLASSES` are cloud,
  class 0 is no data.
- Level-1C from baseline 04.00: ``MSK_CLASSI_B00.jp2`` (opaque clouds, cirrus).
- Level-1C before 04.00: ``MSK_CLOUDS_B00.gml`` polygons (OPAQUE, CIRRUS), rasterised here.
- Detector footprints ``MSK_DETFOO_Bxx`` (raster from 04.00, polygons before): outside every
  detector is no data.
- Snow and ice: the SCL (class 11) for Level-2A; for Level-1C (and GeoTIFFs with B03, B04,
  B08 and B11) the NDSI test of :func:`ndsi_snow`, on reflectance with the offset removed, so a product
  and its >= 04.00 reprocessing agree.
- Saturated and defective pixels: the SCL (class 1) for Level-2A; for Level-1C the SATURATED
  value in the bands read, at any baseline, and from 04.00 the band's ``MSK_QUALIT_Bxx``.
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
from s2lc.sentinel2 import SCL, SCL_CLOUD_CLASSES, SCL_SNOW_CLASSES

__all__ = [
    "GmlMask",
    "Masks",
    "NDSI_MIN",
    "classi_cloud",
    "ndsi_snow",
    "parse_gml_mask",
    "rasterize_polygons",
    "scl_cloud",
    "scl_defective",
    "scl_nodata",
    "scl_snow",
]

#: :func:`ndsi_snow`: the normalised difference snow index a snow pixel reaches ...
NDSI_MIN = 0.4
#: ... its red (B04) reflectance, above turbid water's and shadowed ground's ...
SNOW_RED_MIN = 0.2
#: ... and its near-infrared (B08) reflectance, above clear water's.
SNOW_NIR_MIN = 0.11

_EPSG_RE = re.compile(r"EPSG:(?:[\d.]*:)?(\d+)$")


@dataclass(frozen=True)
class Masks:
    """Masks of one window of the 10 m grid."""

    nodata: np.ndarray  #: (h, w) bool, True where the product has no data
    cloud: np.ndarray | None  #: (h, w) bool, True where cloud (never where no data); None: no cloud mask
    cloud_source: str | None  #: the mask layer used: "SCL", "MSK_CLASSI_B00", "MSK_CLOUDS_B00", "s2cloudless" (detected) or None
    snow: np.ndarray | None = None  #: (h, w) bool snow or ice (never where no data or cloud); None: not known
    snow_source: str | None = None  #: "SCL", "NDSI" or None
    #: (h, w) bool, saturated in a band (its SATURATED value or MSK_QUALIT); never where no data
    saturated: np.ndarray | None = None
    #: (h, w) bool, defective (SCL class 1, or lost or defective in MSK_QUALIT); never where no data
    defective: np.ndarray | None = None

    @property
    def usable(self) -> np.ndarray:
        """(h, w) bool: data that is neither saturated nor defective, cloudy or not."""
        usable = ~self.nodata
        for bad in (self.saturated, self.defective):
            if bad is not None:
                usable &= ~bad
        return usable

    @property
    def valid(self) -> np.ndarray:
        """(h, w) bool: data, cloudy or not (saturated and defective pixels included)."""
        return ~self.nodata

    @property
    def clear(self) -> np.ndarray:
        """(h, w) bool: data and not cloud (all data where the product has no cloud mask)."""
        return self.valid if self.cloud is None else self.valid & ~self.cloud


def scl_cloud(scl: np.ndarray) -> np.ndarray:
    """(h, w) bool, True where the SCL class is one of :data:`s2lc.sentinel2.SCL_CLOUD_CLASSES`."""
    return np.isin(scl, sorted(int(c) for c in SCL_CLOUD_CLASSES))


def scl_snow(scl: np.ndarray) -> np.ndarray:
    """(h, w) bool, True where the SCL says snow or ice."""
    return np.isin(scl, sorted(int(c) for c in SCL_SNOW_CLASSES))


def scl_defective(scl: np.ndarray) -> np.ndarray:
    """(h, w) bool, True where the SCL says saturated or defective."""
    return scl == SCL.SATURATED_OR_DEFECTIVE


def ndsi_snow(green: np.ndarray, red: np.ndarray, nir: np.ndarray, swir: np.ndarray) -> np.ndarray:
    """Snow and ice by the normalised difference snow index (NDSI).

    Snow is bright in the visible and dark in the short-wave infrared; clouds are bright in
    both. A pixel is snow where NDSI = (B03 − B11) / (B03 + B11) ≥ :data:`NDSI_MIN` and B04 >
    :data:`SNOW_RED_MIN` (the first pass of Theia's Let-It-Snow, Gascoin et al. 2019, Hydrology
    and Earth System Sciences 23), and B08 > :data:`SNOW_NIR_MIN` (from SNOMAP, Hall et al. 1995,
    Remote Sensing of Environment 54): water has a high NDSI too, and turbid rivers pass the
    NDSI and near-infrared tests but not the red one.

    Args:
        green, red, nir, swir: B03, B04, B08 and B11 as reflectance (0–1, offset removed), NaN
            where no data.

    Returns:
        bool of the inputs' shape; False where any input is NaN.
    """
    green, red, nir, swir = (np.asarray(b, np.float32) for b in (green, red, nir, swir))
    with np.errstate(invalid="ignore", divide="ignore"):
        ndsi = (green - swir) / (green + swir)
        return (ndsi >= NDSI_MIN) & (red > SNOW_RED_MIN) & (nir > SNOW_NIR_MIN)


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
