"""Sentinel-2 MSI facts, declared once.

Sources: ESA, *Sentinel-2 Products Specification Document* (S2-PDGS-TAS-DI-PSD, issue 15,
https://sentinel.esa.int/documents/247904/685211/S2-PDGS-TAS-DI-PSD-V15.0.pdf) for band
resolutions, file names and special values; ESA, *Sentinel-2 Level-2A Algorithm Theoretical
Basis Document* for the scene classification (SCL) codes; ESA, *Copernicus Sentinel-2: Major
Products Upgrade Upcoming* (processing baseline 04.00, 25 January 2022) for the radiometric
offset. Wavelengths are Sentinel-2A central wavelengths (spectral response function v3.0).

Nothing else in s2lc hard-codes a band id, a resolution or a special value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from s2lc.errors import BandError, ProductError

__all__ = [
    "Band",
    "BANDS",
    "BAND_IDS",
    "BASELINE_OFFSET",
    "CLASSI_CLOUD_BANDS",
    "CLASSI_MASK",
    "CLOUDS_GML",
    "CLOUDS_GML_TYPES",
    "DETFOO_MASK",
    "EUROSAT_MS_ORDER",
    "EUROSAT_RGB_BANDS",
    "EUROSAT_RGB_SCALE",
    "IMAGE_FILE_RE",
    "L2A_MISSING_BANDS",
    "MTD_FILES",
    "NODATA_DN",
    "OFFSET_BASELINE",
    "QUANTIFICATION_VALUE",
    "RESOLUTIONS",
    "SATURATED_DN",
    "SCL",
    "SCL_CLOUD_CLASSES",
    "SCL_FILE_RE",
    "SUPPORTED_BASELINES",
    "band",
    "baseline_tuple",
]


@dataclass(frozen=True)
class Band:
    """One MSI spectral band."""

    id: str  #: "B01" … "B12", "B8A"
    resolution: int  #: native ground sampling distance in metres (10, 20 or 60)
    wavelength_nm: float  #: central wavelength, Sentinel-2A
    name: str  #: common name


#: The 13 MSI bands in ESA order (B8A between B08 and B09).
BANDS: tuple[Band, ...] = (
    Band("B01", 60, 442.7, "coastal aerosol"),
    Band("B02", 10, 492.4, "blue"),
    Band("B03", 10, 559.8, "green"),
    Band("B04", 10, 664.6, "red"),
    Band("B05", 20, 704.1, "red edge 1"),
    Band("B06", 20, 740.5, "red edge 2"),
    Band("B07", 20, 782.8, "red edge 3"),
    Band("B08", 10, 832.8, "near infrared"),
    Band("B8A", 20, 864.7, "narrow near infrared"),
    Band("B09", 60, 945.1, "water vapour"),
    Band("B10", 60, 1373.5, "cirrus"),
    Band("B11", 20, 1613.7, "short-wave infrared 1"),
    Band("B12", 20, 2202.4, "short-wave infrared 2"),
)
BAND_IDS: tuple[str, ...] = tuple(b.id for b in BANDS)
_BY_ID = {b.id: b for b in BANDS}

#: Level-2A products carry no cirrus band (it is used for the atmospheric correction only).
L2A_MISSING_BANDS: frozenset[str] = frozenset({"B10"})

#: EuroSAT MS GeoTIFFs store the 13 bands in this order: B8A comes *last*, not in ESA order.
EUROSAT_MS_ORDER: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)
#: EuroSAT RGB JPEGs: bands B04, B03, B02 of Level-1C DN ...
EUROSAT_RGB_BANDS: tuple[str, ...] = ("B04", "B03", "B02")
#: ... mapped with ``gdal_translate -scale 0 2750 1 255``: DN 0–2750 linearly to 1–255, clipped.
EUROSAT_RGB_SCALE: tuple[float, float, float, float] = (0.0, 2750.0, 1.0, 255.0)

#: First processing baseline whose DN carry the radiometric offset (RADIO_/BOA_ADD_OFFSET = -1000).
OFFSET_BASELINE = (4, 0)
#: The offset those baselines declare for every band (reflectance = (DN + offset) / quantification).
BASELINE_OFFSET = -1000.0
#: Processing baselines s2lc reads, inclusive: 02.00 to 05.99.
SUPPORTED_BASELINES = ((2, 0), (5, 99))

#: DN per unit reflectance (QUANTIFICATION_VALUE / BOA_QUANTIFICATION_VALUE) in every baseline so far.
QUANTIFICATION_VALUE = 10000.0
#: Special DN values (MTD ``Special_Values``): no data, and a saturated detector.
NODATA_DN = 0
SATURATED_DN = 65535

#: Ground sampling distances (m) of the band files; Level-2A keeps each band at up to three
#: (``IMG_DATA/R10m``, ``R20m``, ``R60m``).
RESOLUTIONS: tuple[int, ...] = (10, 20, 60)

#: Product metadata file at the root of a ``.SAFE`` folder, by processing level.
MTD_FILES: dict[str, str] = {"L1C": "MTD_MSIL1C.xml", "L2A": "MTD_MSIL2A.xml"}

#: A band image named in the MTD ``IMAGE_FILE`` list (without ``.jp2``), compact naming of
#: PSD 14: ``…/IMG_DATA/T33UUU_20170216T102101_B04`` (L1C) or ``…/R10m/T29UNU_…_B04_10m`` (L2A).
IMAGE_FILE_RE = re.compile(r"_(B0[1-9]|B1[0-2]|B8A)(?:_(10|20|60)m)?$")
#: The Level-2A scene classification image: ``…/R20m/T29UNU_…_SCL_20m``.
SCL_FILE_RE = re.compile(r"_SCL_(20|60)m$")

#: In ``GRANULE/<granule>/QI_DATA``: the cloud classification raster of baseline >= 04.00, 60 m,
#: one byte band each for opaque clouds, cirrus and snow (1 = flagged) ...
CLASSI_MASK = "MSK_CLASSI_B00.jp2"
#: ... of which these 1-based bands are clouds.
CLASSI_CLOUD_BANDS: tuple[int, ...] = (1, 2)
#: Before baseline 04.00 the cloud mask is a GML file of polygons, one feature per cloud ...
CLOUDS_GML = "MSK_CLOUDS_B00.gml"
#: ... whose ``eop:maskType`` is one of these.
CLOUDS_GML_TYPES: frozenset[str] = frozenset({"OPAQUE", "CIRRUS"})
#: Detector footprint of a band, ``.jp2`` from baseline 04.00 (pixel value = detector number,
#: 0 outside every detector), ``.gml`` before (one polygon per detector).
DETFOO_MASK = "MSK_DETFOO_{band}"
#: From baseline 04.00, the quality mask of a band, at the band's resolution: eight byte bands
#: (1 = flagged) ANC_LOST, ANC_DEG, MSI_LOST, MSI_DEG, QT_DEFECTIVE_PIXELS, QT_NODATA_PIXELS,
#: QT_PARTIALLY_CORRECTED_PIXELS, QT_SATURATED_PIXELS_L1A (PSD 14.9, section 5.4.3).
QUALITY_MASK = "MSK_QUALIT_{band}.jp2"
#: ... of which these 1-based bands mark a pixel defective: ancillary or instrument data lost,
#: or a defective detector pixel ...
QUALITY_DEFECTIVE_BANDS: tuple[int, ...] = (1, 3, 5)
#: ... and this one a pixel saturated in Level-1A.
QUALITY_SATURATED_BAND = 8


class SCL(IntEnum):
    """Level-2A scene classification codes."""

    NO_DATA = 0
    SATURATED_OR_DEFECTIVE = 1
    DARK_AREA_PIXELS = 2  # "casted shadows" from baseline 04.00
    CLOUD_SHADOWS = 3
    VEGETATION = 4
    NOT_VEGETATED = 5
    WATER = 6
    UNCLASSIFIED = 7
    CLOUD_MEDIUM_PROBABILITY = 8
    CLOUD_HIGH_PROBABILITY = 9
    THIN_CIRRUS = 10
    SNOW = 11


#: SCL classes that s2lc treats as cloud (not to be given a land-cover class).
SCL_CLOUD_CLASSES: frozenset[int] = frozenset(
    {
        SCL.CLOUD_SHADOWS,
        SCL.CLOUD_MEDIUM_PROBABILITY,
        SCL.CLOUD_HIGH_PROBABILITY,
        SCL.THIN_CIRRUS,
    }
)

#: SCL classes that s2lc maps as snow or ice.
SCL_SNOW_CLASSES: frozenset[int] = frozenset({SCL.SNOW})


def baseline_tuple(baseline: str) -> tuple[int, int]:
    """``"04.00"`` -> ``(4, 0)``.

    Raises:
        ProductError: not two dot-separated two-digit numbers.
    """
    match = re.fullmatch(r"(\d{2})\.(\d{2})", baseline.strip())
    if match is None:
        raise ProductError(f"processing baseline {baseline!r} is not of the form NN.NN")
    return int(match.group(1)), int(match.group(2))


def band(band_id: str) -> Band:
    """The :class:`Band` for an id such as ``"B04"`` or ``"b8a"``.

    Raises:
        BandError: the id is not one of the 13 MSI bands.
    """
    key = band_id.upper()
    if key not in _BY_ID:
        raise BandError(f"unknown Sentinel-2 band {band_id!r}; expected one of {', '.join(BAND_IDS)}")
    return _BY_ID[key]
