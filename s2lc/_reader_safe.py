"""Find the band images and mask layers of a ``.SAFE`` product, a folder or a zip read in place.

Internal to :mod:`s2lc.product`. The MTD's ``IMAGE_FILE`` list says where the bands are; mask
layers sit in ``GRANULE/<granule>/QI_DATA`` under the names of :mod:`s2lc.sentinel2`. Zipped
products are never extracted: the MTD and GML masks are read with :mod:`zipfile`, the JPEG 2000
images through GDAL's ``/vsizip/``.
"""

from __future__ import annotations

import logging
import re
import struct
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from affine import Affine

from s2lc._reader_common import CloudLayer, DatasetPool, Grid, ProductSource, RasterRef, check_on_grid
from s2lc.errors import ProductError
from s2lc.masks import GmlMask, parse_gml_mask
from s2lc.metadata import ProductMetadata, parse_mtd
from s2lc.sentinel2 import (
    BAND_IDS,
    CLASSI_CLOUD_BANDS,
    CLASSI_MASK,
    CLOUDS_GML,
    CLOUDS_GML_TYPES,
    DETFOO_MASK,
    IMAGE_FILE_RE,
    MTD_FILES,
    QUALITY_MASK,
    QUALITY_SATURATED_BAND,
    QUANTIFICATION_VALUE,
    RESOLUTIONS,
    SCL_FILE_RE,
    band,
)

__all__ = ["open_safe"]

logger = logging.getLogger(__name__)

#: Bands tried, in order, as the reference for "DN = NODATA means no data" (finest first, then this order).
REFERENCE_BANDS: tuple[str, ...] = ("B04", "B03", "B02", "B08") + tuple(
    b for b in BAND_IDS if b not in ("B04", "B03", "B02", "B08")
)
_MTD_RE = re.compile(r"^(?:([^/]+)/)?(" + "|".join(re.escape(n) for n in MTD_FILES.values()) + r")$")
_NOT_A_PRODUCT = "is not a Sentinel-2 product: it holds no {}; pass a .SAFE folder, a zipped .SAFE or a GeoTIFF"


def check_jp2(stream: BinaryIO, size: int, name: str, tail: bool = True) -> None:
    """Check that a JPEG 2000 file is whole: its boxes add up to the file size and (with ``tail``)
    its codestream ends with the end-of-codestream marker.

    GDAL decodes JPEG 2000 tiles in worker threads when GDAL_NUM_THREADS > 1, and a tile that fails
    to decode there comes back as zeros without an error; a truncated file would read as no data.

    Raises:
        ProductError: the file is truncated or not a JPEG 2000 file.
    """
    position, codestream_end = 0, None
    while position < size:
        stream.seek(position)
        header = stream.read(8)
        if len(header) < 8:
            break
        length, kind = struct.unpack(">I4s", header)
        if length == 1:
            length = struct.unpack(">Q", stream.read(8))[0]
        elif length == 0:
            length = size - position
        if length < 8:
            break
        if kind == b"jp2c":
            codestream_end = position + length
        position += length
    problem = None
    if position != size:
        problem = f"its boxes claim {position} bytes but the file has {size}"
    elif codestream_end is None:
        problem = "it holds no codestream"
    elif tail:
        stream.seek(codestream_end - 2)
        if stream.read(2) != b"\xff\xd9":
            problem = "its codestream does not end with the end-of-codestream marker"
    if problem:
        raise ProductError(f"{name}: truncated or not a JPEG 2000 file ({problem}); the file is damaged, re-download the product")


class _Folder:
    """A ``.SAFE`` folder."""

    def __init__(self, root: Path) -> None:
        self.root = self.path = root
        found = [n for n in MTD_FILES.values() if (root / n).is_file()]
        if not found:
            raise ProductError(f"{root} " + _NOT_A_PRODUCT.format(" or ".join(MTD_FILES.values())))
        self.mtd = found[0]

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def read_bytes(self, rel: str) -> bytes:
        try:
            return (self.root / rel).read_bytes()
        except OSError as exc:
            raise ProductError(f"{self.name(rel)}: cannot be read ({exc.strerror}); check its permissions") from None

    def gdal_path(self, rel: str) -> str:
        return str(self.root / rel)

    def check_jp2(self, rel: str) -> None:
        path = self.root / rel
        with path.open("rb") as stream:
            check_jp2(stream, path.stat().st_size, self.name(rel))

    def name(self, rel: str) -> str:
        return str(self.root / rel)

    def close(self) -> None:
        pass


