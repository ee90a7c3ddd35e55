"""The land-cover legend: class codes, names and colours of every s2lc map.

Codes in a classification raster: 0 is no-data (saturated and defective pixels included), 1–10
are the EuroSAT classes in the order below (the alphabetical order of the dataset's folders), 11
is cloud and 12 snow or ice. Cloud and snow are masks, not land cover: no class is given there.
"""

from __future__ import annotations

from dataclasses import dataclass

from s2lc.errors import LegendError

__all__ = [
    "CLOUD",
    "EUROSAT_CLASSES",
    "LandCoverClass",
    "Legend",
    "MASK_NAMES",
    "NODATA",
    "SNOW_ICE",
    "default_legend",
]

#: Raster code for pixels without data.
NODATA = 0
#: Raster code for pixels under cloud (no land-cover class given).
CLOUD = 11
#: Raster code for pixels under snow or ice (no land-cover class given).
SNOW_ICE = 12
#: Names of the legend entries that are masks, not land cover, in code order after the classes.
MASK_NAMES: tuple[str, ...] = ("Cloud", "SnowIce")


@dataclass(frozen=True)
class LandCoverClass:
    """One entry of a legend."""

    code: int
    name: str
    label: str  #: human-readable name, as shown in QGIS
    color: tuple[int, int, int]  #: RGB, 0–255


#: EuroSAT's ten classes, in dataset (alphabetical) order; codes 1–10.
EUROSAT_CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)

_LABELS = {
    "AnnualCrop": "Annual crop",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous vegetation",
    "Highway": "Highway",
    "Industrial": "Industrial",
    "Pasture": "Pasture",
    "PermanentCrop": "Permanent crop",
    "Residential": "Residential",
    "River": "River",
    "SeaLake": "Sea or lake",
    "Cloud": "Cloud",
    "SnowIce": "Snow or ice",
}

_COLORS = {
    "AnnualCrop": (230, 199, 0),
    "Forest": (27, 120, 55),
    "HerbaceousVegetation": (166, 217, 106),
    "Highway": (127, 127, 127),
    "Industrial": (158, 61, 158),
    "Pasture": (217, 240, 163),
    "PermanentCrop": (242, 142, 43),
    "Residential": (227, 26, 28),
    "River": (79, 163, 224),
    "SeaLake": (8, 48, 107),
    "Cloud": (240, 240, 240),
    "SnowIce": (150, 220, 245),
}


@dataclass(frozen=True)
class Legend:
    """The classes a map may hold, the masks (cloud, snow or ice) included; code 0 (no-data) is
    implicit. A legend read from a map written before snow was mapped has cloud alone."""

    classes: tuple[LandCoverClass, ...]

    @classmethod
    def from_names(cls, names: tuple[str, ...] | list[str]) -> "Legend":
        """A legend for a model's class names: codes 1..n, then cloud as n + 1 and snow or ice
        as n + 2.

        Unknown names get a label equal to the name and a grey derived from their position.
        """
        entries = []
        for i, name in enumerate(names, start=1):
            grey = 60 + (i * 37) % 160
            entries.append(
                LandCoverClass(i, name, _LABELS.get(name, name), _COLORS.get(name, (grey, grey, grey)))
            )
        for i, name in enumerate(MASK_NAMES, start=len(names) + 1):
            entries.append(LandCoverClass(i, name, _LABELS[name], _COLORS[name]))
        return cls(tuple(entries))

    def _mask_code(self, name: str) -> int | None:
        return next((c.code for c in self.classes if c.name == name), None)

    @property
    def cloud_code(self) -> int:
        return self._mask_code("Cloud")

    @property
    def snow_code(self) -> int | None:
        """The snow or ice code; None in a legend without it."""
        return self._mask_code("SnowIce")

    @property
    def land_cover(self) -> tuple[LandCoverClass, ...]:
        """The classes a model predicts (the masks excluded)."""
        return tuple(c for c in self.classes if c.name not in MASK_NAMES)

    def by_code(self, code: int) -> LandCoverClass:
        """The class of ``code``.

        Raises:
            LegendError: no class of the legend has that code (also a ``KeyError``).
        """
        for c in self.classes:
            if c.code == code:
                return c
        raise LegendError(f"no class with code {code} in the legend")

    def names(self) -> dict[int, str]:
        """Code → class name, no-data included as code 0."""
        return {0: "NoData", **{c.code: c.name for c in self.classes}}

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """Code → RGBA for a GDAL colour table; no-data is transparent."""
        cmap = {0: (0, 0, 0, 0)}
        cmap.update({c.code: (*c.color, 255) for c in self.classes})
        return cmap


def default_legend() -> Legend:
    """The EuroSAT legend: 0 no-data, 1–10 EuroSAT classes, 11 cloud, 12 snow or ice."""
    return Legend.from_names(EUROSAT_CLASSES)


assert default_legend().cloud_code == CLOUD and default_legend().snow_code == SNOW_ICE
