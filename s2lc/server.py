"""The HTTP classification service behind ``s2lc serve``: the FastAPI app and its schemas.

:func:`create_app` loads one checkpoint, once, and answers:

- ``POST /classify``: a multipart upload in field ``file``, decoded by :mod:`s2lc.uploads`: an
  8-bit RGB PNG or JPEG patch gets one prediction, as does a GeoTIFF of Sentinel-2 DN of exactly
  one patch; a larger (or smaller) georeferenced GeoTIFF is cut into patches and answered as a
  GeoJSON FeatureCollection in EPSG:4326.
- ``GET /health``, ``GET /model`` and FastAPI's ``/openapi.json`` and ``/docs``.

Uploads stay in memory: the body is streamed into the multipart parser and refused with 413
as soon as it passes the size limit. Only one thread runs the model: a
:class:`~s2lc.batching.Batcher` gathers the patches of concurrent requests into batches, so the
network is shared read-only and never entered twice at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, Literal

import numpy as np

from s2lc.errors import ArgumentError, DependencyError

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # pragma: no cover - exercised by the CLI test with the extra hidden
    raise DependencyError(f'the s2lc server needs the "serve" extra ({exc}); pip install "s2lc[serve]"') from exc

from s2lc import __version__
from s2lc.batching import Batcher, BusyError
from s2lc.checkpoint import LoadedModel
from s2lc.legend import Legend
from s2lc.uploads import (
    DEFAULT_MAX_PIXELS,
    ServeError,
    Upload,
    UploadError,
    contract_name,
    decode_upload,
    one_line,
    patch_geometry,
    sniff_format,
)

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
#: Multipart form field holding the upload.
FILE_FIELD = "file"
#: GeoJSON coordinates: 6 decimals of a degree, about 0.1 m (RFC 7946 §11.2).
_DECIMALS = 6


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

_ERRORS = {
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


def _prediction(legend: Legend, p: np.ndarray) -> dict[str, Any]:
    k = int(p.argmax())
    entry = legend.land_cover[k]
    return {"class": entry.name, "code": entry.code, "label": entry.label, "probability": float(p[k])}


def _collection(upload: Upload, probs: np.ndarray, legend: Legend, answer: dict[str, Any]) -> dict[str, Any]:
    """A tiled upload's patches as a GeoJSON FeatureCollection; ``answer``: model, input and notes."""
    boxes, rings, pixels = patch_geometry(upload)
    rings = np.round(rings, _DECIMALS)
    features = [
        {
            "type": "Feature",
            "id": f"r{row}c{col}",
            "geometry": {"type": "Polygon", "coordinates": [rings[i].tolist()]},
            "properties": {
                **_prediction(legend, probs[i]), "row": row, "col": col,
                "valid_fraction": round(int(upload.valid[i]) / int(pixels[i]), 4),
                "source_bounds": boxes[i].tolist(),
            },
        }
        for i, (row, col) in enumerate(upload.cells.tolist())
    ]
    return {
        "type": "FeatureCollection", "features": features, "source_crs": upload.crs.to_string(),
        "patch_size": upload.grid.patch, "patches": {"classified": len(features), "no_data": upload.n_empty},
        **answer,
    }


def _new_app(loaded: LoadedModel, model_name: str, batcher: Batcher) -> FastAPI:
    """The FastAPI application without routes: metadata, shutdown of the batcher, error bodies."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(batcher.close)

    contract = loaded.contract
    app = FastAPI(
        title="s2lc",
        version=__version__,
        summary="Land-cover classes of Sentinel-2 patches",
        description=f"Model **{model_name}** (sha256 `{loaded.sha256}`), bands {', '.join(contract.bands)}, "
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
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); the server log has the details"},
                            status_code=500)

    return app


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
    model_ref = {"name": contract_name(contract), "sha256": loaded.sha256}
    logger.info("model %s (sha256 %s…) loaded from %s; inference on %s", model_ref["name"], loaded.sha256[:12], loaded.path, dev)

    def predict(x: np.ndarray) -> np.ndarray:
        return predict_proba(loaded.model, x, contract.divisor, batch_size=batch_size, device=dev, precision=precision,
                             temperature=contract.temperature)

    batcher = Batcher(predict, max_batch=batch_size, max_wait_s=max_wait_ms / 1000, max_queue=max_queue)
    app = _new_app(loaded, model_ref["name"], batcher)

    @app.post(
        "/classify",
        response_model=Prediction | PatchCollection,
        summary="Classify an uploaded patch or GeoTIFF",
        openapi_extra={"requestBody": _CLASSIFY_BODY},
        responses=_ERRORS,
    )
    async def classify(request: Request) -> dict[str, Any]:
        """A PNG/JPEG or a 64×64 GeoTIFF gives one prediction; a larger georeferenced GeoTIFF gives a
        GeoJSON FeatureCollection (EPSG:4326) of its 64×64 patches."""
        data, filename = await _read_upload(request, max_bytes)
        upload = await run_in_threadpool(decode_upload, data, contract, filename or "upload", max_pixels)
        del data
        probs = await asyncio.wrap_future(batcher.submit(upload.patches))
        info = {"filename": filename, "format": upload.format, "width": upload.width, "height": upload.height}
        answer = {"model": model_ref, "input": info, "notes": upload.notes}
        if upload.grid is None:
            probabilities = {n: float(v) for n, v in zip(contract.classes, probs[0])}
            return {**_prediction(legend, probs[0]), "probabilities": probabilities, **answer}
        return await run_in_threadpool(_collection, upload, probs, legend, answer)

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
        raise UploadError(400, f"malformed multipart body ({one_line(exc)})") from None
    if not found:
        raise UploadError(422, f"no '{FILE_FIELD}' field in the form; send the image as form field '{FILE_FIELD}'")
    if len(found) > 1:
        raise UploadError(422, f"{len(found)} '{FILE_FIELD}' fields in the form; send one file per request")
    return found[0]