class _Zip:
    """A zipped ``.SAFE`` (the folder at the archive's root, or its content directly)."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        try:
            self.archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ProductError(
                f"{path}: not a readable zip archive ({exc}); the download is truncated or corrupt, download it again"
            ) from None
        self.names = set(self.archive.namelist())
        matches = [m for m in map(_MTD_RE.match, sorted(self.names)) if m]
        if not matches:
            self.archive.close()
            raise ProductError(f"{path} " + _NOT_A_PRODUCT.format(" or ".join(MTD_FILES.values())))
        self.prefix = f"{matches[0].group(1)}/" if matches[0].group(1) else ""
        self.mtd = matches[0].group(2)

    def exists(self, rel: str) -> bool:
        return self.prefix + rel in self.names

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.archive.read(self.prefix + rel)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise ProductError(
                f"{self.name(rel)}: cannot be read from the zip ({exc}); the archive is corrupt, download it again"
            ) from None

    def gdal_path(self, rel: str) -> str:
        # braces delimit the archive, whatever its name ends with (GDAL splits a bare path at ".zip")
        return f"/vsizip/{{{self.path}}}/{self.prefix}{rel}"

    def check_jp2(self, rel: str) -> None:
        """The box structure only: the codestream's last bytes would need the whole member inflated;
        a member cut short inside an intact archive is unlikely (the zip records its size)."""
        member = self.archive.getinfo(self.prefix + rel)
        try:
            with self.archive.open(member) as stream:
                check_jp2(stream, member.file_size, self.name(rel), tail=member.compress_type == zipfile.ZIP_STORED)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise ProductError(
                f"{self.name(rel)}: cannot be read from the zip ({exc}); the archive is corrupt, download it again"
            ) from None

    def name(self, rel: str) -> str:
        return f"{self.path}:{self.prefix}{rel}"

    def close(self) -> None:
        self.archive.close()


def _listed_files(meta: ProductMetadata, mtd_name: str) -> tuple[dict[str, dict[int, str]], dict[int, str]]:
    """Band images by band and resolution, and SCL images by resolution, as the MTD lists them."""
    bands: dict[str, dict[int, str]] = {}
    scl: dict[int, str] = {}
    for entry in meta.image_files:
        stem = entry[: -len(".jp2")] if entry.endswith(".jp2") else entry
        if match := IMAGE_FILE_RE.search(stem):
            band_id = match.group(1)
            resolution = int(match.group(2) or band(band_id).resolution)
            bands.setdefault(band_id, {})[resolution] = stem + ".jp2"
        elif match := SCL_FILE_RE.search(stem):
            scl[int(match.group(1))] = stem + ".jp2"
    if not bands:
        raise ProductError(
            f"{mtd_name}: its IMAGE_FILE list names no band image; "
            "the metadata file is damaged or truncated, re-download the product"
        )
    return bands, scl


def _choose(band_id: str, existing: dict[int, str]) -> int:
    """The resolution to read: the native one, else the finest coarser one, else the closest finer one."""
    native = band(band_id).resolution
    if native in existing:
        return native
    coarser = sorted(r for r in existing if r > native)
    return coarser[0] if coarser else max(existing)


def _open_ref(container, pool: DatasetPool, rel: str, grid: Grid | None, **fields) -> tuple[RasterRef, Grid]:
    """A reference to a file of the product, checked against the grid (the grid derives from the
    first file when ``grid`` is None)."""
    name = container.name(rel)
    container.check_jp2(rel)
    dataset = pool.get(container.gdal_path(rel), name)
    if grid is None:
        factor = round(dataset.transform.a / RESOLUTIONS[0])
        t = dataset.transform
        grid = Grid(
            dataset.crs, Affine(RESOLUTIONS[0], 0.0, t.c, 0.0, -RESOLUTIONS[0], t.f),
            dataset.width * factor, dataset.height * factor,
        )
    factor = check_on_grid(dataset, name, grid)
    ref = RasterRef(
        path=container.gdal_path(rel), name=name, factor=factor, shape=(dataset.height, dataset.width),
        resolution=int(round(dataset.transform.a)), **fields,
    )
    return ref, grid


def _gml(container, rel: str, grid: Grid, mask_types: frozenset[str] | None) -> GmlMask:
    gml = parse_gml_mask(container.read_bytes(rel), container.name(rel), mask_types)
    if gml.epsg is not None and gml.epsg != grid.crs.to_epsg():
        raise ProductError(
            f"{container.name(rel)}: its polygons are in EPSG:{gml.epsg} but the bands in {grid.crs}; the product is damaged"
        )
    return gml


def open_safe(path: Path, pool: DatasetPool) -> ProductSource:
    """Find everything :class:`s2lc.product.Product` reads in a ``.SAFE`` folder or zip.

    Raises:
        ProductError: not a product, a corrupt zip, a malformed MTD, a missing or unreadable band
            file, or files that do not line up.
    """
    container = _Folder(path) if path.is_dir() else _Zip(path)
    try:
        return _open(container, pool)
    finally:
        container.close()


def _choose_files(
    container, meta: ProductMetadata, listed: dict[str, dict[int, str]]
) -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
    """The file each band is read from (band -> (resolution, product-relative path)), and why bands are missing."""
    chosen: dict[str, tuple[int, str]] = {}
    missing: dict[str, str] = {}
    for band_id in (b for b in BAND_IDS if b in listed):
        existing = {r: rel for r, rel in listed[band_id].items() if container.exists(rel)}
        if not existing:
            absent = container.name(listed[band_id][min(listed[band_id])])
            if meta.level == "L1C":  # one file per band: a missing one is a broken product
                raise ProductError(
                    f"{absent}: band file missing (listed in {container.mtd}); the product is incomplete, re-download it"
                )
            missing[band_id] = f"its file {absent} (listed in {container.mtd}) is missing"
            continue
        resolution = _choose(band_id, existing)
        chosen[band_id] = resolution, existing[resolution]
    if not chosen:
        raise ProductError(
            f"{container.name(container.mtd)}: none of the band images it lists exists; the product is incomplete, re-download it"
        )
    if missing:
        # info, not a warning: `s2lc info` lists them, and reading one is a BandError that names it
        logger.info("%s: %s not in this product (no file at any resolution)", meta.id, ", ".join(missing))
    return chosen, missing


def _footprint(container, pool: DatasetPool, qi: str, reference: str, grid: Grid) -> RasterRef | GmlMask | None:
    detfoo = qi + DETFOO_MASK.format(band=reference)
    if container.exists(detfoo + ".jp2"):
        return _open_ref(container, pool, detfoo + ".jp2", grid, nodata=0.0)[0]
    if container.exists(detfoo + ".gml"):
        return _gml(container, detfoo + ".gml", grid, None)
    logger.debug("%s: no detector footprint for %s; no data comes from DN only", container.path, reference)
    return None


def _quality(container, pool: DatasetPool, meta: ProductMetadata, qi: str, bands: dict[str, RasterRef],
             grid: Grid) -> dict[str, RasterRef]:
    """The Level-1C quality masks of baseline >= 04.00, band by band, where the product has them."""
    if meta.level != "L1C":
        return {}  # Level-2A: the SCL says which pixels are saturated or defective
    quality = {}
    for band_id in bands:
        rel = qi + QUALITY_MASK.format(band=band_id)
        if container.exists(rel):
            ref = _open_ref(container, pool, rel, grid)[0]
            count = pool.get(ref.path, ref.name).count
            if count < QUALITY_SATURATED_BAND:
                raise ProductError(f"{ref.name}: {count} band(s), not the {QUALITY_SATURATED_BAND} quality flags "
                                   "expected; the mask file is damaged")
            quality[band_id] = ref
    return quality


def _cloud_layer(
    container, pool: DatasetPool, meta: ProductMetadata, qi: str, scl: RasterRef | None, grid: Grid
) -> CloudLayer | None:
    if meta.level == "L2A":
        if scl is not None:
            return CloudLayer("SCL", rasters=(scl,))
    elif container.exists(qi + CLASSI_MASK):
        first, _ = _open_ref(container, pool, qi + CLASSI_MASK, grid)
        count = pool.get(first.path, first.name).count
        if count < max(CLASSI_CLOUD_BANDS):
            raise ProductError(
                f"{first.name}: {count} band(s), not the {max(CLASSI_CLOUD_BANDS)} cloud bands expected; the mask file is damaged"
            )
        return CloudLayer(CLASSI_MASK.split(".")[0], rasters=tuple(replace(first, index=i) for i in CLASSI_CLOUD_BANDS))
    elif container.exists(qi + CLOUDS_GML):
        return CloudLayer(CLOUDS_GML.split(".")[0], gml=_gml(container, qi + CLOUDS_GML, grid, CLOUDS_GML_TYPES))
    return None


def _open(container, pool: DatasetPool) -> ProductSource:
    meta = parse_mtd(container.read_bytes(container.mtd), container.name(container.mtd))
    listed, scl_listed = _listed_files(meta, container.name(container.mtd))
    chosen, missing = _choose_files(container, meta, listed)
    invalid = (float(meta.special_values["NODATA"]), float(meta.special_values["SATURATED"]))

    grid = None
    bands: dict[str, RasterRef] = {}
    for band_id, (_, rel) in sorted(chosen.items(), key=lambda item: item[1][0]):  # finest first: it sets the grid
        bands[band_id], grid = _open_ref(
            container, pool, rel, grid, nodata=invalid[0], invalid=invalid,
            offset=meta.offsets[band_id], scale=QUANTIFICATION_VALUE / meta.quantification_value,
        )
    bands = {b: bands[b] for b in BAND_IDS if b in bands}
    coarser = [f"{b} at {r.resolution} m" for b, r in bands.items() if r.resolution > band(b).resolution]
    if coarser:
        # info, not a warning: `s2lc info` lists them, and classify warns about the bands its model reads
        logger.info("%s: only coarser than native in this product: %s; resampled to 10 m when read", meta.id,
                    ", ".join(coarser))
    reference = min(bands, key=lambda b: (bands[b].resolution, REFERENCE_BANDS.index(b)))

    qi = meta.image_files[0].split("/IMG_DATA/")[0] + "/QI_DATA/"
    existing_scl = {r: rel for r, rel in scl_listed.items() if container.exists(rel)}
    scl = _open_ref(container, pool, existing_scl[min(existing_scl)], grid)[0] if existing_scl else None
    return ProductSource(
        path=str(container.path),
        id=meta.id,
        level=meta.level,
        grid=grid,
        bands=bands,
        nodata_refs=(bands[reference],),
        baseline=meta.baseline,
        spacecraft=meta.spacecraft,
        sensing_time=meta.sensing_time,
        tile=meta.tile,
        quantification_value=meta.quantification_value,
        offsets={b: meta.offsets[b] for b in bands},
        special_values=dict(meta.special_values),
        cloud_cover=meta.cloud_cover,
        missing=missing,
        footprint=_footprint(container, pool, qi, reference, grid),
        scl=scl,
        quality=_quality(container, pool, meta, qi, bands, grid),
        cloud=_cloud_layer(container, pool, meta, qi, scl, grid),
        no_cloud_mask=f"{meta.id}: no cloud mask ("
        + ("an SCL image" if meta.level == "L2A" else f"{CLASSI_MASK} or {CLOUDS_GML} in QI_DATA") + ")",
        datasets=pool,
    )
