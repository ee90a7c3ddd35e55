"""Cloud and cloud-shadow detection with ukis-csmask, for ``clouds="csmask"``.

Pure: reflectance in, a boolean mask out; :mod:`s2lc.product` reads the bands (cell means on a
:data:`RESOLUTION` m grid) and puts the mask on the 10 m grid.

ukis-csmask (DLR, Apache-2.0; Wieland et al., Remote Sensing of Environment 2019) is a U-Net run
through onnxruntime on 256-pixel tiles, with its weights inside the wheel. Its 6-band models
(Level-1C and Level-2A) take blue, green, red, NIR (B8A), SWIR 1.6 and 2.2 µm reflectance at
about 30 m and label each pixel clear, cloud or cloud shadow. The mask here is cloud or shadow,
buffered by the package's own 4 pixels (120 m).

Measured against s2cloudless (``python bench/cloud_masks.py``, docs/reader.md): on the hazy and
cloudy eo-learn dates both flag everything and on the clear ones nothing; on the winter T33UUU
crop csmask flags about half of the open water as shadow, and 8 % of the land more than 500 m
from any cloud. So s2cloudless stays the default for Level-1C products without a mask.
Optional: ``pip install 's2lc[csmask]'``.
"""

from __future__ import annotations

import numpy as np

from s2lc.clouds import detector_input, from_nearest_valid
from s2lc.errors import ArgumentError

__all__ = ["BANDS", "INSTALL_HINT", "RESOLUTION", "detect_clouds", "unavailable"]

#: The bands the 6-band models read, in the package's band order.
BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B8A", "B11", "B12")
_NAMES = ["blue", "green", "red", "nir", "swir16", "swir22"]
#: Pixel size (m) of the grid the detector runs on, as the models were trained.
RESOLUTION = 30
#: Cells the mask is buffered by, as the package buffers its own (120 m).
BUFFER = 4

INSTALL_HINT = "pip install 's2lc[csmask]'"


def unavailable() -> str | None:
    """Why ukis-csmask cannot be used, or None when it can."""
    try:
        import ukis_csmask.mask  # noqa: F401  (imports onnxruntime)
    except ImportError:
        return f"ukis-csmask (with onnxruntime) is not installed; {INSTALL_HINT}"
    return None


def detect_clouds(reflectance: np.ndarray, level: str = "L1C") -> np.ndarray:
    """Cloud and cloud-shadow mask of one scene.

    Args:
        reflectance: (6, h, w) reflectance (0–1) of :data:`BANDS` on a grid of about
            :data:`RESOLUTION` m, top-of-atmosphere for ``level="L1C"`` and bottom-of-atmosphere
            for ``"L2A"``; NaN where no data.
        level: which of the package's models: ``"L1C"`` or ``"L2A"``.

    Returns:
        (h, w) bool, True where cloud or cloud shadow (buffered by 4 cells); False where any band
        has no data.

    Raises:
        ProductError: ukis-csmask is not installed.
        ArgumentError: ``reflectance`` is not (6, h, w), or ``level`` is neither.
    """
    reflectance = detector_input(reflectance, BANDS, unavailable())
    if level not in ("L1C", "L2A"):
        raise ArgumentError(f"level must be 'L1C' or 'L2A', got {level!r}")
    import warnings

    from scipy.ndimage import binary_dilation
    from ukis_csmask.mask import CSmask

    valid = np.isfinite(reflectance).all(axis=0)
    if not valid.any():
        return np.zeros(valid.shape, bool)
    if not valid.all():  # no data takes its nearest valid cell's values: the network sees no false edge,
        # and the package's own buffer (which grows from no data too) is not used
        reflectance = from_nearest_valid(reflectance, valid)
    with warnings.catch_warnings():  # a scene under 256 x 256 cells: the package pads it, and says so
        warnings.simplefilter("ignore", UserWarning)
        detected = CSmask(reflectance.transpose(1, 2, 0).copy(), band_order=_NAMES, product_level=level.lower(),
                          nodata_value=None, intra_op_num_threads=0)
    flagged = np.isin(detected.csm[..., 0], (1, 2))  # cloud or shadow
    return binary_dilation(flagged, iterations=BUFFER) & valid
