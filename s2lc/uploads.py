"""Uploaded files to model input, with no HTTP: the decoding behind ``s2lc serve``.

An 8-bit RGB PNG or JPEG is taken as the model's stored values (a EuroSAT patch); one that is
not ``patch_size`` square is resized (bilinear) with a note. A GeoTIFF holds Sentinel-2 DN
(pre-04.00 convention) of the bands the contract names, found by band description or, failing
that, by count and order; it is scaled and cut into patches by :mod:`s2lc.patches`, as
``s2lc classify`` does its strips. A GeoTIFF of exactly one patch is one patch; a larger (or
smaller) georeferenced one is cut into patches aligned to its grid (the last row and column
reaching past the edge, mirrored as ``s2lc classify`` pads), which :func:`patch_geometry`
places on the map.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from s2lc.checkpoint import ModelContract
from s2lc.errors import S2lcError
from s2lc.patches import cell_counts, gather, model_input, pad_block, patch_counts
from s2lc.sentinel2 import EUROSAT_RGB_BANDS
from s2lc.suitability import check_input, pixel_size_m
from s2lc.tiling import TileGrid

__all__ = ["DEFAULT_MAX_PIXELS", "ServeError", "Upload", "UploadError", "decode_upload", "patch_geometry", "sniff_format"]

#: Default limit of an upload's decoded pixels (width × height): a compressed file can decode to far
#: more bytes than it has. 2048 × 2048 is 1 024 patches, about 20 km square at 10 m.
DEFAULT_MAX_PIXELS = 2048 * 2048

_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "GeoTIFF",
    b"MM\x00*": "GeoTIFF",
    b"II+\x00": "GeoTIFF",  # BigTIFF
    b"MM\x00+": "GeoTIFF",
}


class ServeError(S2lcError):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    status = 500


class UploadError(ServeError, ValueError):
    """An upload that cannot be classified: not an image, wrong bands, too large."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """A decoded upload, ready for the model.

    Attributes:
        patches: (n, bands, patch, patch) in the dataset's stored values, bands in contract order:
            uint8 where those are 8-bit (EuroSAT RGB), else float32.
        format: ``PNG``, ``JPEG`` or ``GeoTIFF``.
        width, height: the upload's size in pixels.
        notes: what was assumed or changed on the way (resizing, band order).
        grid: the patch grid of a tiled GeoTIFF; None for a single patch.
        cells: (n, 2) int patch (row, col) of each patch in ``grid``; ``valid``: (n,) valid pixels in each.
        transform, crs: georeferencing of a tiled GeoTIFF.
    """

    patches: np.ndarray
    format: str
    width: int
    height: int
    notes: list[str] = field(default_factory=list)
    grid: TileGrid | None = None
    cells: np.ndarray | None = None
    valid: np.ndarray | None = None
    n_empty: int = 0
    transform: Any = None
    crs: Any = None


def sniff_format(data: bytes) -> str | None:
    """``PNG``, ``JPEG`` or ``GeoTIFF`` from the first bytes, or None (file names and types are not trusted)."""
    for magic, name in _MAGIC.items():
        if data.startswith(magic):
            return name
    return None


def decode_upload(
    data: bytes, contract: ModelContract, filename: str = "upload", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Upload:
    """Turn uploaded bytes into patches for ``contract``.

    Args:
        data: the file's bytes (PNG, JPEG or GeoTIFF, recognised by content).
        contract: the model's contract (bands, scaling, patch size).
        filename: named in error messages only.
        max_pixels: refuse images with more pixels before decoding them (a JPEG: at the reduced
            size it is decoded at, 1/2 to 1/8 of its own when that still exceeds the patch).

    Returns:
        An :class:`Upload`.

    Raises:
        UploadError: 415 not a PNG, JPEG or readable GeoTIFF; 413 more than ``max_pixels``;
            422 readable but unusable (not RGB, not 8-bit, bands missing, not georeferenced, no data).
    """
    fmt = sniff_format(data)
    if fmt is None:
        what = "an empty file" if not data else "neither a PNG, a JPEG nor a GeoTIFF"
        raise UploadError(415, f"{filename}: {what}; send an 8-bit RGB PNG/JPEG patch or a GeoTIFF of Sentinel-2 DN")
    if fmt == "GeoTIFF":
        return _decode_geotiff(data, contract, filename, max_pixels)
    return _decode_image(data, fmt, contract, filename, max_pixels)


def _decode_image(data: bytes, fmt: str, contract: ModelContract, filename: str, max_pixels: int) -> Upload:
    from PIL import Image, ImageOps, UnidentifiedImageError

    bands = list(contract.bands)
    if sorted(bands) != sorted(EUROSAT_RGB_BANDS) or contract.scaling["dst_max"] > 255:
        raise UploadError(
            422,
            f"{filename}: model {contract_name(contract)} takes bands {', '.join(bands)} scaled to "
            f"{contract.scaling['dst_min']:g}–{contract.scaling['dst_max']:g}, not 8-bit RGB; "
            "send a GeoTIFF of Sentinel-2 DN with those bands",
        )
    p = int(contract.patch_size)
    unreadable = (UnidentifiedImageError, OSError, SyntaxError, ValueError)
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise UploadError(413, f"{filename}: {one_line(exc)}; send a smaller image") from None
    except unreadable as exc:
        raise UploadError(415, f"{filename}: not a readable {fmt} ({one_line(exc)}); send a valid image") from None
    width, height = im.size
    if im.mode not in ("RGB", "RGBA", "P"):
        raise UploadError(422, f"{filename}: a {im.mode}-mode {fmt}, not 8-bit RGB; send an 8-bit RGB image")
    notes = []
    if im.mode == "RGBA" or "transparency" in im.info:
        notes.append("the alpha channel was ignored")
    if fmt == "JPEG":
        im.draft("RGB", (p, p))  # a large JPEG decodes at 1/2, 1/4 or 1/8 scale, still at least p × p
    if im.size[0] * im.size[1] > max_pixels:
        raise UploadError(413, f"{filename}: {width}×{height} pixels exceed the limit of {max_pixels:,}; send a smaller image")
    try:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if im.size != (p, p):
            im = im.resize((p, p), Image.Resampling.BILINEAR)
        rgb = np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except unreadable as exc:
        raise UploadError(415, f"{filename}: not a readable {fmt} ({one_line(exc)}); send a valid image") from None
    if (width, height) != (p, p):
        notes.append(
            f"resized from {width}×{height} to {p}×{p} (bilinear{', aspect ratio not kept' if width != height else ''}): "
            f"the model was trained on {p}×{p} patches of 10 m pixels, and an image of another scale is outside what it learned"
        )
    order = [EUROSAT_RGB_BANDS.index(b) for b in bands]
    return Upload(np.ascontiguousarray(rgb[order][None]), fmt, width, height, notes)


def _decode_geotiff(data: bytes, contract: ModelContract, filename: str, max_pixels: int) -> Upload:
    from rasterio.errors import RasterioError
    from rasterio.io import MemoryFile

    from s2lc.gdal import gdal_env

    # s2lc's GDAL configuration in this worker thread (one decoding thread: uploads are decoded side by
    # side, and a damaged one is refused with GDAL's message); in memory (/vsimem/), private to this request
    with gdal_env(), MemoryFile(data) as mem:
        try:
            with mem.open() as ds:
                if ds.width * ds.height > max_pixels:
                    raise UploadError(
                        413, f"{filename}: {ds.width}×{ds.height} pixels exceed the limit of {max_pixels:,}; "
                        "classify a raster that large with `s2lc classify`",
                    )
                indexes, notes = _band_indexes(ds.descriptions, ds.count, contract, filename)
                transform, crs = ds.transform, ds.crs
                georeferenced = crs is not None and not transform.is_identity
                north_up = not (transform.b or transform.d or transform.a <= 0 or transform.e >= 0)
                size = pixel_size_m(crs, transform, ds.width, ds.height) if georeferenced and north_up else None
                for note in check_input(contract.bands, dict.fromkeys(contract.bands, size),
                                        {b: ds.dtypes[i - 1] for b, i in zip(contract.bands, indexes)},
                                        contract_name(contract)):
                    if note.kind == "8-bit":  # as s2lc classify warns, but an upload can be sent again
                        raise UploadError(422, f"{filename}: {note.text}; or send an 8-bit RGB patch as PNG/JPEG")
                    notes.append(note.text)
                dn = ds.read(indexes, out_dtype="float32")
                valid = (ds.read_masks(indexes) > 0).all(axis=0)
        except RasterioError as exc:  # GDAL names the in-memory file: name the upload instead
            reason = re.sub(rf"{re.escape(os.path.basename(mem.name))}(: |, )", "", one_line(exc.__cause__ or exc))
            raise UploadError(415, f"{filename}: not a readable GeoTIFF ({reason}); send a valid GeoTIFF") from None
    x, valid = model_input(dn, contract, valid)  # as s2lc classify scales its strips (NaN is no data too)
    del dn
    if not valid.any():
        raise UploadError(422, f"{filename}: every pixel is no-data; send a raster with valid pixels")
    _, h, w = x.shape
    p = int(contract.patch_size)
    if (h, w) == (p, p):
        return Upload(x[None], "GeoTIFF", w, h, notes)
    if not georeferenced:
        raise UploadError(
            422, f"{filename}: {w}×{h} pixels and no georeferencing; send a {p}×{p} patch, or a GeoTIFF with a CRS "
            "and geotransform to get its patches back as GeoJSON",
        )
    if not north_up:
        raise UploadError(422, f"{filename}: its grid is rotated or not north-up; warp it to a north-up grid first")
    grid = TileGrid(h, w, p, p)
    (whole,) = grid.strips(grid.rows)
    x, valid = pad_block(x, valid, whole.pad_bottom, whole.pad_right)  # as s2lc classify pads the edge patches
    counts = patch_counts(cell_counts(valid, p), 1, grid.rows, grid.cols)
    r, c = np.nonzero(counts)  # patches with at least one valid pixel, row by row
    return Upload(
        gather(x, grid, r, c), "GeoTIFF", w, h, notes, grid=grid, cells=np.stack([r, c], axis=1), valid=counts[r, c],
        n_empty=int(len(grid) - len(r)), transform=transform, crs=crs,
    )


def _band_indexes(
    descriptions: tuple[str | None, ...], count: int, contract: ModelContract, filename: str
) -> tuple[list[int], list[str]]:
    """1-based band indexes of the contract's bands, from the descriptions or else from count and order."""
    from s2lc._reader_geotiff import _band_from_description

    need = list(contract.bands)
    found: dict[str, int] = {}
    for index, description in enumerate(descriptions, start=1):
        band_id = _band_from_description(description)
        if band_id is not None:
            if band_id in found:
                raise UploadError(
                    422, f"{filename}: bands {found[band_id]} and {index} are both described as {band_id}; "
                    "describe each band once",
                )
            found[band_id] = index
    if found:
        missing = [b for b in need if b not in found]
        if missing:
            raise UploadError(
                422, f"{filename}: lacks band(s) {', '.join(missing)} that model {contract_name(contract)} needs "
                f"({', '.join(need)}); its band descriptions name {', '.join(found)}",
            )
        return [found[b] for b in need], []
    if count == len(need):
        return list(range(1, count + 1)), [
            f"the bands carry no Sentinel-2 descriptions; taken in file order as {', '.join(need)}"
        ]
    raise UploadError(
        422, f"{filename}: {count} band(s) without Sentinel-2 band descriptions, but model {contract_name(contract)} needs "
        f"{len(need)} ({', '.join(need)}); name them in the band descriptions (e.g. 'B04') "
        "or send exactly those bands in that order",
    )


