"""What the SAFE and GeoTIFF readers share: the grid, references to raster files, and opening them.

Internal to :mod:`s2lc.product`; :class:`Grid` is public through it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from s2lc.errors import ProductError
from s2lc.gdal import gdal_env
from s2lc.masks import GmlMask
from s2lc.sentinel2 import QUANTIFICATION_VALUE

logger = logging.getLogger(__name__)

def one_line(text: object) -> str:
    """A GDAL message on one line."""
    return " ".join(str(text).split())


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: the product's common 10 m grid."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (metres)."""
        return float(self.transform.a)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top)."""
        left, top = self.transform.c, self.transform.f
        return left, top + self.height * self.transform.e, left + self.width * self.transform.a, top

    def window_transform(self, window: Window) -> Affine:
        """The affine transform of a window of this grid."""
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: CRS (EPSG code and WKT), transform (GDAL order a, b, c, d, e, f), size."""
        return {
            "crs": self.crs.to_string(),
            "epsg": self.crs.to_epsg(),
            "wkt": self.crs.to_wkt(),
            "transform": [float(v) for v in tuple(self.transform)[:6]],
            "width": self.width,
            "height": self.height,
            "resolution": self.resolution,
            "bounds": [float(v) for v in self.bounds],
        }


@dataclass(frozen=True)
class RasterRef:
    """One band (or mask band) of a raster file, lined up with the grid."""

    path: str  #: what rasterio opens (``/vsizip/…`` inside a zip)
    name: str  #: the path quoted in messages
    factor: int  #: file pixel size / grid pixel size
    shape: tuple[int, int]  #: (rows, cols) of the file
    index: int = 1  #: 1-based band index in the file
    resolution: int = 10  #: file pixel size in metres
    nodata: float | None = None  #: the DN that means no data
    invalid: tuple[float, ...] = ()  #: DN read as no data (nodata, saturated)
    offset: float = 0.0  #: added to DN ...
    scale: float = 1.0  #: ... then multiplied, to reach the pre-04.00 DN convention


@dataclass(frozen=True)
class CloudLayer:
    """Where a product's cloud mask comes from."""

    kind: str  #: "SCL", "MSK_CLASSI_B00", "MSK_CLOUDS_B00" or "s2cloudless" (detected by s2lc)
    rasters: tuple[RasterRef, ...] = ()  #: the SCL band, or the cloud bands of MSK_CLASSI_B00
    gml: GmlMask | None = None  #: the polygons of MSK_CLOUDS_B00


@dataclass
class ProductSource:
    """Everything a reader found in a product, for :class:`s2lc.product.Product` to read from."""

    path: str
    id: str
    level: str
    grid: Grid
    bands: dict[str, RasterRef]  #: in ESA order
    nodata_refs: tuple[RasterRef, ...]  #: rasters whose ``nodata`` DN marks no data
    baseline: str | None = None
    spacecraft: str | None = None
    sensing_time: datetime | None = None
    tile: str | None = None
    quantification_value: float = QUANTIFICATION_VALUE
    offsets: dict[str, float] = field(default_factory=dict)
    special_values: dict[str, int] = field(default_factory=dict)
    cloud_cover: float | None = None
    missing: dict[str, str] = field(default_factory=dict)  #: band -> why it is not available
    footprint: RasterRef | GmlMask | None = None  #: detector footprint (0 / outside = no data)
    warped_from: dict[str, Any] | None = None  #: a GeoTIFF warped to UTM on read: its own CRS and pixel size
    scl: RasterRef | None = None  #: Level-2A scene classification (class 0 = no data)
    #: band -> its quality mask MSK_QUALIT_Bxx (Level-1C from baseline 04.00; eight byte bands)
    quality: dict[str, RasterRef] = field(default_factory=dict)
    cloud: CloudLayer | None = None
    no_cloud_mask: str = ""  #: what a warning says when the product has no cloud mask: "<id>: no cloud mask (...)"
    datasets: DatasetPool | None = None


