"""The HTTP classification service behind ``s2lc serve``: FastAPI app, upload decoding, micro-batching.

:func:`create_app` loads one checkpoint, once, and answers:

- ``POST /classify``: a multipart upload in field ``file``. An 8-bit RGB PNG or JPEG is taken
  as the model's stored values (a EuroSAT patch); one that is not ``patch_size`` square is
  resized (bilinear) with a note. A GeoTIFF holds Sentinel-2 DN (pre-04.00 convention) of the
  bands the contract names, found by band description or, failing that, by count and order; it
  is scaled with :meth:`~s2lc.checkpoint.ModelContract.to_dst`. A GeoTIFF of exactly one patch
  gets one prediction; a larger (or smaller) georeferenced one is cut into patches aligned to
  its grid (:class:`~s2lc.tiling.TileGrid`, the last row and column reaching past the edge,
  padded as ``s2lc classify`` pads) and answered as a GeoJSON FeatureCollection in EPSG:4326.
- ``GET /health``, ``GET /model`` and FastAPI's ``/openapi.json`` and ``/docs``.

Uploads stay in memory: the body is streamed into the multipart parser and refused with 413
as soon as it passes the size limit. Only one thread runs the model: a :class:`Batcher` gathers
the patches of concurrent requests into batches, so the network is shared read-only and never
entered twice at once.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from s2lc.errors import ArgumentError, DependencyError, S2lcError

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # pragma: no cover - exercised by the CLI test with the extra hidden
    raise DependencyError(f'the s2lc server needs the "serve" extra ({exc}); pip install "s2lc[serve]"') from exc

from s2lc import __version__
from s2lc.checkpoint import LoadedModel, ModelContract
from s2lc.legend import Legend
from s2lc.sentinel2 import EUROSAT_RGB_BANDS
from s2lc.tiling import TileGrid

__all__ = [
    "Batcher",
    "BusyError",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_UPLOAD_MB",
    "ServeError",
    "Upload",
    "UploadError",
    "create_app",
    "decode_upload",
    "patch_geometry",
    "sniff_format",
]

logger = logging.getLogger(__name__)

#: Default limit of a request body, upload included, in MB (10^6 bytes).
DEFAULT_MAX_UPLOAD_MB = 20.0
#: Default limit of an upload's decoded pixels (width × height): a compressed file can decode to far
#: more bytes than it has. 2048 × 2048 is 1 024 patches, about 20 km square at 10 m.
DEFAULT_MAX_PIXELS = 2048 * 2048
#: Multipart form field holding the upload.
FILE_FIELD = "file"

_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "GeoTIFF",
    b"MM\x00*": "GeoTIFF",
    b"II+\x00": "GeoTIFF",  # BigTIFF
    b"MM\x00+": "GeoTIFF",
}
#: GeoJSON coordinates: 6 decimals of a degree, about 0.1 m (RFC 7946 §11.2).
_DECIMALS = 6


class ServeError(S2lcError):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    status = 500


class UploadError(ServeError, ValueError):
    """An upload that cannot be classified: not an image, wrong bands, too large."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BusyError(ServeError, RuntimeError):
    """The batch queue is full or closed; the client should retry later."""

    status = 503


