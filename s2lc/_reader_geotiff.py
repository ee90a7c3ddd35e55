"""A plain multi-band GeoTIFF (or any raster GDAL reads) as a product: the user's own export.

Internal to :mod:`s2lc.product`. Band names come from the band descriptions ("B04", "b4",
"B04 red" …) or from a mapping ``{"B04": 1, …}``; values are read as they are (no offset, the
user's export is taken to be in the pre-04.00 DN convention already); no data is the file's
nodata value, and NaN in a floating-point file.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from s2lc._reader_common import DatasetPool, Grid, ProductSource, RasterRef, one_line
from s2lc.errors import BandError, ProductError
from s2lc.gdal import gdal_env
from s2lc.sentinel2 import BAND_IDS, band

__all__ = ["open_geotiff", "parse_band_mapping"]

logger = logging.getLogger(__name__)

_DESCRIPTION_RE = re.compile(r"^\s*B0?([1-9]|1[0-2]|8A)(?![0-9A-Za-z])", re.IGNORECASE)
_HINT = "name them: bands={'B04': 1, 'B03': 2, 'B02': 3}"


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
    if bands is not None:
        mapping = parse_band_mapping(bands, dataset.count, name)
    else:
        found = {}
        for index, description in enumerate(dataset.descriptions, start=1):
            band_id = _band_from_description(description)
            if band_id is not None:
                if band_id in found:
                    raise ProductError(f"{name}: bands {found[band_id]} and {index} are both described as {band_id}; {_HINT}")
                found[band_id] = index
        if not found:
            raise ProductError(
                f"{name}: its band descriptions {list(dataset.descriptions)} do not name Sentinel-2 bands; {_HINT}"
            )
        mapping = {b: found[b] for b in BAND_IDS if b in found}
    resolution = int(round(t.a))
    refs = {}
    for band_id, index in mapping.items():
        nodata = dataset.nodatavals[index - 1]
        refs[band_id] = RasterRef(
            path=name, name=name, factor=1, shape=(dataset.height, dataset.width), index=index, resolution=resolution,
            nodata=nodata, invalid=() if nodata is None else (float(nodata),),
        )
    logger.info("%s: bands %s", name, ", ".join(f"{b}={i}" for b, i in mapping.items()))
    nodata_values = {int(r.nodata) if float(r.nodata).is_integer() else r.nodata for r in refs.values() if r.nodata is not None}
    return ProductSource(
        path=name,
        id=path.stem,
        level="GeoTIFF",
        grid=Grid(dataset.crs, t, dataset.width, dataset.height),
        bands=refs,
        nodata_refs=tuple(refs.values()),
        offsets={b: 0.0 for b in refs},
        special_values={"NODATA": nodata_values.pop()} if len(nodata_values) == 1 else {},
        no_cloud_mask=f"{name}: a GeoTIFF carries no cloud mask",
        datasets=pool,
    )
