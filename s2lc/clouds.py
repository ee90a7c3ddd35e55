"""Cloud detection for Level-1C products that carry no cloud mask, with s2cloudless.

Pure: top-of-atmosphere reflectance in, a boolean mask out. :mod:`s2lc.product` reads the bands
(block averages on a coarse grid) and puts the mask on the 10 m grid.

s2cloudless (Sentinel Hub's pixel classifier, LightGBM, CC BY-SA 4.0) is an optional dependency:
``pip install 's2lc[clouds]'``. It wants the Level-1C reflectance (DN / 10000 in the pre-04.00
convention, which :meth:`s2lc.product.Product.read` already returns) of ten bands. It runs here
on a :data:`RESOLUTION` m grid: a full tile is then 0.84 million pixels, 11–14 s of detection on
two cores after 44–47 s of exact reading (``bench/cloud_detection.py``), against about four
times as long at 60 m, and a 640 m patch still spans 5 × 5 of its pixels.
"""

from __future__ import annotations

import numpy as np

from s2lc.errors import ArgumentError, ProductError

__all__ = ["BANDS", "INSTALL_HINT", "RESOLUTION", "THRESHOLD", "available", "detect_clouds", "detector_input",
           "from_nearest_valid", "unavailable"]

#: The bands s2cloudless reads, in its order.
BANDS: tuple[str, ...] = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
#: Pixel size (m) of the grid the detector runs on.
RESOLUTION = 120
#: Cloud probability above which a pixel is cloud (s2cloudless's default).
THRESHOLD = 0.4
#: Radius (pixels of the :data:`RESOLUTION` grid) of the disk the probabilities are averaged over
#: before the threshold (about 600 m), and of the dilation after it (about 360 m): the clouds'
#: thin edges and the haze around them are masked too.
AVERAGE_OVER = 5
DILATION = 3

INSTALL_HINT = "pip install 's2lc[clouds]'"


def unavailable() -> str | None:
    """Why s2cloudless cannot be used (not installed, or LightGBM cannot load its OpenMP
    library), or None when it can."""
    try:
        import s2cloudless  # noqa: F401
    except ImportError:
        return f"s2cloudless is not installed; {INSTALL_HINT}"
    except Exception as exc:  # noqa: BLE001 - LightGBM raises OSError without libgomp/libomp
        return f"s2cloudless cannot be imported ({' '.join(str(exc).split())}); install the OpenMP runtime (libgomp) it needs"
    return None


def available() -> bool:
    """Whether s2cloudless can be used."""
    return unavailable() is None


def detector_input(reflectance: np.ndarray, bands: tuple[str, ...], why: str | None) -> np.ndarray:
    """``reflectance`` as float32 (len(bands), h, w), checked for a cloud detector that cannot run
    when ``why`` says why.

    Raises:
        ProductError: ``why`` (the detector is not installed).
        ArgumentError: ``reflectance`` is not (len(bands), h, w).
    """
    if why:
        raise ProductError(f"cloud detection: {why}")
    reflectance = np.asarray(reflectance, dtype=np.float32)
    if reflectance.ndim != 3 or reflectance.shape[0] != len(bands):
        raise ArgumentError(f"reflectance must be ({len(bands)}, h, w); got {reflectance.shape}")
    return reflectance


def from_nearest_valid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(..., h, w) ``values`` where every invalid cell takes the values of its nearest valid cell
    (``valid``: (h, w) bool, at least one True)."""
    from scipy.ndimage import distance_transform_edt

    rows, cols = distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return values[..., rows, cols]


def detect_clouds(reflectance: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Cloud mask of one scene.

    Args:
        reflectance: (10, h, w) top-of-atmosphere reflectance (0-1) of :data:`BANDS`, on a grid of
            about :data:`RESOLUTION` m; NaN where no data.
        threshold: cloud probability above which a pixel is cloud.

    Returns:
        (h, w) bool, True where cloud; False where any band has no data.

    Raises:
        ProductError: s2cloudless is not installed.
        ArgumentError: ``reflectance`` is not (10, h, w).
    """
    reflectance = detector_input(reflectance, BANDS, unavailable())
    from s2cloudless import S2PixelCloudDetector

    valid = np.isfinite(reflectance).all(axis=0)
    if not valid.any():
        return np.zeros(valid.shape, bool)
    detector = S2PixelCloudDetector(threshold=threshold, average_over=AVERAGE_OVER, dilation_size=DILATION)
    prob = np.zeros(valid.shape, np.float32)
    prob[valid] = detector.get_cloud_probability_maps(reflectance[:, valid].T[None, :, None, :])[0, :, 0]
    if not valid.all():  # no data takes the probability of the nearest valid cell, so that the
        # averaging over a disk neither lowers nor raises the cells near the swath edge
        prob = from_nearest_valid(prob, valid)
    return detector.get_mask_from_prob(prob[None])[0].astype(bool) & valid