# --------------------------------------------------------------------------- decoding (no HTTP here)


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
            f"{filename}: model {_model_name(contract)} takes bands {', '.join(bands)} scaled to "
            f"{contract.scaling['dst_min']:g}–{contract.scaling['dst_max']:g}, not 8-bit RGB; "
            "send a GeoTIFF of Sentinel-2 DN with those bands",
        )
    p = int(contract.patch_size)
    unreadable = (UnidentifiedImageError, OSError, SyntaxError, ValueError)
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise UploadError(413, f"{filename}: {_one_line(exc)}; send a smaller image") from None
    except unreadable as exc:
        raise UploadError(415, f"{filename}: not a readable {fmt} ({_one_line(exc)}); send a valid image") from None
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
        raise UploadError(415, f"{filename}: not a readable {fmt} ({_one_line(exc)}); send a valid image") from None
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

    from s2lc.gdal import UPLOAD_NUM_THREADS, gdal_env

    # s2lc's GDAL configuration in this worker thread; in memory (/vsimem/), private to this request
    with gdal_env(GDAL_NUM_THREADS=UPLOAD_NUM_THREADS), MemoryFile(data) as mem:
        try:
            with mem.open() as ds:
                if ds.width * ds.height > max_pixels:
                    raise UploadError(
                        413, f"{filename}: {ds.width}×{ds.height} pixels exceed the limit of {max_pixels:,}; "
                        "classify a raster that large with `s2lc classify`",
                    )
                indexes, notes = _band_indexes(ds.descriptions, ds.count, contract, filename)
                eight_bit = [contract.bands[i] for i, b in enumerate(indexes) if ds.dtypes[b - 1] in ("uint8", "int8")]
                if eight_bit:
                    raise UploadError(
                        422, f"{filename}: band(s) {', '.join(eight_bit)} are 8-bit, but Sentinel-2 DN need 16 bits; "
                        "send DN as a uint16 or float GeoTIFF, or an 8-bit RGB patch as PNG/JPEG",
                    )
                dn = ds.read(indexes, out_dtype="float32")
                valid = (ds.read_masks(indexes) > 0).all(axis=0) & ~np.isnan(dn).any(axis=0)
                transform, crs = ds.transform, ds.crs
        except RasterioError as exc:  # GDAL names the in-memory file: name the upload instead
            reason = re.sub(rf"{re.escape(os.path.basename(mem.name))}(: |, )", "", _one_line(exc.__cause__ or exc))
            raise UploadError(415, f"{filename}: not a readable GeoTIFF ({reason}); send a valid GeoTIFF") from None
    if not valid.any():
        raise UploadError(422, f"{filename}: every pixel is no-data; send a raster with valid pixels")
    dn[:, ~valid] = np.nan
    dst = contract.to_dst(dn)  # no-data → the scaling's nodata value
    del dn
    if contract.scaling.get("round") and contract.scaling["dst_max"] <= 255:
        dst = dst.astype(np.uint8)  # the stored values are 8-bit (EuroSAT RGB), as s2lc classify feeds them
    _, h, w = dst.shape
    p = int(contract.patch_size)
    georeferenced = crs is not None and not transform.is_identity
    north_up = not (transform.b or transform.d or transform.a <= 0 or transform.e >= 0)
    if georeferenced and north_up:
        notes.extend(_resolution_notes(transform, crs, contract))
    if (h, w) == (p, p):
        return Upload(dst[None], "GeoTIFF", w, h, notes)
    if not georeferenced:
        raise UploadError(
            422, f"{filename}: {w}×{h} pixels and no georeferencing; send a {p}×{p} patch, or a GeoTIFF with a CRS "
            "and geotransform to get its patches back as GeoJSON",
        )
    if not north_up:
        raise UploadError(422, f"{filename}: its grid is rotated or not north-up; warp it to a north-up grid first")
    grid = TileGrid(h, w, p, p)
    rows, cols = grid.rows, grid.cols
    pad = ((0, rows * p - h), (0, cols * p - w))
    dst = np.pad(dst, ((0, 0), *pad), mode="symmetric")  # as s2lc classify pads the edge patches
    mask = np.pad(valid, pad)
    counts = mask.reshape(rows, p, cols, p).sum(axis=(1, 3))
    r, c = np.nonzero(counts)  # patches with at least one valid pixel, row by row
    patches = dst.reshape(len(indexes), rows, p, cols, p)[:, r, :, c, :]  # (n, bands, p, p), one copy
    return Upload(
        patches, "GeoTIFF", w, h, notes, grid=grid, cells=np.stack([r, c], axis=1), valid=counts[r, c],
        n_empty=int(rows * cols - len(r)), transform=transform, crs=crs,
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
                raise UploadError(422, f"{filename}: bands {found[band_id]} and {index} are both described as {band_id}; describe each band once")
            found[band_id] = index
    if found:
        missing = [b for b in need if b not in found]
        if missing:
            raise UploadError(
                422, f"{filename}: lacks band(s) {', '.join(missing)} that model {_model_name(contract)} needs "
                f"({', '.join(need)}); its band descriptions name {', '.join(found)}",
            )
        return [found[b] for b in need], []
    if count == len(need):
        return list(range(1, count + 1)), [f"the bands carry no Sentinel-2 descriptions; taken in file order as {', '.join(need)}"]
    raise UploadError(
        422, f"{filename}: {count} band(s) without Sentinel-2 band descriptions, but model {_model_name(contract)} needs "
        f"{len(need)} ({', '.join(need)}); name them in the band descriptions (e.g. 'B04') or send exactly those bands in that order",
    )


def _resolution_notes(transform: Any, crs: Any, contract: ModelContract) -> list[str]:
    """A note when a projected grid's pixels are not the 10 m of the model's finest band (EuroSAT's grid)."""
    from s2lc.sentinel2 import band

    native = min(band(b).resolution for b in contract.bands)
    if not crs.is_projected or (crs.linear_units or "").lower() not in ("metre", "meter", "m"):
        return []
    size = abs(transform.a)
    if abs(size - native) > 0.05 * native:
        return [f"pixels are {size:g} m, the model was trained on {native} m pixels; expect poorer results"]
    return []


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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _model_name(contract: ModelContract) -> str:
    return contract.name or contract.arch


# --------------------------------------------------------------------------- batching


class Batcher:
    """Runs ``predict`` in one worker thread on batches gathered from concurrent submissions.

    A submission waits in a queue; the worker takes the oldest and, until it has waited
    ``max_wait_s`` since it was queued, waits for more until ``max_batch`` patches are queued,
    then runs them together. A submission is
    never split, and is added to a batch only if the batch stays within ``max_batch`` (the
    first one always goes). The worker starts with the first submission.

    Args:
        predict: (n, bands, h, w) stored values (uint8 or float32) → (n, classes) float32; only the worker calls it.
        max_batch: patches per batch to aim for.
        max_wait_s: how long the oldest submission waits for company.
        max_queue: submissions waiting at most; more raise :class:`BusyError`.
    """

    def __init__(
        self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int = 16, max_wait_s: float = 0.005, max_queue: int = 64
    ):
        if max_batch < 1 or max_wait_s < 0 or max_queue < 1:
            raise ArgumentError(f"max_batch and max_queue must be ≥ 1 and max_wait_s ≥ 0, got {max_batch}, {max_queue}, {max_wait_s}")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.batches = 0  #: batches run so far
        self._items: deque[tuple[np.ndarray, Future, float]] = deque()  # patches, future, time queued
        self._queued = 0  # patches waiting
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Submissions waiting for the worker."""
        return len(self._items)

    def submit(self, patches: np.ndarray) -> Future:
        """Queue (n, bands, h, w) patches; the future resolves to their (n, classes) probabilities.

        Raises:
            BusyError: the queue is full, or the batcher is closed.
        """
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise BusyError("the server is shutting down; retry on another instance")
            if len(self._items) >= self.max_queue:
                raise BusyError(f"{len(self._items)} requests are already waiting for the model; retry shortly")
            self._items.append((patches, fut, time.monotonic()))
            self._queued += len(patches)
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="s2lc-batcher", daemon=True)
                self._thread.start()
        return fut

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new submissions, finish the queued ones, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _take(self) -> list[tuple[np.ndarray, Future, float]] | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None
            deadline = self._items[0][2] + self.max_wait_s  # the oldest has waited in the queue already
            while self._queued < self.max_batch and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = [self._items.popleft()]
            total = len(batch[0][0])
            while self._items and total + len(self._items[0][0]) <= self.max_batch:
                batch.append(self._items.popleft())
                total += len(batch[-1][0])
            self._queued -= total
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            live = [(x, f) for x, f, _ in batch if f.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                probs = self.predict(np.concatenate([x for x, _ in live]) if len(live) > 1 else live[0][0])
            except BaseException as exc:  # every waiting request learns of it; the worker goes on
                logger.exception("inference failed on a batch of %d request(s)", len(live))
                for _, f in live:
                    f.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for x, f in live:
                f.set_result(probs[start : start + len(x)])
                start += len(x)


# --------------------------------------------------------------------------- response schemas (OpenAPI)


class ModelRef(BaseModel):
    name: str = Field(description="the model's name (contract name, else its architecture)")
    sha256: str = Field(description="SHA-256 of the checkpoint file")


class InputInfo(BaseModel):
    filename: str | None = None
    format: Literal["PNG", "JPEG", "GeoTIFF"]
    width: int
    height: int


class Prediction(BaseModel):
    """One patch's class and the probability of every class."""

    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class", description="class name")
    code: int = Field(description="class code in s2lc maps (1..n, the model's class order)")
    label: str = Field(description="human-readable class name")
    probability: float = Field(description="probability of the chosen class")
    probabilities: dict[str, float] = Field(description="class name → probability, every class")
    model: ModelRef
    input: InputInfo
    notes: list[str] = Field(description="what was assumed or changed, e.g. resizing")


class PatchProperties(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class")
    code: int
    label: str
    probability: float
    row: int = Field(description="patch row in the raster's patch grid")
    col: int = Field(description="patch column in the raster's patch grid")
    valid_fraction: float = Field(description="share of the patch's in-raster pixels that hold data")
    source_bounds: tuple[float, float, float, float] = Field(
        description="left, bottom, right, top in the raster's CRS (source_crs), clipped to the raster"
    )


class PolygonGeometry(BaseModel):
    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[tuple[float, float]]]


class PatchFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PolygonGeometry
    properties: PatchProperties


class PatchCounts(BaseModel):
    classified: int
    no_data: int = Field(description="patches without any valid pixel, left out")


class PatchCollection(BaseModel):
    """The patches of a larger GeoTIFF as GeoJSON (RFC 7946: longitude/latitude, EPSG:4326)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[PatchFeature]
    source_crs: str = Field(description="the raster's CRS, in which source_bounds are given")
    patch_size: int
    patches: PatchCounts
    model: ModelRef
    input: InputInfo
    notes: list[str]


class ClassEntry(BaseModel):
    code: int
    name: str
    label: str
    color: tuple[int, int, int]


class ModelInfo(BaseModel):
    name: str
    file: str = Field(description="checkpoint file name")
    sha256: str
    classes: list[ClassEntry] = Field(description="the model's classes with their map codes")
    contract: dict[str, Any] = Field(description="the checkpoint's contract as stored in it")


class Health(BaseModel):
    status: Literal["ok"]
    model: ModelRef
    queued: int = Field(description="requests waiting for the model")
    batches: int = Field(description="batches run since startup")
    s2lc_version: str


class ErrorBody(BaseModel):
    detail: str


_CLASSIFY_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "an 8-bit RGB PNG/JPEG patch (the model's stored values), or a GeoTIFF "
                        "of Sentinel-2 DN (pre-04.00 convention) with the model's bands",
                    }
                },
            }
        }
    },
}


# --------------------------------------------------------------------------- the app


def create_app(
    model_path: str | os.PathLike | None = None,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    batch_size: int = 16,
    max_wait_ms: float = 5.0,
    device: str = "auto",
    precision: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_queue: int = 64,
) -> FastAPI:
    """The classification service for one checkpoint, loaded here, once.

    Args:
        model_path: s2lc checkpoint; the shipped EuroSAT RGB model when None.
        max_upload_mb: largest request body, in MB (10^6 bytes); larger ones get 413.
        batch_size: patches per model batch; concurrent requests are batched up to this.
        max_wait_ms: how long a request waits for others to share its batch (0: no waiting).
        device, precision: as for :func:`s2lc.inference.predict_proba` (``auto``, ``cpu``, ``cuda``; ``auto``, ``fp32`` …).
        max_pixels: largest upload in pixels (width × height); larger ones get 413.
        max_queue: requests waiting for the model at most; more get 503.

    Returns:
        A FastAPI application; serve it with uvicorn (``uvicorn --factory s2lc.server:create_app``).

    Raises:
        CheckpointError: missing or invalid model file. ModelError: unknown device or precision.
        ArgumentError: a non-positive limit.
    """
    from s2lc.classify import load_model
    from s2lc.inference import predict_proba, resolve_device, resolve_precision

    if max_upload_mb <= 0 or max_pixels <= 0:
        raise ArgumentError(f"max_upload_mb and max_pixels must be positive, got {max_upload_mb} and {max_pixels}")
    max_bytes = int(max_upload_mb * 1_000_000)
    dev = resolve_device(device)
    resolve_precision(precision, dev)  # validates the name before serving
    loaded: LoadedModel = load_model(model_path)
    contract = loaded.contract
    legend = Legend.from_names(contract.classes)
    model_ref = {"name": _model_name(contract), "sha256": loaded.sha256}
    logger.info("model %s (sha256 %s…) loaded from %s; inference on %s", model_ref["name"], loaded.sha256[:12], loaded.path, dev)

    def predict(x: np.ndarray) -> np.ndarray:
        return predict_proba(loaded.model, x, contract.divisor, batch_size=batch_size, device=dev, precision=precision)

    batcher = Batcher(predict, max_batch=batch_size, max_wait_s=max_wait_ms / 1000, max_queue=max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(batcher.close)

    app = FastAPI(
        title="s2lc",
        version=__version__,
        summary="Land-cover classes of Sentinel-2 patches",
        description=f"Model **{model_ref['name']}** (sha256 `{loaded.sha256}`), bands {', '.join(contract.bands)}, "
        f"classes {', '.join(contract.classes)}. See docs/serve.md.",
        lifespan=lifespan,
    )
    app.state.loaded = loaded
    app.state.batcher = batcher

    @app.exception_handler(ServeError)
    async def _refused(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def _failed(request: Request, exc: Exception) -> JSONResponse:  # the server logs the traceback
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); the server log has the details"}, status_code=500)

    def prediction(p: np.ndarray) -> dict[str, Any]:
        k = int(p.argmax())
        entry = legend.land_cover[k]
        return {"class": entry.name, "code": entry.code, "label": entry.label, "probability": float(p[k])}

    def collection(upload: Upload, probs: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
        boxes, rings, pixels = patch_geometry(upload)
        rings = np.round(rings, _DECIMALS)
        features = [
            {
                "type": "Feature",
                "id": f"r{row}c{col}",
                "geometry": {"type": "Polygon", "coordinates": [rings[i].tolist()]},
                "properties": {
                    **prediction(probs[i]), "row": row, "col": col,
                    "valid_fraction": round(int(upload.valid[i]) / int(pixels[i]), 4),
                    "source_bounds": boxes[i].tolist(),
                },
            }
            for i, (row, col) in enumerate(upload.cells.tolist())
        ]
        return {
            "type": "FeatureCollection", "features": features, "source_crs": upload.crs.to_string(), "patch_size": upload.grid.patch,
            "patches": {"classified": len(features), "no_data": upload.n_empty}, "model": model_ref, "input": info,
            "notes": upload.notes,
        }

    errors = {
        s: {"model": ErrorBody, "description": d}
        for s, d in {
            400: "malformed multipart body",
            413: "request or image too large",
            415: "not multipart/form-data, or the file is not a PNG, JPEG or GeoTIFF",
            422: "no 'file' field, or a file the model cannot use (bands, bit depth, georeferencing)",
            500: "the model failed on this request's batch",
            503: "too many requests waiting for the model",
        }.items()
    }

    @app.post(
        "/classify",
        response_model=Prediction | PatchCollection,
        summary="Classify an uploaded patch or GeoTIFF",
        openapi_extra={"requestBody": _CLASSIFY_BODY},
        responses=errors,
    )
    async def classify(request: Request) -> dict[str, Any]:
        """A PNG/JPEG or a 64×64 GeoTIFF gives one prediction; a larger georeferenced GeoTIFF gives a
        GeoJSON FeatureCollection (EPSG:4326) of its 64×64 patches."""
        data, filename = await _read_upload(request, max_bytes)
        upload = await run_in_threadpool(decode_upload, data, contract, filename or "upload", max_pixels)
        del data
        probs = await asyncio.wrap_future(batcher.submit(upload.patches))
        info = {"filename": filename, "format": upload.format, "width": upload.width, "height": upload.height}
        if upload.grid is None:
            return {
                **prediction(probs[0]),
                "probabilities": {n: float(v) for n, v in zip(contract.classes, probs[0])},
                "model": model_ref, "input": info, "notes": upload.notes,
            }
        return await run_in_threadpool(collection, upload, probs, info)

    @app.get("/health", response_model=Health, summary="Liveness and the model served")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_ref, "queued": batcher.pending, "batches": batcher.batches,
                "s2lc_version": __version__}

    @app.get("/model", response_model=ModelInfo, summary="The model's contract: bands, scaling, classes, training")
    async def model() -> dict[str, Any]:
        return {
            "name": model_ref["name"], "file": loaded.path.name, "sha256": loaded.sha256,
            "classes": [asdict(c) for c in legend.land_cover], "contract": asdict(contract),
        }

    return app


async def _read_upload(request: Request, max_bytes: int) -> tuple[bytes, str | None]:
    """The ``file`` field of a multipart request, parsed in memory as it streams in.

    Raises:
        UploadError: 415 not multipart, 413 body over ``max_bytes``, 400 malformed, 422 no ``file`` field.
    """
    from python_multipart import FormParser
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import parse_options_header

    mime, params = parse_options_header(request.headers.get("content-type", ""))
    if mime != b"multipart/form-data":
        raise UploadError(
            415, f"expected a multipart/form-data upload, got {mime.decode('latin-1') or 'no content type'}; "
            f"send the image as form field '{FILE_FIELD}' (curl -F {FILE_FIELD}=@patch.png …)",
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(400, "multipart/form-data without a boundary; let the HTTP client build the form")
    limit = f"the limit of {max_bytes / 1e6:g} MB (s2lc serve --max-upload-mb)"
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise UploadError(413, f"request of {int(length) / 1e6:.1f} MB exceeds {limit}")

    found: list[tuple[bytes, str | None]] = []

    def on_file(f) -> None:
        if f.field_name == FILE_FIELD.encode():
            f.file_object.seek(0)
            found.append((f.file_object.read(), (f.file_name or b"").decode("utf-8", "replace") or None))
        f.close()

    def on_field(f) -> None:
        if f.field_name == FILE_FIELD.encode():
            found.append((f.value or b"", None))

    # everything in memory: the body is bounded by max_bytes, so no temporary file is needed
    parser = FormParser(
        "multipart/form-data", on_field, on_file, boundary=boundary,
        config={"MAX_MEMORY_FILE_SIZE": math.inf, "MAX_BODY_SIZE": math.inf},
    )
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise UploadError(413, f"request body exceeds {limit}")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise UploadError(400, f"malformed multipart body ({_one_line(exc)})") from None
    if not found:
        raise UploadError(422, f"no '{FILE_FIELD}' field in the form; send the image as form field '{FILE_FIELD}'")
    if len(found) > 1:
        raise UploadError(422, f"{len(found)} '{FILE_FIELD}' fields in the form; send one file per request")
    return found[0]