def to_units(dn: np.ndarray, ref: RasterRef, dtype: type = np.float32) -> np.ndarray:
    """``dtype`` (float32; float64 where exact sums need it) in the units of
    :meth:`s2lc.product.Product.read` (offset added, then scaled); no data not yet NaN."""
    values = dn.astype(dtype)
    if ref.offset:
        values += dtype(ref.offset)
    if ref.scale != 1.0:
        values *= dtype(ref.scale)
    return values


def valid_dn(dn: np.ndarray, ref: RasterRef) -> np.ndarray:
    """(h, w) bool: DN that are none of ``ref.invalid`` (nor NaN, in a float file)."""
    valid = ~np.isin(dn, ref.invalid) if ref.invalid else np.ones(dn.shape, bool)
    if np.issubdtype(dn.dtype, np.floating):
        valid &= np.isfinite(dn)
    return valid


class DatasetPool:
    """Open rasterio datasets by path, opened once and closed together."""

    def __init__(self) -> None:
        self._open: dict[str, rasterio.io.DatasetReader] = {}

    def get(self, path: str, name: str) -> rasterio.io.DatasetReader:
        """The open dataset of ``path``.

        Raises:
            ProductError: GDAL cannot open it (``name`` in the message).
        """
        if path not in self._open:
            try:
                with gdal_env():
                    self._open[path] = rasterio.open(path)
            except RasterioError as exc:
                raise ProductError(
                    f"{name}: cannot be opened as a raster ({one_line(exc)}); "
                    "the file is damaged or truncated, re-download the product"
                ) from None
        return self._open[path]

    def read(self, ref: RasterRef, window: Window | None, indexes: int | list[int] | None = None,
             out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Pixels of a window of ``ref``'s file (band ``ref.index`` unless ``indexes`` is given).

        With ``out_shape``, the window (None: the whole file) is resampled to that shape by
        averaging; GDAL decodes a JPEG 2000 at the coarsest resolution level that is fine enough.

        Raises:
            ProductError: decoding failed (a damaged or truncated file).
        """
        dataset = self.get(ref.path, ref.name)
        resampled = {} if out_shape is None else {"out_shape": out_shape, "resampling": Resampling.average}
        try:
            with gdal_env():
                return dataset.read(ref.index if indexes is None else indexes, window=window, **resampled)
        except RasterioError as exc:
            raise ProductError(
                f"{ref.name}: cannot read its pixels ({one_line(exc)}); the file is damaged or truncated, re-download the product"
            ) from None

    def add(self, path: str, dataset: Any) -> None:
        """Hold an already open dataset (a :class:`rasterio.vrt.WarpedVRT`, say) under ``path``."""
        self._open[path] = dataset

    def close(self) -> None:
        """Close every dataset, the last opened first (a warped VRT before the file under it)."""
        for dataset in reversed(list(self._open.values())):
            dataset.close()
        self._open.clear()


def check_on_grid(dataset: rasterio.io.DatasetReader, name: str, grid: Grid) -> int:
    """The integer factor between a file's pixels and the grid's.

    Raises:
        ProductError: the file is not north-up, in another CRS, or does not cover the grid exactly.
    """
    t = dataset.transform
    factor = t.a / grid.resolution
    problem = None
    if t.b or t.d or t.a <= 0 or t.e != -t.a:
        problem = f"its pixels are not square and north-up (transform {tuple(t)[:6]})"
    elif dataset.crs != grid.crs:
        problem = f"its CRS {dataset.crs} differs from the product's {grid.crs}"
    elif abs(factor - round(factor)) > 1e-9 or round(factor) < 1:
        problem = f"its {t.a:g} m pixels are not a multiple of the {grid.resolution:g} m grid"
    elif abs(t.c - grid.transform.c) > 1e-6 or abs(t.f - grid.transform.f) > 1e-6:
        problem = f"its corner ({t.c:.2f}, {t.f:.2f}) differs from the grid's ({grid.transform.c:.2f}, {grid.transform.f:.2f})"
    elif dataset.width * round(factor) != grid.width or dataset.height * round(factor) != grid.height:
        problem = (
            f"its {dataset.width} x {dataset.height} pixels of {t.a:g} m do not cover the "
            f"{grid.width} x {grid.height} grid of {grid.resolution:g} m"
        )
    if problem:
        raise ProductError(f"{name}: {problem}; the product is damaged or was cut inconsistently")
    return int(round(factor))
