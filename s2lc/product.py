"""Open a Sentinel-2 product and read its bands and masks on the common 10 m grid, window by window.

Inputs: a ``.SAFE`` folder or a zipped ``.SAFE`` (read in place, never extracted), Level-1C or
Level-2A, processing baselines 02.xx to 05.xx; or a plain multi-band GeoTIFF.

Units: :meth:`Product.read` returns float32 values in the **pre-04.00 DN convention**,
reflectance x 10000 (top of atmosphere for L1C, bottom of atmosphere for L2A): the product's
``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` (-1000 from baseline 04.00) is added to the DN, so a
baseline 04.00 product and an older one of the same ground give the same numbers. NaN marks no
data (the NODATA and SATURATED special values; :meth:`Product.read_with_saturation` tells the
saturated ones apart). A GeoTIFF's values are returned as stored.

See ``docs/reader.md`` for resampling and masks.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from s2lc._reader_clouds import choose_clouds
from s2lc._reader_common import DatasetPool, Grid, ProductSource, RasterRef, to_units, valid_dn
from s2lc._reader_geotiff import open_geotiff
from s2lc._reader_masks import CLOUD_MASKERS, NDSI_BANDS, detect_clouds, quality_flags, snow_from_ndsi
from s2lc._reader_safe import open_safe
from s2lc.errors import BandError, ProductError
from s2lc.gdal import gdal_env
from s2lc.masks import GmlMask, Masks, rasterize_polygons, scl_defective, scl_nodata, scl_snow
from s2lc.options import Clouds, choose
from s2lc.resampling import cell_index, source_window, upsample_cubic, upsample_nearest
from s2lc.sentinel2 import L2A_MISSING_BANDS, MTD_FILES, band
from s2lc.times import iso_time, with_zone

__all__ = ["Grid", "Masks", "Product", "open_product", "UNITS"]

logger = logging.getLogger(__name__)

#: What the numbers of :meth:`Product.read` mean.
UNITS = "reflectance x 10000 (DN in the pre-04.00 convention: offset removed), float32, NaN = no data"
#: Threads that decode a product's bands side by side; None: one per core. A process that shares
#: the machine with others (a Dask worker, :mod:`s2lc.batch`) sets its share.
DECODE_THREADS: int | None = None
#: Pixels of the 10 m grid per strip when :meth:`Product.info` scans the masks.
_STRIP_PIXELS = 1 << 24


def _nodata(dn: np.ndarray, ref: RasterRef) -> np.ndarray:
    nodata = dn == ref.nodata if ref.nodata is not None else np.zeros(dn.shape, bool)
    if np.issubdtype(dn.dtype, np.floating):
        nodata |= ~np.isfinite(dn)
    return nodata


class Product:
    """An open Sentinel-2 product (or GeoTIFF); use :func:`open_product`. A context manager.

    Its files stay open (GDAL's block cache then serves neighbouring windows); like a rasterio
    dataset, a Product is not thread-safe: open one per thread.

    Attributes:
        path: the path opened.
        id: product name (``S2A_MSIL1C_…`` without ``.SAFE``; a GeoTIFF's file stem).
        level: ``"L1C"``, ``"L2A"`` or ``"GeoTIFF"``.
        baseline: processing baseline, ``"04.00"`` (None for a GeoTIFF).
        spacecraft: ``"Sentinel-2A"`` … or None.
        sensing_time: start of sensing (UTC) or None.
        tile: MGRS tile ``"T33UUU"`` or None.
        quantification_value: DN per unit reflectance (10000).
        offsets: band -> offset added to the DN when reading (-1000.0 from baseline 04.00, else 0.0).
        special_values: ``{"NODATA": 0, "SATURATED": 65535}``.
        cloud_cover: the MTD's cloud cover assessment in percent, or None.
        grid: the common 10 m grid (a GeoTIFF's own grid, or the UTM grid it is warped to).
        warped_from: for a GeoTIFF not projected in metres, warped on read to the 10 m UTM grid of
            its centre: ``{"crs": its CRS, "resolution_m": its pixel size in metres, "to_crs": …,
            "resampling": "cubic"}``; else None.
    """

    def __init__(self, source: ProductSource) -> None:
        self.path: str = source.path
        self.id: str = source.id
        self.level: str = source.level
        self.baseline: str | None = source.baseline
        self.spacecraft: str | None = source.spacecraft
        self.sensing_time: datetime | None = source.sensing_time
        self.tile: str | None = source.tile
        self.quantification_value: float = source.quantification_value
        self.offsets: dict[str, float] = dict(source.offsets)
        self.special_values: dict[str, int] = dict(source.special_values)
        self.cloud_cover: float | None = source.cloud_cover
        self.grid: Grid = source.grid
        self.warped_from: dict[str, Any] | None = source.warped_from
        self._source = source
        self._datasets: DatasetPool = source.datasets or DatasetPool()
        self._clouds_coarse: np.ndarray | None = None  # the detected cloud mask, once computed
        self._decoders: ThreadPoolExecutor | None = None  # decode bands side by side (_each_band)

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.level} baseline={self.baseline} {self.grid.width}x{self.grid.height}>"

    def __enter__(self) -> Product:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the files."""
        if self._decoders is not None:
            self._decoders.shutdown()
            self._decoders = None
        self._datasets.close()

    def _each_band(self, read: Callable[[RasterRef], np.ndarray], refs: Sequence[RasterRef]) -> list[np.ndarray]:
        """``read(ref)`` for each of ``refs``: side by side on the product's decoding threads where
        they are distinct files (GDAL decodes each on one thread, :data:`s2lc.gdal.GDAL_OPTIONS`),
        else in turn (the bands of one GeoTIFF share a dataset, which is not thread-safe)."""
        if len(refs) < 2 or len({r.path for r in refs}) < len(refs):
            return [read(r) for r in refs]
        if self._decoders is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            self._decoders = ThreadPoolExecutor(max_workers=DECODE_THREADS or cores, thread_name_prefix="s2lc-decode")
        return list(self._decoders.map(read, refs))

    @property
    def bands_available(self) -> tuple[str, ...]:
        """Bands that can be read, in ESA order."""
        return tuple(self._source.bands)

    @property
    def snow_source(self) -> str | None:
        """Where snow and ice come from: ``"SCL"`` (Level-2A), ``"NDSI"`` (a test on B03, B04, B08
        and B11, for Level-1C and GeoTIFFs that have them), or None."""
        if self._source.scl is not None:
            return "SCL"
        if self.level != "L2A" and set(NDSI_BANDS) <= set(self._source.bands):
            return "NDSI"
        return None

    @property
    def cloud_source(self) -> str | None:
        """The layer clouds come from (``"SCL"``, ``"MSK_CLASSI_B00"``, ``"MSK_CLOUDS_B00"``, or
        ``"s2cloudless"`` where s2lc detects them), or None."""
        return None if self._source.cloud is None else self._source.cloud.kind

    def native_resolution(self, band_id: str) -> int:
        """The resolution (m) of the file a band is read from, e.g. 60 for B04 of an L2A that kept only R60m.

        Raises:
            BandError: the band is unknown or not available.
        """
        return self._ref(band_id).resolution

    def pixel_size(self, band_id: str) -> float:
        """The pixel size (m) of the data a band is read from: :meth:`native_resolution`, or for a
        GeoTIFF warped on read (:attr:`warped_from`) its own pixel size, estimated in metres.

        Raises:
            BandError: the band is unknown or not available.
        """
        ref = self._ref(band_id)
        if self.warped_from:
            return float(self.warped_from["resolution_m"])
        if self.level == "GeoTIFF":  # its own grid, unrounded (ref.resolution is whole metres)
            return abs(float(self.grid.transform.a))
        return float(ref.resolution)

    def dtype(self, band_id: str) -> str:
        """The data type of a band in its file (``"uint16"`` for Sentinel-2 DN).

        Raises:
            BandError: the band is unknown or not available.
            ProductError: its file cannot be opened.
        """
        ref = self._ref(band_id)
        return self._datasets.get(ref.path, ref.name).dtypes[ref.index - 1]

    def _ref(self, band_id: str) -> RasterRef:
        try:
            key = band(band_id).id
        except (KeyError, AttributeError):
            raise BandError(f"{self.path}: unknown band {band_id!r}; bands are {', '.join(self.bands_available)}") from None
        if key in self._source.bands:
            return self._source.bands[key]
        if self.level == "L2A" and key in L2A_MISSING_BANDS:
            raise BandError(
                f"{self.path}: Level-2A products have no {key} ({band(key).name}); "
                "leave it out, or read it from the Level-1C product"
            )
        if key in self._source.missing:
            raise BandError(f"{self.path}: {key} is not available: {self._source.missing[key]}")
        raise BandError(f"{self.path}: has no {key}; it has {', '.join(self.bands_available)}")

    def _window(self, window: Window | None) -> Window:
        if window is None:
            return Window(0, 0, self.grid.width, self.grid.height)
        values = (window.col_off, window.row_off, window.width, window.height)
        if any(float(v) != int(v) for v in values):
            raise ProductError(f"{self.path}: window {window} must have whole-pixel offsets and sizes; round it")
        col, row, width, height = (int(v) for v in values)
        if width < 1 or height < 1 or col < 0 or row < 0 or col + width > self.grid.width or row + height > self.grid.height:
            raise ProductError(
                f"{self.path}: window {window} is not inside the {self.grid.width} x {self.grid.height} grid; "
                "use a window within it (rasterio.windows.Window(col_off, row_off, width, height))"
            )
        return Window(col, row, width, height)

    def read(self, bands: Sequence[str], window: Window | None = None) -> np.ndarray:
        """Read bands on the 10 m grid.

        20 m and 60 m bands are upsampled with no-data-aware Keys cubic interpolation, aligned on
        pixel centres; a window read equals the same region of a full read exactly, and reads only
        the file region it needs.

        Args:
            bands: band ids, e.g. ``["B04", "B03", "B02"]`` (any order, case-insensitive).
            window: a window of :attr:`grid`; None reads the whole grid.

        Returns:
            (len(bands), h, w) float32, reflectance x 10000 (the pre-04.00 DN convention), NaN where no data.

        Raises:
            BandError: a band is unknown or not in the product (B10 of an L2A).
            ProductError: the window lies outside the grid, or a file cannot be decoded.
        """
        return self._read(bands, window, False)[0]

    def read_with_saturation(self, bands: Sequence[str], window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`read`, and where the bands are saturated.

        Returns:
            ``(values, saturated)``: values as :meth:`read` (NaN where saturated, too); saturated
            (h, w) bool, True where any band holds the product's SATURATED value (for a 20 m or
            60 m band, on the 10 m pixels its saturated pixel covers). All False where the
            product declares no SATURATED value (a GeoTIFF).

        Raises:
            As :meth:`read`.
        """
        return self._read(bands, window, True)

    def _read(self, bands: Sequence[str], window: Window | None, flag: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(bands, str):
            bands = [bands]
        refs = [self._ref(b) for b in bands]
        if not refs:
            raise BandError(f"{self.path}: no bands asked for; name at least one of {', '.join(self.bands_available)}")
        window = self._window(window)
        shape = (int(window.height), int(window.width))
        out = np.empty((len(refs), *shape), dtype=np.float32)
        saturated = np.zeros(shape, bool) if flag else None
        level = self.special_values.get("SATURATED") if flag else None

        def read(ref: RasterRef) -> tuple[np.ndarray, np.ndarray | None]:
            with gdal_env():  # in this thread, which may be a decoding thread
                return self._read_band(ref, window, level)

        for i, (values, band_saturated) in enumerate(self._each_band(read, refs)):
            out[i] = values
            if band_saturated is not None:
                saturated |= band_saturated
        return out, saturated

    def _read_band(self, ref: RasterRef, window: Window, saturated_dn: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
        """(values, where the DN is ``saturated_dn`` on the 10 m window, or None without one)."""
        coarse = window if ref.factor == 1 else source_window(window, ref.factor, ref.shape, "cubic")
        dn = self._datasets.read(ref, coarse)
        saturated = None
        if saturated_dn is not None:
            saturated = dn == saturated_dn
            if ref.factor != 1:
                saturated = upsample_nearest(saturated, ref.factor, data_window=coarse, window=window)
        valid = valid_dn(dn, ref)
        values = to_units(dn, ref)
        if ref.factor == 1:
            values[~valid] = np.nan
            return values, saturated
        values = upsample_cubic(values, ref.factor, data_window=coarse, window=window, coarse_shape=ref.shape, valid=valid)
        return values, saturated

    def read_averaged(self, bands: Sequence[str], shape: tuple[int, int], *, exact: bool = False) -> np.ndarray:
        """Read bands averaged onto a coarse grid of ``shape`` that covers the whole grid (cell
        ``(i, j)`` covers 10 m rows ``i·h/rows`` to ``(i+1)·h/rows``, and likewise columns).

        For masks, detectors and previews that need no 10 m detail. By default each file is
        decoded once, at the coarsest JPEG 2000 resolution level fine enough (for a 10 m band of
        a full tile onto a 120 m grid: 1/8, 1 373 pixels across), and GDAL averages that onto the
        cells: fast, and close to the cell's mean where the cell is of one kind, but a reduced
        level is clipped at DN 0, so a dark surface (water in the short-wave infrared) reads
        differently in a product and in its ≥ 04.00 reprocessing, whose DN are 1000 higher.

        With ``exact``, each file is decoded at full resolution, strip by strip, the offset is
        removed, and every cell is the mean (in float64) of the valid pixels whose centres it
        holds: a product and its reprocessed twin give identical values. It costs a full decode
        of every band (docs/performance.md).

        Units as :meth:`read`. NaN where a cell holds no valid pixel; by default a cell across
        the swath edge averages its zeros in, with ``exact`` only its valid pixels count.

        Raises:
            BandError: a band is unknown or not in the product. ProductError: a file cannot be decoded.
        """
        out = np.empty((len(bands), *shape), dtype=np.float32)

        def read(ref: RasterRef) -> np.ndarray:
            with gdal_env():
                if exact:
                    return self._cell_means(ref, shape)
                dn = self._datasets.read(ref, None, out_shape=shape)
                values = to_units(dn, ref)
                values[~valid_dn(dn, ref)] = np.nan
                return values

        for i, values in enumerate(self._each_band(read, [self._ref(b) for b in bands])):
            out[i] = values
        return out

    def _cell_means(self, ref: RasterRef, shape: tuple[int, int]) -> np.ndarray:
        """(rows, cols) float32: the mean of the valid full-resolution values of ``ref`` whose
        pixel centres fall in each cell of ``shape`` (cells smaller than a pixel take the pixel
        that holds their centre); NaN where none is valid."""
        (fh, fw), (rows, cols) = ref.shape, shape
        if rows > fh or cols > fw:  # finer cells than pixels: the pixel under each cell's centre
            dn = self._datasets.read(ref, None)
            values = to_units(dn, ref)
            values[~valid_dn(dn, ref)] = np.nan
            r = ((np.arange(rows) + 0.5) * fh / rows).astype(np.intp)
            c = ((np.arange(cols) + 0.5) * fw / cols).astype(np.intp)
            return values[np.ix_(r, c)]
        row_cell, col_cell = cell_index(0, fh, fh, rows), cell_index(0, fw, fw, cols)
        col_starts = np.flatnonzero(np.r_[True, np.diff(col_cell) > 0])  # cells are runs of columns
        sums, counts = np.zeros(shape), np.zeros(shape)
        # rows decoded at a time: whole JPEG 2000 tiles (a strip cutting them decodes each twice),
        # 1 024 rows of a full tile's 10 m band, 90 MB in float64
        step = max(self._datasets.get(ref.path, ref.name).block_shapes[ref.index - 1][0], 256)
        for r0 in range(0, fh, step):
            dn = self._datasets.read(ref, Window(0, r0, fw, min(step, fh - r0)))
            valid = valid_dn(dn, ref)
            values = to_units(dn, ref, np.float64)  # exact for integer DN
            values[~valid] = 0.0
            cells = row_cell[r0:r0 + len(dn)]
            starts = np.flatnonzero(np.r_[True, np.diff(cells) > 0])  # and runs of rows
            block = np.add.reduceat(values, col_starts, axis=1)
            sums[cells[starts]] += np.add.reduceat(block, starts, axis=0)
            block = np.add.reduceat(valid, col_starts, axis=1, dtype=np.int64)
            counts[cells[starts]] += np.add.reduceat(block, starts, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan).astype(np.float32)

    def _detected_clouds(self) -> np.ndarray:
        """The cloud mask detected by s2cloudless or ukis-csmask (the cloud layer's kind) on the
        detector's coarse grid (computed once)."""
        if self._clouds_coarse is None:
            self._clouds_coarse = detect_clouds(self)
        return self._clouds_coarse

    def block_rows(self, bands: Sequence[str]) -> int:
        """Rows of the 10 m grid that the files of ``bands`` decode in one piece (the least common
        multiple of their internal tile or strip heights): windows of 10 m bands aligned to it decode
        each piece once (20/60 m bands also read the cubic kernel's reach beyond the window).

        Raises:
            BandError: a band is unknown or not available. ProductError: a file cannot be opened.
        """
        rows = 1
        for ref in {self._ref(b) for b in bands}:
            height = self._datasets.get(ref.path, ref.name).block_shapes[ref.index - 1][0]
            rows = math.lcm(rows, height * ref.factor)
        return rows

    def _nearest(self, ref: RasterRef, window: Window, indexes: list[int] | None = None) -> np.ndarray:
        coarse = source_window(window, ref.factor, ref.shape, "nearest")
        data = self._datasets.read(ref, coarse, indexes=indexes)
        return upsample_nearest(data, ref.factor, data_window=coarse, window=window)

    def read_masks(self, window: Window | None = None, *, read_bands: Sequence[str] = (),
                   saturated: np.ndarray | None = None) -> Masks:
        """No-data, cloud, snow, saturated and defective masks on the 10 m grid.

        No data: the reference band (the finest, preferring B04) equals the NODATA value, or lies
        outside its detector footprint (MSK_DETFOO), or (L2A) the SCL says no data. Clouds: the
        L2A SCL classes :data:`s2lc.sentinel2.SCL_CLOUD_CLASSES`; L1C ``MSK_CLASSI_B00`` or
        ``MSK_CLOUDS_B00``; s2cloudless's detection where :func:`open_product` was asked for it
        (``clouds``); None where there is none. Snow and ice (:attr:`snow_source`): the SCL, or
        :func:`s2lc.masks.ndsi_snow`. Saturated: the SATURATED value in the bands (``read_bands``,
        else the reference band), or ``MSK_QUALIT``; defective: SCL class 1, or ``MSK_QUALIT``.
        Coarse layers are upsampled by nearest neighbour.

        Args:
            window: a window of :attr:`grid`; None for the whole grid.
            read_bands: bands the caller has already read with :meth:`read_with_saturation` for
                this window and whose NaN it counts as no data: their NODATA test is left out here
                instead of decoding them a second time (``nodata`` then covers the other layers
                only), and their ``MSK_QUALIT`` is the one consulted.
            saturated: what :meth:`read_with_saturation` said of ``read_bands``.

        Returns:
            Masks with (h, w) bool arrays; cloud, snow, saturated and defective are False wherever
            ``nodata`` is True, and snow is False under cloud.

        Raises:
            ProductError: the window lies outside the grid, or a mask file cannot be decoded.
        """
        window = self._window(window)
        shape = (int(window.height), int(window.width))
        source = self._source
        nodata = np.zeros(shape, dtype=bool)
        saturated = np.zeros(shape, bool) if saturated is None else saturated.copy()
        defective = np.zeros(shape, bool)
        already = {self._ref(b) for b in read_bands}
        level = self.special_values.get("SATURATED")
        with gdal_env():
            for ref in source.nodata_refs:
                if ref in already and (ref.nodata is None or ref.nodata in ref.invalid):
                    continue  # its NODATA pixels are NaN in what the caller read
                dn = self._nearest(ref, window)
                nodata |= _nodata(dn, ref)
                if level is not None and not read_bands:
                    saturated |= dn == level
            if isinstance(source.footprint, RasterRef):
                nodata |= self._nearest(source.footprint, window) == 0
            elif isinstance(source.footprint, GmlMask):
                nodata |= ~rasterize_polygons(source.footprint.polygons, shape, self.grid.window_transform(window))
            scl = None
            if source.scl is not None:
                scl = self._nearest(source.scl, window)
                nodata |= scl_nodata(scl)
                defective |= scl_defective(scl)
            consulted = [band(b).id for b in read_bands] or [self._reference_band]
            quality = [source.quality[b] for b in consulted if b in source.quality]
            if quality:
                flagged = quality_flags(self, quality, window)
                saturated |= flagged[0]
                defective |= flagged[1]
            cloud = None
            if source.cloud is not None:
                cloud = CLOUD_MASKERS[source.cloud.kind](self, source.cloud, window, scl) & ~nodata
            snow = None
            if self.snow_source is not None:
                snow = (scl_snow(scl) if scl is not None else snow_from_ndsi(self, window)) & ~nodata
                if cloud is not None:
                    snow &= ~cloud
        return Masks(nodata=nodata, cloud=cloud, cloud_source=self.cloud_source, snow=snow,
                     snow_source=self.snow_source, saturated=saturated & ~nodata, defective=defective & ~nodata)

    @property
    def _reference_band(self) -> str:
        ref = self._source.nodata_refs[0] if self._source.nodata_refs else next(iter(self._source.bands.values()))
        return next(b for b, r in self._source.bands.items() if r == ref)

    def mask_fractions(self) -> dict[str, float | None]:
        """Valid-data, cloud, snow, saturated and defective fractions over the whole grid, scanned
        in strips (bounded memory); saturated and defective in the reference band.

        Returns:
            ``valid_fraction`` (of the grid); ``cloud_fraction`` and ``snow_fraction`` (of the
            valid pixels; None without such a mask, or without valid pixels);
            ``saturated_fraction`` and ``defective_fraction`` (of the valid pixels; None without
            valid pixels).
        """
        rows = max(1, _STRIP_PIXELS // self.grid.width)
        counts = dict.fromkeys(("valid", "cloud", "snow", "saturated", "defective"), 0)
        for row in range(0, self.grid.height, rows):
            masks = self.read_masks(Window(0, row, self.grid.width, min(rows, self.grid.height - row)))
            counts["valid"] += int(masks.valid.sum())
            for name in ("cloud", "snow", "saturated", "defective"):
                layer = getattr(masks, name)
                if layer is not None:
                    counts[name] += int(layer.sum())
        total, valid = self.grid.width * self.grid.height, counts["valid"]
        known = {"cloud": self._source.cloud is not None, "snow": self.snow_source is not None,
                 "saturated": True, "defective": True}
        return {"valid_fraction": valid / total,
                **{f"{k}_fraction": counts[k] / valid if known[k] and valid else None for k in known}}

    def info(self) -> dict[str, Any]:
        """A JSON-serialisable summary: metadata, the 10 m grid, bands, offsets applied, mask fractions.

        Raises:
            ProductError: a mask file cannot be decoded.
        """
        return {
            "path": self.path,
            "id": self.id,
            "level": self.level,
            "baseline": self.baseline,
            "spacecraft": self.spacecraft,
            "sensing_time": self.sensing_time.isoformat() if self.sensing_time else None,
            "tile": self.tile,
            "quantification_value": self.quantification_value,
            "offsets": self.offsets,
            "offset_applied": any(self.offsets.values()),
            "units": UNITS,
            "special_values": self.special_values,
            "cloud_cover": self.cloud_cover,
            "grid": self.grid.to_dict(),
            "warped_from": self.warped_from,
            "bands_available": list(self.bands_available),
            "native_resolution": {b: self.native_resolution(b) for b in self.bands_available},
            "bands_missing": dict(self._source.missing),
            "cloud_source": self.cloud_source,
            "snow_source": self.snow_source,
            "quality_masks": sorted(self._source.quality),
            **self.mask_fractions(),
        }


def _starts_like_a_zip(path: Path) -> bool:
    """A zip with another extension: its first bytes are a local file header. (``zipfile.is_zipfile``
    looks for a signature near the end, which a large GeoTIFF can hold by chance.)"""
    try:
        with path.open("rb") as stream:
            return stream.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def open_product(path: str | os.PathLike[str], bands: Mapping[str, int] | None = None, clouds: str = "auto", *,
                 sensing_time: str | datetime | None = None) -> Product:
    """Open a Sentinel-2 product or a multi-band GeoTIFF.

    Args:
        path: a ``.SAFE`` folder (or its MTD file), a zipped ``.SAFE``, or a GeoTIFF.
        bands: for a GeoTIFF only, band id -> 1-based band index, where its band descriptions do
            not name the bands.
        clouds: where the cloud mask comes from, a :class:`~s2lc.options.Clouds`: ``auto`` (the
            product's own mask; for a Level-1C product without one, s2cloudless's detection when
            s2cloudless is installed), ``product``, ``s2cloudless``, ``csmask`` (cloud and cloud
            shadow, with ukis-csmask) or ``none``.
        sensing_time: the acquisition date or time (ISO 8601, e.g. ``"2017-06-21"``; UTC where no
            zone is given), for a GeoTIFF whose tags carry none; it replaces the product's own,
            with a warning where that differs.

    Returns:
        The open product; close it, or use it in a ``with`` block.

    Raises:
        ProductError: ``clouds`` is not a :class:`~s2lc.options.Clouds`; ``sensing_time`` is not a
            date; the path does not exist, is
            not a product, or the product is damaged (corrupt zip, malformed MTD, missing or
            unreadable band file).
        BandError: ``bands`` names an unknown band, or ``clouds="s2cloudless"`` needs bands the product lacks.
    """
    clouds = choose(Clouds, clouds, ProductError)
    when = _as_time(sensing_time) if sensing_time is not None else None
    path = Path(path)
    if not path.exists():
        raise ProductError(f"{path}: no such file or folder; check the path")
    if path.is_file() and path.name in MTD_FILES.values():
        path = path.parent
    is_safe = path.is_dir() or path.suffix.lower() == ".zip" or _starts_like_a_zip(path)
    if is_safe and bands is not None:
        raise ProductError(f"{path}: a band mapping applies to a GeoTIFF only; a .SAFE product names its own bands")
    pool = DatasetPool()
    try:
        source = open_safe(path, pool) if is_safe else open_geotiff(path, bands, pool)
        source = choose_clouds(source, clouds)
        if when is not None:
            if source.sensing_time is not None and source.sensing_time.date() != when.date():
                logger.warning("%s: sensed %s by its metadata; taken as %s, as asked", path,
                               source.sensing_time.isoformat(), when.isoformat())
            source = replace(source, sensing_time=when)
    except BaseException:
        pool.close()
        raise
    logger.debug("opened %s: %s %s, %d bands", path, source.level, source.baseline, len(source.bands))
    return Product(source)


def _as_time(value: str | datetime) -> datetime:
    """A sensing time given by the caller, UTC where it has no zone.

    Raises:
        ProductError: not a datetime, nor an ISO 8601 date or time.
    """
    when = iso_time(value.strip()) if isinstance(value, str) else value
    if not isinstance(when, datetime):
        raise ProductError(f"sensing_time={value!r} is not a date; give it as YYYY-MM-DD or an ISO 8601 time")
    return with_zone(when)
