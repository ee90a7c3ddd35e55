"""A plain multi-band GeoTIFF (or any raster GDAL reads) as a product: the user's own export.

Internal to :mod:`s2lc.product`. Band names come from the band descriptions ("B04", "b4",
"B04 red" …) or from a mapping ``{"B04": 1, …}``; values are read as they are (no offset, the
user's export is taken to be in the pre-04.00 DN convention already); no data is the file's
nodata value, and NaN in a floating-point file.

A raster whose CRS is not projected in metres (EPSG:4326 from Earth Engine or an archive, say)
is warped on read to the UTM zone of its centre at 10 m, on the 10 m lattice of that zone
(origins on multiples of 10 m, so two dates of one place share a grid), with cubic resampling
that leaves no-data out: patches are then 640 m, as the model learnt them, and areas are in
hectares. Outside the source and where it has no data, the warped grid has no data: the file's
nodata value, else NaN for floating point and 0 for integers (Sentinel-2's no-data DN).

The sensing date comes from the file's tags (:data:`DATE_TAGS`), else it is unknown.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.vrt import WarpedVRT

from s2lc._reader_common import DatasetPool, Grid, ProductSource, RasterRef, one_line
from s2lc.errors import BandError, ProductError
from s2lc.gdal import gdal_env
from s2lc.sentinel2 import BAND_IDS, band
from s2lc.suitability import in_ground_metres, pixel_size_m, utm_bounds
from s2lc.times import iso_time, with_zone

__all__ = ["DATE_TAGS", "open_geotiff", "parse_band_mapping", "sensing_time_from_tags"]

logger = logging.getLogger(__name__)

_DESCRIPTION_RE = re.compile(r"^\s*B0?([1-9]|1[0-2]|8A)(?![0-9A-Za-z])", re.IGNORECASE)
_HINT = "name them: bands={'B04': 1, 'B03': 2, 'B02': 3}"
#: Tags that may give a GeoTIFF's acquisition date, the most specific first. TIFFTAG_DATETIME is
#: last: by the TIFF standard it is when the file was written, which archives often set to the
#: acquisition but a GIS sets to the export.
DATE_TAGS = ("S2LC_SENSING_TIME", "SENSING_TIME", "SENSING_DATE", "DATATAKE_SENSING_START", "PRODUCT_START_TIME",
             "ACQUISITION_DATE", "ACQUISITION_TIME", "DATE_ACQUIRED", "ACQUIRED", "DATE", "TIFFTAG_DATETIME")
#: Pixel size of the grid a raster not in metres is warped to.
WARP_RESOLUTION = 10
_DATE_FORMATS = ("%Y%m%d", "%Y%m%dT%H%M%S", "%Y:%m:%d %H:%M:%S", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S")


def _band_from_description(description: str | None) -> str | None:
    match = _DESCRIPTION_RE.match(description or "")
    if match is None:
        return None
    number = match.group(1).upper()
    return "B8A" if number == "8A" else f"B{int(number):02d}"


def parse_band_mapping(mapping: Mapping[str, int], count: int, source: str) -> dict[str, int]:
    """Check a band mapping ``{"B04": 1, …}`` against a file of ``count`` bands.

    Returns:
        band id -> 1-based index, in ESA order, ids normalised ("b4" is not accepted; "b04" is).

    Raises:
        BandError: an unknown band id.
        ProductError: an index outside ``1 … count``, or two bands on one index.
    """
    result: dict[str, int] = {}
    for key, index in mapping.items():
        try:
            band_id = band(key).id
        except KeyError as exc:
            raise BandError(f"{source}: {exc.args[0]}") from None
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= count:
            raise ProductError(f"{source}: band {band_id} mapped to {index!r}, but the file has bands 1 to {count}; {_HINT}")
        result[band_id] = index
    if len(set(result.values())) != len(result):
        raise ProductError(f"{source}: two bands mapped to the same index in {dict(mapping)}; give each band its own index")
    return {b: result[b] for b in BAND_IDS if b in result}


def sensing_time_from_tags(tags: Mapping[str, str]) -> tuple[datetime | None, str | None]:
    """A raster's acquisition time from its tags (:data:`DATE_TAGS`, any case), UTC where the
    tag gives no zone, and the tag it came from; ``(None, None)`` when no tag holds a date."""
    upper = {k.upper(): v for k, v in tags.items()}
    for tag in DATE_TAGS:
        text = (upper.get(tag) or "").strip()
        if not text:
            continue
        when = _parse_date(text)
        if when is None:
            logger.warning("the %s tag %r is not a date s2lc reads (YYYY-MM-DD, YYYYMMDD, ISO 8601); "
                           "give the date with --date", tag, text)
            continue
        if tag == "TIFFTAG_DATETIME":
            logger.warning("the date %s comes from TIFFTAG_DATETIME, which is often when the file was written; "
                           "if that is not the acquisition, give it with --date", when.date().isoformat())
        return when, tag
    return None, None


def _parse_date(text: str) -> datetime | None:
    """ISO 8601 or one of :data:`_DATE_FORMATS`, UTC where no zone is given; None if neither."""
    when = iso_time(text)
    if when is not None:
        return when
    for fmt in _DATE_FORMATS:
        try:
            return with_zone(datetime.strptime(text, fmt))
        except ValueError:
            continue
    return None


def _warp(dataset: Any, name: str, pool: DatasetPool) -> tuple[Any, dict[str, Any]]:
    """A WarpedVRT of ``dataset`` on the 10 m UTM grid of its centre (held by ``pool``), and
    what it was warped from."""
    dst, (x0, y0, x1, y1) = utm_bounds(dataset.crs, dataset.transform, dataset.width, dataset.height)
    r = WARP_RESOLUTION
    x0, y0, x1, y1 = math.floor(x0 / r) * r, math.floor(y0 / r) * r, math.ceil(x1 / r) * r, math.ceil(y1 / r) * r
    native = pixel_size_m(dataset.crs, dataset.transform, dataset.width, dataset.height)
    nodata = dataset.nodata
    if nodata is None:
        nodata = float("nan") if np.issubdtype(np.dtype(dataset.dtypes[0]), np.floating) else 0
    vrt = WarpedVRT(dataset, crs=dst, transform=Affine(r, 0, x0, 0, -r, y1), width=int(round((x1 - x0) / r)),
                    height=int(round((y1 - y0) / r)), resampling=Resampling.cubic, nodata=nodata)
    pool.add(name + "#warped", vrt)
    logger.info("%s: %s is not projected in metres: warped to %s at %d m (cubic), its pixels were about %.1f m",
                name, dataset.crs.to_string(), dst.to_string(), r, native)
    return vrt, {"crs": dataset.crs.to_string(), "resolution_m": round(native, 2), "to_crs": dst.to_string(),
                 "resampling": "cubic"}


def open_geotiff(path: Path, bands: Mapping[str, int] | None, pool: DatasetPool) -> ProductSource:
    """Describe a multi-band raster as a product.

    Raises:
        ProductError: GDAL cannot read the file, it has no CRS or is rotated, or its bands are not named.
        BandError: the mapping names an unknown band.
    """
    name = str(path)
    with warnings.catch_warnings():  # a JPEG, say: refused below with what to do, not with rasterio's warning
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with gdal_env():
                rasterio.open(path).close()
        except RasterioError as exc:
            raise ProductError(
                f"{name}: neither a .SAFE folder, a zipped .SAFE nor a raster GDAL can read ({one_line(exc)}); pass one of those"
            ) from None
        dataset = pool.get(name, name)
    if dataset.crs is None:
        raise ProductError(f"{name}: has no coordinate reference system; export it with one (e.g. its UTM zone)")
    t = dataset.transform
    if t.is_identity:  # rasterio's default when the file has none
        raise ProductError(f"{name}: has no geotransform (where its pixels are); export it georeferenced")
    if t.b or t.d or t.a <= 0 or t.e >= 0:
        raise ProductError(
            f"{name}: its grid is rotated or not north-up (transform {tuple(t)[:6]}); warp it to a north-up grid first"
        )
    mapping = _band_mapping(dataset, bands, name)
    when, tag = sensing_time_from_tags(dataset.tags())
    if when is not None:
        logger.info("%s: sensing time %s from its %s tag", name, when.isoformat(), tag)
    warped_from, read_path, resolution = None, name, int(round(t.a))
    if not in_ground_metres(dataset.crs):
        dataset, warped_from = _warp(dataset, name, pool)
        read_path, resolution = name + "#warped", int(round(warped_from["resolution_m"]))
    refs = {}
    for band_id, index in mapping.items():
        nodata = dataset.nodatavals[index - 1]
        refs[band_id] = RasterRef(
            path=read_path, name=name, factor=1, shape=(dataset.height, dataset.width), index=index,
            resolution=resolution, nodata=nodata,
            invalid=() if nodata is None or np.isnan(nodata) else (float(nodata),),
        )
    logger.info("%s: bands %s", name, ", ".join(f"{b}={i}" for b, i in mapping.items()))
    nodata_values = {int(r.nodata) if float(r.nodata).is_integer() else r.nodata
                     for r in refs.values() if r.nodata is not None and not np.isnan(r.nodata)}
    return ProductSource(
        path=name,
        id=path.stem,
        level="GeoTIFF",
        grid=Grid(dataset.crs, dataset.transform, dataset.width, dataset.height),
        bands=refs,
        nodata_refs=tuple(refs.values()),
        sensing_time=when,
        offsets={b: 0.0 for b in refs},
        special_values={"NODATA": nodata_values.pop()} if len(nodata_values) == 1 else {},
        no_cloud_mask=f"{name}: a GeoTIFF carries no cloud mask",
        datasets=pool,
        warped_from=warped_from,
    )


def _band_mapping(dataset: Any, bands: Mapping[str, int] | None, name: str) -> dict[str, int]:
    """Band id -> 1-based index, from ``bands`` or else from the band descriptions, in ESA order."""
    if bands is not None:
        return parse_band_mapping(bands, dataset.count, name)
    found: dict[str, int] = {}
    for index, description in enumerate(dataset.descriptions, start=1):
        band_id = _band_from_description(description)
        if band_id is not None:
            if band_id in found:
                raise ProductError(f"{name}: bands {found[band_id]} and {index} are both described as {band_id}; {_HINT}")
            found[band_id] = index
    if not found:
        raise ProductError(f"{name}: its band descriptions {list(dataset.descriptions)} do not name Sentinel-2 bands; {_HINT}")
    return {b: found[b] for b in BAND_IDS if b in found}
