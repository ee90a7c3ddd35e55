"""Parse a Sentinel-2 product metadata file (``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``).

Pure: takes the file's bytes and the name to quote in error messages; the reader
(:mod:`s2lc.product`) opens the file. Element names follow the PSD (issue 14/15) and were checked
against real files of baselines 02.04, 02.09 and 04.00 (L1C) and 04.00 (L2A); namespaces differ
between baselines, so elements are matched by local name.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone

from s2lc.errors import ProductError
from s2lc.sentinel2 import (
    BAND_IDS,
    BASELINE_OFFSET,
    NODATA_DN,
    OFFSET_BASELINE,
    SATURATED_DN,
    SUPPORTED_BASELINES,
    baseline_tuple,
)
from s2lc.times import iso_time

__all__ = ["ProductMetadata", "parse_mtd"]

logger = logging.getLogger(__name__)

#: Root element (local name) -> processing level.
_ROOTS = {"Level-1C_User_Product": "L1C", "Level-2A_User_Product": "L2A"}
#: PROCESSING_LEVEL text -> processing level (older L2A say "Level-2Ap").
_LEVELS = {"Level-1C": "L1C", "Level-2A": "L2A", "Level-2Ap": "L2A"}
#: Per level: the quantification element(s), first found wins, and the offset element.
_QUANTIFICATION = {
    "L1C": ("QUANTIFICATION_VALUE",),
    "L2A": ("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE"),
}
_OFFSET = {"L1C": "RADIO_ADD_OFFSET", "L2A": "BOA_ADD_OFFSET"}
#: Band image list entries (older L2A used IMAGE_FILE_2A).
_IMAGE_FILE_TAGS = ("IMAGE_FILE", "IMAGE_FILE_2A")
_TILE_RE = re.compile(r"_T(\d{2}[A-Z]{3})_")


@dataclass(frozen=True)
class ProductMetadata:
    """What s2lc uses from a product metadata file."""

    id: str  #: product name without ``.SAFE``
    level: str  #: ``"L1C"`` or ``"L2A"``
    baseline: str  #: processing baseline as written, e.g. ``"04.00"``
    spacecraft: str | None  #: ``"Sentinel-2A"`` …
    sensing_time: datetime | None  #: start of sensing, UTC
    tile: str | None  #: MGRS tile, ``"T33UUU"``
    quantification_value: float  #: DN per unit reflectance
    offsets: dict[str, float] = field(hash=False)  #: band id -> offset added to DN (0.0 before 04.00)
    special_values: dict[str, int] = field(hash=False)  #: ``{"NODATA": 0, "SATURATED": 65535}``
    cloud_cover: float | None  #: Cloud_Coverage_Assessment, percent
    image_files: tuple[str, ...]  #: IMAGE_FILE entries, product-relative, without extension

    @property
    def baseline_version(self) -> tuple[int, int]:
        """The baseline as ``(major, minor)``."""
        return baseline_tuple(self.baseline)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if _local(e.tag) == name]


def _text(root: ET.Element, name: str) -> str | None:
    for element in _all(root, name):
        if element.text and element.text.strip():
            return element.text.strip()
    return None


def _number(root: ET.Element, name: str, source: str) -> float | None:
    text = _text(root, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ProductError(
            f"{source}: {name} is {text!r}, not a number; the metadata file is damaged, re-download the product"
        ) from None


def _time(text: str | None, source: str) -> datetime | None:
    if text is None:
        return None
    value = iso_time(text)
    if value is None:
        raise ProductError(f"{source}: sensing time {text!r} is not an ISO 8601 date; the metadata file is damaged")
    return value.astimezone(timezone.utc)


def _offsets(root: ET.Element, level: str, version: tuple[int, int], source: str) -> dict[str, float]:
    tag = _OFFSET[level]
    elements = _all(root, tag)
    if not elements:
        if version >= OFFSET_BASELINE:
            logger.warning(
                "%s: baseline %d.%02d but no %s list; assuming the documented %g for every band",
                source, *version, tag, BASELINE_OFFSET,
            )
            return {b: BASELINE_OFFSET for b in BAND_IDS}
        return {b: 0.0 for b in BAND_IDS}
    offsets = {b: 0.0 for b in BAND_IDS}
    for element in elements:
        band_index, text = element.get("band_id"), (element.text or "").strip()
        try:
            offsets[BAND_IDS[int(band_index)]] = float(text)
        except (TypeError, ValueError, IndexError):
            raise ProductError(
                f"{source}: {tag} band_id={band_index!r} value {text!r} is not a band index 0-12 with a number; "
                "the metadata file is damaged, re-download the product"
            ) from None
    return offsets


def _special_values(root: ET.Element, source: str) -> dict[str, int]:
    values = {"NODATA": NODATA_DN, "SATURATED": SATURATED_DN}
    for element in _all(root, "Special_Values"):
        name = _text(element, "SPECIAL_VALUE_TEXT")
        index = _text(element, "SPECIAL_VALUE_INDEX")
        if name is None or index is None:
            continue
        try:
            values[name] = int(index)
        except ValueError:
            raise ProductError(
                f"{source}: special value {name} is {index!r}, not an integer; the metadata file is damaged"
            ) from None
    return values


def parse_mtd(xml: bytes, source: str) -> ProductMetadata:
    """Parse a product metadata file.

    Args:
        xml: the file's content.
        source: the file's path, quoted in error messages.

    Returns:
        The product's metadata; offsets hold all 13 bands (0.0 where the MTD declares none).

    Raises:
        ProductError: the XML is malformed, or an element s2lc needs is missing or not a number.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ProductError(
            f"{source}: not well-formed XML ({exc}); the metadata file is damaged or truncated, re-download the product"
        ) from None

    level = _ROOTS.get(_local(root.tag)) or _LEVELS.get(_text(root, "PROCESSING_LEVEL") or "")
    if level is None:
        raise ProductError(
            f"{source}: neither a Level-1C nor a Level-2A product metadata file (root element {_local(root.tag)!r}); "
            "pass a Sentinel-2 L1C or L2A product"
        )

    def required(name: str) -> str:
        text = _text(root, name)
        if text is None:
            raise ProductError(f"{source}: no {name} element; the metadata file is damaged or truncated, re-download the product")
        return text

    uri = required("PRODUCT_URI")
    product_id = uri[: -len(".SAFE")] if uri.endswith(".SAFE") else uri
    baseline = required("PROCESSING_BASELINE")
    try:
        version = baseline_tuple(baseline)
    except ValueError as exc:
        raise ProductError(f"{source}: {exc}; the metadata file is damaged") from None
    low, high = SUPPORTED_BASELINES
    if not low <= version <= high:
        logger.warning("%s: processing baseline %s is outside the %d.%02d-%d.%02d that s2lc was tested on",
                       source, baseline, *low, *high)

    quantification = None
    for name in _QUANTIFICATION[level]:
        quantification = _number(root, name, source)
        if quantification is not None:
            break
    if quantification is None or quantification <= 0:
        raise ProductError(
            f"{source}: no positive {_QUANTIFICATION[level][0]}; "
            "the metadata file is damaged or truncated, re-download the product"
        )

    tile = _TILE_RE.search(uri)
    return ProductMetadata(
        id=product_id,
        level=level,
        baseline=baseline,
        spacecraft=_text(root, "SPACECRAFT_NAME"),
        sensing_time=_time(_text(root, "PRODUCT_START_TIME") or _text(root, "DATATAKE_SENSING_START"), source),
        tile=f"T{tile.group(1)}" if tile else None,
        quantification_value=quantification,
        offsets=_offsets(root, level, version, source),
        special_values=_special_values(root, source),
        cloud_cover=_number(root, "Cloud_Coverage_Assessment", source),
        image_files=tuple(e.text.strip() for tag in _IMAGE_FILE_TAGS for e in _all(root, tag) if e.text and e.text.strip()),
    )
