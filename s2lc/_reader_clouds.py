"""Which cloud mask a product is read with: its own layer, one of the detectors, or none.

Internal to :mod:`s2lc.product`: pure, on what the readers found (a ``ProductSource``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from s2lc import clouds as cloud_detection
from s2lc import csmask
from s2lc._reader_common import CloudLayer, ProductSource
from s2lc.errors import BandError, ProductError
from s2lc.options import Clouds

__all__ = ["choose_clouds"]

logger = logging.getLogger("s2lc.product")  # what users filter on: these messages are about the product


def choose_clouds(source: ProductSource, clouds: Clouds) -> ProductSource:
    """``source`` with the cloud layer that ``clouds`` asks for; warns when the result has no cloud
    mask although one was wanted."""
    if clouds == "none":
        return replace(source, cloud=None)
    if clouds == "product" or (clouds == "auto" and source.cloud is not None):
        if source.cloud is None:
            logger.warning("%s; clouds will not be masked", source.no_cloud_mask)
        return source
    if clouds == "csmask":
        return _detector_layer(source, "csmask", csmask.BANDS, csmask.unavailable())
    if clouds == "s2cloudless":
        if source.level == "L2A":
            raise ProductError(
                f"{source.path}: s2cloudless detects clouds in Level-1C (top-of-atmosphere) reflectance; "
                "a Level-2A product's clouds are in its SCL: use the product's own mask (clouds='product')"
            )
        return _detector_layer(source, "s2cloudless", cloud_detection.BANDS, cloud_detection.unavailable())
    # auto, and the product has no mask of its own
    missing = [b for b in cloud_detection.BANDS if b not in source.bands]
    detectable = source.level == "L1C" and not missing
    why = cloud_detection.unavailable() if detectable else None
    if detectable and not why:
        logger.info("%s; detecting clouds with s2cloudless", source.no_cloud_mask)
        return replace(source, cloud=CloudLayer("s2cloudless"))
    if why:
        hint = f" ({why})"
    elif source.level == "GeoTIFF" and not missing:  # a GeoTIFF does not say whether it is Level-1C
        hint = "; if it holds Level-1C reflectance, clouds='s2cloudless' detects them"
    else:
        hint = ""
    logger.warning("%s; clouds will not be masked%s", source.no_cloud_mask, hint)
    return source


def _detector_layer(source: ProductSource, kind: str, bands: Sequence[str], why: str | None) -> ProductSource:
    """``source`` with its clouds detected by ``kind``, which reads ``bands``.

    Raises:
        BandError: the product lacks some of ``bands``.
        ProductError: the detector cannot be used (``why``).
    """
    missing = [b for b in bands if b not in source.bands]
    if missing:
        raise BandError(
            f"{source.path}: cloud detection with {kind} needs {', '.join(missing)}, which the product "
            "lacks; use the product's own mask (clouds='product') or none (clouds='none')"
        )
    if why:
        raise ProductError(f"{source.path}: cloud detection: {why}")
    return replace(source, cloud=CloudLayer(kind))