def patch_geometry(upload: Upload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a tiled upload's patches lie: pure geometry from its grid and transform.

    Returns:
        (n, 4) float64 left, bottom, right, top in the raster's CRS, clipped to the raster;
        (n, 5, 2) float64 closed counter-clockwise rings of those boxes in EPSG:4326 (lon, lat);
        (n,) int in-raster pixels of each patch.
    """
    from rasterio.warp import transform as reproject

    p, h, w, t = upload.grid.patch, upload.height, upload.width, upload.transform  # north-up: a > 0, e < 0
    rows, cols = upload.cells[:, 0], upload.cells[:, 1]
    x0, y0 = cols * p, rows * p  # pixel offsets of each patch; the end is clipped to the raster
    x1, y1 = np.minimum(x0 + p, w), np.minimum(y0 + p, h)
    boxes = np.stack([t.c + x0 * t.a, t.f + y1 * t.e, t.c + x1 * t.a, t.f + y0 * t.e], axis=1).astype(np.float64)
    pixels = (x1 - x0) * (y1 - y0)
    left, bottom, right, top = boxes.T
    xs = np.stack([left, right, right, left, left], axis=1).ravel()
    ys = np.stack([bottom, bottom, top, top, bottom], axis=1).ravel()
    if len(xs):
        xs, ys = map(np.asarray, reproject(upload.crs, "EPSG:4326", xs.tolist(), ys.tolist()))
    rings = np.stack([xs, ys], axis=1).reshape(-1, 5, 2)
    return boxes, rings, pixels


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (GDAL and PIL messages can span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def contract_name(contract: ModelContract) -> str:
    """The model's name as messages give it: the contract's name, else its architecture."""
    return contract.name or contract.arch
