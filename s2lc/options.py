"""The values s2lc's options take, declared once: the library checks arguments against these
enums, and the command line builds its ``click.Choice`` lists from them.

Each enum is a ``str`` enum whose values are what a caller passes (``device="cpu"``) and what a
command line user types (``--device cpu``); a member equals its value, so ``Device.CPU == "cpu"``.
:func:`parse_bands` reads the ``B04=1,B03=2,B02=3`` band mapping that ``s2lc info`` and
``s2lc classify`` take as ``--bands``.

Imports neither torch nor rasterio: ``s2lc --help`` loads this module.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from s2lc.errors import ArgumentError, S2lcError

__all__ = ["Arch", "Clouds", "Device", "Optimizer", "Precision", "choose", "parse_bands"]


class Clouds(StrEnum):
    """Where the cloud mask comes from (:func:`s2lc.product.open_product`'s ``clouds``)."""

    AUTO = "auto"  #: the product's own mask; a Level-1C product without one: s2cloudless, when installed
    PRODUCT = "product"  #: the product's own mask only
    S2CLOUDLESS = "s2cloudless"  #: detected with s2cloudless, whatever the product carries
    CSMASK = "csmask"  #: cloud and cloud shadow detected with ukis-csmask, whatever the product carries
    NONE = "none"  #: no cloud mask


class Device(StrEnum):
    """Where the network runs."""

    AUTO = "auto"  #: CUDA when a GPU is present, else the CPU
    CPU = "cpu"
    CUDA = "cuda"


class Precision(StrEnum):
    """The floating-point type the network computes in (autocast)."""

    AUTO = "auto"  #: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


class Arch(StrEnum):
    """Network architectures: the names of :data:`s2lc.models.ARCHITECTURES`, which builds them
    (with torch; this list needs none, and a test keeps the two equal)."""

    EFFICIENTNET_LITE0 = "efficientnet_lite0"
    EFFICIENTNET_LITE1 = "efficientnet_lite1"
    EFFICIENTNET_LITE2 = "efficientnet_lite2"
    RESNET18 = "resnet18"
    RESNET18_FINE = "resnet18_fine"
    RESNET18_FINE40 = "resnet18_fine40"
    RESNET34 = "resnet34"
    RESNET50 = "resnet50"
    WIDE_RESNET50_2 = "wide_resnet50_2"


class Optimizer(StrEnum):
    """Training optimisers (:data:`s2lc.training.OPTIMIZERS` builds them)."""

    SGD = "sgd"  #: SGD with Nesterov momentum, for training from scratch
    ADAMW = "adamw"  #: AdamW, for fine-tuning pretrained weights


#: What an error calls a value of each enum.
_NAMES: dict[type[StrEnum], str] = {
    Clouds: "cloud mask source",
    Device: "device",
    Precision: "precision",
    Arch: "architecture",
    Optimizer: "optimizer",
}

E = TypeVar("E", bound=StrEnum)


def choose(kind: type[E], value: str, error: type[S2lcError] = ArgumentError) -> E:
    """``value`` as a member of ``kind`` (``choose(Device, "cpu")`` -> ``Device.CPU``).

    Args:
        kind: one of this module's enums.
        value: a value of it (a member is returned as it is).
        error: the class to raise, where an older function raised a narrower one than
            :class:`~s2lc.errors.ArgumentError` (``ModelError`` for a device).

    Raises:
        ArgumentError: (or ``error``) ``value`` is not one of ``kind``'s values; the message lists them.
    """
    try:
        return kind(value)
    except ValueError:
        raise error(f"unknown {_NAMES[kind]} {value!r}; use one of {', '.join(kind)}") from None


_BAND_INDEX = re.compile(r"\s*([A-Za-z0-9]+)\s*=\s*([0-9]+)\s*")


def parse_bands(spec: str) -> dict[str, int]:
    """``"B04=1,B03=2,B02=3"`` -> ``{"B04": 1, "B03": 2, "B02": 3}``: which 1-based band of a
    GeoTIFF holds which Sentinel-2 band (the ``bands`` of :func:`s2lc.product.open_product`).

    Band ids are upper-cased here and checked against Sentinel-2's when the GeoTIFF is opened.

    Raises:
        ArgumentError: ``spec`` is not comma-separated BAND=INDEX pairs with an index of 1 or
            more, each band once (``"B04=1,=1"``, ``"B04"``, ``"B04=one"``, ``"B04=1,B04=2"``).
    """
    mapping: dict[str, int] = {}
    for item in spec.split(","):
        match = _BAND_INDEX.fullmatch(item)
        problem = None
        if match is None:
            problem = f"{item!r} is not BAND=INDEX"
        elif int(match[2]) < 1:
            problem = f"{item.strip()!r}: band indexes start at 1"
        elif match[1].upper() in mapping:
            problem = f"{match[1].upper()} is given twice"
        if problem:
            raise ArgumentError(f"{spec!r}: {problem}; write BAND=INDEX pairs separated by commas, e.g. B04=1,B03=2,B02=3")
        mapping[match[1].upper()] = int(match[2])
    return mapping
