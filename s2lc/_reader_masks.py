"""The mask layers of :meth:`s2lc.product.Product.read_masks`, each put on a window of the 10 m grid.

Clouds come from the layer the product carries or a detector (:mod:`s2lc._reader_clouds` chose
it); snow and ice from the SCL or the NDSI test; saturated and defective pixels from the
SATURATED value, the SCL or ``MSK_QUALIT`` (:mod:`s2lc.masks` for the rules).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from rasterio.windows import Window

from s2lc import clouds as cloud_detection
from s2lc import csmask
from s2lc._reader_common import CloudLayer, RasterRef, to_units, valid_dn
from s2lc.gdal import gdal_env
from s2lc.masks import classi_cloud, ndsi_snow, rasterize_polygons, scl_cloud
from s2lc.resampling import cell_index, upsample_nearest
from s2lc.sentinel2 import QUALITY_DEFECTIVE_BANDS, QUALITY_SATURATED_BAND

if TYPE_CHECKING:
    from s2lc.product import Product

__all__ = ["CLOUD_MASKERS", "NDSI_BANDS", "detect_clouds", "quality_flags", "snow_from_ndsi"]

logger = logging.getLogger(__name__)

#: B03, B04, B08 and B11: what :func:`s2lc.masks.ndsi_snow` needs.
NDSI_BANDS = ("B03", "B04", "B08", "B11")


def _cloud_from_scl(product: Product, layer: CloudLayer, window: Window, scl: np.ndarray | None) -> np.ndarray:
    return scl_cloud(scl)


def _cloud_from_classi(product: Product, layer: CloudLayer, window: Window, scl: np.ndarray | None) -> np.ndarray:
    return classi_cloud(np.stack([product._nearest(ref, window) for ref in layer.rasters]))


def _cloud_from_gml(product: Product, layer: CloudLayer, window: Window, scl: np.ndarray | None) -> np.ndarray:
    shape = (int(window.height), int(window.width))
    return rasterize_polygons(layer.gml.polygons, shape, product.grid.window_transform(window))


def _cloud_from_detector(product: Product, layer: CloudLayer, window: Window, scl: np.ndarray | None) -> np.ndarray:
    coarse = product._detected_clouds()
    (ch, cw), (h, w) = coarse.shape, product.grid.shape
    row, col = int(window.row_off), int(window.col_off)
    return coarse[np.ix_(cell_index(row, row + int(window.height), h, ch), cell_index(col, col + int(window.width), w, cw))]


def _cells_with_no_data(product: Product, shape: tuple[int, int], bands: Sequence[str]) -> np.ndarray:
    """(rows, cols) bool on the coarse grid of :meth:`~s2lc.product.Product.read_averaged`: the
    cells that hold any no data in the coarsest of ``bands`` (a cloud detector's), read at its own
    resolution."""
    ref = max((product._ref(b) for b in bands), key=lambda r: r.factor)
    with gdal_env():
        invalid = ~valid_dn(product._datasets.read(ref, None), ref)
    out = np.zeros(shape, dtype=bool)
    (h, w), (r, c) = invalid.shape, np.nonzero(invalid)
    out[cell_index(0, h, h, shape[0])[r], cell_index(0, w, w, shape[1])[c]] = True
    return out


def detect_clouds(product: Product) -> np.ndarray:
    """The cloud mask of s2cloudless or ukis-csmask (the product's cloud layer kind), (rows, cols)
    bool on the detector's coarse grid."""
    t0 = time.perf_counter()
    kind = product._source.cloud.kind
    detector = csmask if kind == "csmask" else cloud_detection
    factor = detector.RESOLUTION / product.grid.resolution
    shape = (max(1, round(product.grid.height / factor)), max(1, round(product.grid.width / factor)))
    # exact: a product and its >= 04.00 reprocessing (DN + 1000) must see the same clouds
    reflectance = product.read_averaged(detector.BANDS, shape, exact=True) / np.float32(10000)
    # cells partly without data are left out: the detectors' features need whole cells
    reflectance[:, _cells_with_no_data(product, shape, detector.BANDS)] = np.nan
    if kind == "csmask":
        found = csmask.detect_clouds(reflectance, "L2A" if product.level == "L2A" else "L1C")
    else:
        found = cloud_detection.detect_clouds(reflectance)
    logger.info("%s: %s found %.1f %% cloud on a %d x %d grid in %.1f s", product.id, kind,
                100 * found.mean(), shape[1], shape[0], time.perf_counter() - t0)
    return found


#: Cloud mask builders by layer kind.
CLOUD_MASKERS: dict[str, Callable[[Product, CloudLayer, Window, np.ndarray | None], np.ndarray]] = {
    "SCL": _cloud_from_scl,
    "MSK_CLASSI_B00": _cloud_from_classi,
    "MSK_CLOUDS_B00": _cloud_from_gml,
    "s2cloudless": _cloud_from_detector,
    "csmask": _cloud_from_detector,
}


def snow_from_ndsi(product: Product, window: Window) -> np.ndarray:
    """(h, w) bool snow or ice by :func:`s2lc.masks.ndsi_snow`, tested on the 20 m lattice of the
    grid (B11's own) and put back on the 10 m window by nearest neighbour.

    B11 is read as it is; B03, B04 and B08 at half resolution, which GDAL decodes from a reduced
    JPEG 2000 resolution level (a quarter of a full decode). Both are in the units of
    :meth:`~s2lc.product.Product.read` (offset removed), so a product and its >= 04.00
    reprocessing give the same mask. Bands stored at another resolution (a GeoTIFF, a Level-2A
    that kept 60 m only) are read on the 10 m grid instead.
    """
    refs = [product._ref(b) for b in NDSI_BANDS]
    if any(r.factor not in (1, 2) for r in refs):
        green, red, nir, swir = product.read(NDSI_BANDS, window) / np.float32(10000)
        return ndsi_snow(green, red, nir, swir)
    h, w = product.grid.shape
    r0, c0 = int(window.row_off) // 2, int(window.col_off) // 2
    r1, c1 = -(-int(window.row_off + window.height) // 2), -(-int(window.col_off + window.width) // 2)
    fine = Window(2 * c0, 2 * r0, min(2 * c1, w) - 2 * c0, min(2 * r1, h) - 2 * r0)

    def read(ref: RasterRef) -> np.ndarray:
        if ref.factor == 2:
            dn = product._datasets.read(ref, Window(c0, r0, c1 - c0, r1 - r0))
        else:
            dn = product._datasets.read(ref, fine, out_shape=(r1 - r0, c1 - c0))
        values = to_units(dn, ref)
        values[~valid_dn(dn, ref)] = np.nan
        return values / np.float32(10000)

    green, red, nir, swir = product._each_band(read, refs)
    coarse = ndsi_snow(green, red, nir, swir)
    return upsample_nearest(coarse, 2, data_window=Window(c0, r0, c1 - c0, r1 - r0), window=window)


def quality_flags(product: Product, refs: Sequence[RasterRef], window: Window) -> tuple[np.ndarray, np.ndarray]:
    """(saturated, defective), (h, w) bool: pixels flagged in the ``MSK_QUALIT`` of any of ``refs``."""
    shape = (int(window.height), int(window.width))
    saturated, defective = np.zeros(shape, bool), np.zeros(shape, bool)
    indexes = [*QUALITY_DEFECTIVE_BANDS, QUALITY_SATURATED_BAND]
    for ref in refs:
        flags = product._nearest(ref, window, indexes=indexes) > 0
        defective |= flags[:-1].any(axis=0)
        saturated |= flags[-1]
    return saturated, defective
