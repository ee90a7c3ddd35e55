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

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "Band",
    "BANDS",
    "BAND_IDS",
    "EUROSAT_MS_ORDER",
    "EUROSAT_RGB_BANDS",
    "EUROSAT_RGB_SCALE",
    "L2A_MISSING_BANDS",
    "OFFSET_BASELINE",
    "SCL",
    "SCL_CLOUD_CLASSES",
    "band",
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
        SCL.SATURATED_OR_DEFECTIVE,
        SCL.CLOUD_SHADOWS,
        SCL.CLOUD_MEDIUM_PROBABILITY,
        SCL.CLOUD_HIGH_PROBABILITY,
        SCL.THIN_CIRRUS,
    }
)


def band(band_id: str) -> Band:
    """The :class:`Band` for an id such as ``"B04"`` or ``"b8a"``.

    Raises:
        KeyError: the id is not one of the 13 MSI bands.
    """
    key = band_id.upper()
    if key not in _BY_ID:
        raise KeyError(f"unknown Sentinel-2 band {band_id!r}; expected one of {', '.join(BAND_IDS)}")
    return _BY_ID[key]
