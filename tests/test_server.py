"""The HTTP service: every endpoint and refusal through FastAPI's TestClient, the decoder and the
batcher on their own, and one run over a real loopback socket with concurrent clients.

Predictions are checked against :func:`s2lc.inference.predict_proba` on the same model and the
same arrays, so a wrong band order, scaling, mask or patch cut shows as different numbers.
"""

from __future__ import annotations

import io
import threading
import time
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from affine import Affine
from PIL import Image
from pyproj import Transformer

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from s2lc.checkpoint import MS_SCALING, RGB_SCALING, ModelContract, save_checkpoint  # noqa: E402
from s2lc.inference import predict_proba  # noqa: E402
from s2lc.models import build_model  # noqa: E402
from s2lc.server import (  # noqa: E402
    Batcher,
    BusyError,
    UploadError,
    create_app,
    decode_upload,
    patch_geometry,
    sniff_format,
)

CLASSES = ["AnnualCrop", "Forest", "River", "SeaLake"]
CRS = "EPSG:32633"
ORIGIN = (300_000.0, 5_900_040.0)
LIMIT_MB = 0.2  # the test app's upload limit: a 64×64 PNG is ~12 kB, the test GeoTIFFs < 100 kB


def _contract(**kw) -> ModelContract:
    base = dict(arch="resnet18", bands=["B04", "B03", "B02"], classes=CLASSES, scaling=dict(RGB_SCALING),
                mean=[0.3, 0.4, 0.5], std=[0.2, 0.2, 0.2], name="tiny-rgb")
    base.update(kw)
    return ModelContract(**base)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("resnet18", 3, len(CLASSES), [0.3, 0.4, 0.5], [0.2, 0.2, 0.2]).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    sha = save_checkpoint(path, model, _contract(), dtype=torch.float32)
    return path, sha


def _test_client(app, **kw):
    with warnings.catch_warnings():  # starlette's notice about its httpx-based client
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient
    return TestClient(app, **kw)


@pytest.fixture(scope="module")
def app(checkpoint):
    return create_app(checkpoint[0], max_upload_mb=LIMIT_MB, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def client(app):
    with _test_client(app) as c:
        yield c


def expected(app, patches: np.ndarray) -> np.ndarray:
    """Probabilities straight from the model, for (n, bands, 64, 64) stored values."""
    loaded = app.state.loaded
    return predict_proba(loaded.model, patches.astype(np.float32), loaded.contract.divisor, device="cpu", precision="fp32")


def png(rgb: np.ndarray, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, mode=None if mode == "RGB" else mode).save(buf, "PNG")
    return buf.getvalue()


def jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def geotiff(dn: np.ndarray, descriptions=None, crs=CRS, transform=None, nodata=None, pixel=10.0) -> bytes:
    """(bands, h, w) array as GeoTIFF bytes; ``crs=None`` for a plain TIFF without georeferencing."""
    from rasterio.io import MemoryFile

    count, h, w = dn.shape
    profile = dict(driver="GTiff", width=w, height=h, count=count, dtype=dn.dtype.name, nodata=nodata)
    if crs is not None:
        profile.update(crs=crs, transform=transform or Affine(pixel, 0, ORIGIN[0], 0, -pixel, ORIGIN[1]))
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(dn)
            if descriptions:
                ds.descriptions = tuple(descriptions)
        return mem.read()


def rgb_patch(seed: int, size=(64, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def dn_raster(seed: int, h: int, w: int, bands: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(200, 2600, (bands, h, w), dtype=np.uint16)


def post(client, data: bytes, name: str = "upload.bin"):
    return client.post("/classify", files={"file": (name, data, "application/octet-stream")})


def assert_serving(client):
    """The server still answers, and still classifies."""
    assert client.get("/health").json()["status"] == "ok"
    r = post(client, png(rgb_patch(99)), "ok.png")
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- endpoints


def test_health_names_the_model(client, checkpoint):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["model"] == {"name": "tiny-rgb", "sha256": checkpoint[1]}


def test_model_returns_the_contract_and_codes(client, checkpoint):
    body = client.get("/model").json()
    assert body["sha256"] == checkpoint[1] and body["file"] == "tiny.safetensors"
    assert [(c["code"], c["name"]) for c in body["classes"]] == list(enumerate(CLASSES, start=1))
    contract = body["contract"]
    assert contract["bands"] == ["B04", "B03", "B02"]
    assert contract["scaling"] == RGB_SCALING
    assert contract["patch_size"] == 64 and contract["arch"] == "resnet18"


def test_openapi_documents_the_upload_and_both_answers(client):
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) >= {"/classify", "/health", "/model"}
    post_op = doc["paths"]["/classify"]["post"]
    schema = post_op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"] and schema["properties"]["file"]["format"] == "binary"
    ok = post_op["responses"]["200"]["content"]["application/json"]["schema"]
    refs = {s["$ref"].rsplit("/", 1)[-1] for s in ok["anyOf"]}
    assert refs == {"Prediction", "PatchCollection"}
    assert {"413", "415", "422"} <= set(post_op["responses"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_png_patch_is_classified_as_its_stored_values(client, app, checkpoint):
    rgb = rgb_patch(1)
    r = post(client, png(rgb), "patch.png")
    assert r.status_code == 200, r.text
    body = r.json()
    want = expected(app, rgb.transpose(2, 0, 1)[None])[0]
    got = np.array([body["probabilities"][c] for c in CLASSES])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert list(body["probabilities"]) == CLASSES
    k = int(want.argmax())
    assert body["class"] == CLASSES[k] and body["code"] == k + 1
    assert body["probability"] == pytest.approx(want[k], abs=1e-5)
    assert body["model"] == {"name": "tiny-rgb", "sha256": checkpoint[1]}
    assert body["input"] == {"filename": "patch.png", "format": "PNG", "width": 64, "height": 64}
    assert body["notes"] == []


def test_larger_jpeg_is_resized_bilinear_with_a_note(client, app):
    data = jpeg(rgb_patch(2, size=(80, 100)))  # 100 wide, 80 high
    r = post(client, data, "photo.jpg")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input"]["format"] == "JPEG" and (body["input"]["width"], body["input"]["height"]) == (100, 80)
    assert len(body["notes"]) == 1 and "resized from 100×80 to 64×64" in body["notes"][0]
    assert "aspect ratio not kept" in body["notes"][0]
    resized = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((64, 64), Image.Resampling.BILINEAR))
    want = expected(app, resized.transpose(2, 0, 1)[None])[0]
    np.testing.assert_allclose([body["probabilities"][c] for c in CLASSES], want, atol=1e-5)


def test_geotiff_patch_is_scaled_from_dn_and_bands_found_by_description(client, app):
    dn = dn_raster(3, 64, 64)  # stored as B02, B03, B04: the reverse of the model's order
    dn[:, :5, :7] = 0  # no data
    data = geotiff(dn, descriptions=["B02 blue", "B03", "B4"], nodata=0)
    r = post(client, data, "patch.tif")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input"]["format"] == "GeoTIFF" and body["notes"] == []
    contract = app.state.loaded.contract
    ordered = dn[::-1].astype(np.float32)
    ordered[:, :5, :7] = np.nan
    stored = contract.to_dst(ordered)
    assert stored[0, 0, 0] == 0 and stored[0, 10, 10] >= 1  # no data → 0, data → 1..255
    want = expected(app, stored[None])[0]
    np.testing.assert_allclose([body["probabilities"][c] for c in CLASSES], want, atol=1e-5)


def test_geotiff_without_descriptions_is_read_in_file_order_with_a_note(client, app):
    dn = dn_raster(4, 64, 64)
    r = post(client, geotiff(dn), "plain.tif")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["notes"] == ["the bands carry no Sentinel-2 descriptions; taken in file order as B04, B03, B02"]
    want = expected(app, app.state.loaded.contract.to_dst(dn.astype(np.float32))[None])[0]
    np.testing.assert_allclose([body["probabilities"][c] for c in CLASSES], want, atol=1e-5)


def test_larger_geotiff_gives_patches_as_geojson_in_wgs84(client, app):
    h, w = 100, 150  # 2 × 3 patches; the last row and column reach past the edge
    dn = dn_raster(5, h, w)
    dn[:, :64, :64] = 0  # patch r0c0 holds no data: left out
    dn[:, 64:80, 64:128] = 0  # patch r1c1: part no data
    r = post(client, geotiff(dn, descriptions=["B04", "B03", "B02"], nodata=0), "scene.tif")
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["source_crs"] == CRS and fc["patch_size"] == 64
    assert fc["patches"] == {"classified": 5, "no_data": 1}
    assert fc["input"]["width"] == w and fc["input"]["height"] == h and fc["notes"] == []
    feats = {f["id"]: f for f in fc["features"]}
    assert set(feats) == {"r0c1", "r0c2", "r1c0", "r1c1", "r1c2"}

    edge = feats["r1c2"]["properties"]
    x0, y0 = ORIGIN
    assert edge["source_bounds"] == [x0 + 1280, y0 - 1000, x0 + 1500, y0 - 640]  # clipped to the raster
    assert edge["valid_fraction"] == 1.0 and (edge["row"], edge["col"]) == (1, 2)
    assert feats["r1c1"]["properties"]["valid_fraction"] == pytest.approx(1 - (16 * 64) / (36 * 64), abs=1e-4)

    to_wgs84 = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    left, bottom, right, top = edge["source_bounds"]
    lon, lat = to_wgs84.transform([left, right, right, left, left], [bottom, bottom, top, top, bottom])
    ring = np.array(feats["r1c2"]["geometry"]["coordinates"][0])
    assert feats["r1c2"]["geometry"]["type"] == "Polygon" and ring.shape == (5, 2)
    np.testing.assert_allclose(ring, np.stack([lon, lat], axis=1), atol=2e-6)
    assert 11 < ring[0, 0] < 13 and 53 < ring[0, 1] < 54  # 200 km west of 15° E in UTM 33N: lon, lat order

    contract = app.state.loaded.contract
    stored = contract.to_dst(np.where(dn == 0, np.nan, dn.astype(np.float32)))
    padded = np.pad(stored, ((0, 0), (0, 128 - h), (0, 192 - w)), mode="symmetric")  # the raster mirrored at its edge
    interior, corner = padded[:, 0:64, 64:128], padded[:, 64:128, 128:192]
    want = expected(app, np.stack([interior, corner]))
    for fid, p in zip(("r0c1", "r1c2"), want):
        props = feats[fid]["properties"]
        k = int(p.argmax())
        assert (props["class"], props["code"]) == (CLASSES[k], k + 1)
        assert props["probability"] == pytest.approx(p[k], abs=1e-5)


# --------------------------------------------------------------------------- refusals


def _multipart(data: bytes, boundary: str = "s2lcboundary") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


REFUSALS = {
    "not an image": (lambda: b"hello, not an image", 415, "neither a PNG, a JPEG nor a GeoTIFF"),
    "empty file": (lambda: b"", 415, "an empty file"),
    "truncated PNG": (lambda: png(rgb_patch(6))[:60], 415, "not a readable PNG"),
    "garbage after TIFF magic": (lambda: b"II*\x00" + b"\x00" * 100, 415, "not a readable GeoTIFF"),
    "truncated GeoTIFF": (lambda: geotiff(dn_raster(25, 64, 64))[:-500], 415, "not a readable GeoTIFF (band 1: "),
    "grayscale PNG": (lambda: png(rgb_patch(7)[..., 0], mode="L"), 422, "not 8-bit RGB"),
    "wrong bands": (lambda: geotiff(dn_raster(8, 64, 64), descriptions=["B08", "B11", "B12"]), 422,
                    "lacks band(s) B04, B03, B02"),
    "four unnamed bands": (lambda: geotiff(dn_raster(9, 64, 64, bands=4)), 422, "4 band(s) without Sentinel-2 band descriptions"),
    "8-bit GeoTIFF": (lambda: geotiff(rgb_patch(10).transpose(2, 0, 1).copy()), 422, "8-bit"),
    "large TIFF without georeferencing": (lambda: geotiff(dn_raster(11, 100, 100), crs=None), 422, "no georeferencing"),
    "all no data": (lambda: geotiff(np.zeros((3, 64, 64), np.uint16), nodata=0), 422, "every pixel is no-data"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_upload_is_refused_with_json_and_server_keeps_serving(client, case):
    make, status, message = REFUSALS[case]
    r = post(client, make())
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["detail"]
    assert_serving(client)


def test_missing_field_and_wrong_content_type_are_4xx(client):
    r = client.post("/classify", files={"image": ("a.png", png(rgb_patch(12)), "image/png")})
    assert r.status_code == 422 and "no 'file' field" in r.json()["detail"]
    r = client.post("/classify", json={"file": "a.png"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
    r = client.post("/classify", content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= r.status_code < 500 and r.json()["detail"]
    r = client.post("/classify", files=[("file", ("a.png", png(rgb_patch(13)))), ("file", ("b.png", png(rgb_patch(14))))])
    assert r.status_code == 422 and "one file per request" in r.json()["detail"]
    assert_serving(client)


def test_upload_over_the_limit_is_413_declared_or_streamed(client):
    big = _multipart(b"\x89PNG\r\n\x1a\n" + bytes(int(LIMIT_MB * 1e6)))
    headers = {"content-type": "multipart/form-data; boundary=s2lcboundary"}
    r = client.post("/classify", content=big, headers=headers)  # Content-Length says it
    assert r.status_code == 413 and "exceeds the limit of 0.2 MB" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while it streams in
        for i in range(0, len(big), 16_384):
            yield big[i : i + 16_384]

    r = client.post("/classify", content=chunks(), headers=headers)
    assert r.status_code == 413 and "request body exceeds" in r.json()["detail"]
    assert_serving(client)


def test_inference_failure_is_a_json_500_and_the_next_request_works(app, client, monkeypatch):
    def broken(x):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(app.state.batcher, "predict", broken)
    quiet = _test_client(app, raise_server_exceptions=False)  # answer as a server would, not raise here
    r = quiet.post("/classify", files={"file": ("a.png", png(rgb_patch(26)))})
    assert r.status_code == 500 and r.json() == {"detail": "internal error (RuntimeError); the server log has the details"}
    monkeypatch.undo()
    assert_serving(client)


def test_unknown_path_and_method_answer_json(client):
    assert client.get("/nothing").json() == {"detail": "Not Found"}
    assert client.get("/classify").status_code == 405


# --------------------------------------------------------------------------- decoder on its own


def test_sniff_format_trusts_content_not_names():
    assert sniff_format(png(rgb_patch(15))) == "PNG"
    assert sniff_format(jpeg(rgb_patch(16))) == "JPEG"
    assert sniff_format(geotiff(dn_raster(17, 8, 8))) == "GeoTIFF"
    assert sniff_format(b"GIF89a") is None


def test_decoder_refuses_rgb_images_for_a_multispectral_model():
    ms = _contract(bands=["B02", "B03", "B04", "B08"], scaling=dict(MS_SCALING), mean=[0.1] * 4, std=[0.1] * 4)
    with pytest.raises(UploadError, match="takes bands B02, B03, B04, B08") as err:
        decode_upload(png(rgb_patch(18)), ms, "x.png")
    assert err.value.status == 422


def test_decoder_limits_pixels_and_notes_alpha_and_pixel_size():
    with pytest.raises(UploadError, match="exceed the limit of 1,000") as err:
        decode_upload(png(rgb_patch(19)), _contract(), "x.png", max_pixels=1000)
    assert err.value.status == 413
    rgba = np.dstack([rgb_patch(20), np.full((64, 64), 128, np.uint8)])
    up = decode_upload(png(rgba, mode="RGBA"), _contract(), "a.png")
    assert up.notes == ["the alpha channel was ignored"]
    np.testing.assert_array_equal(up.patches[0], rgba[..., :3].transpose(2, 0, 1))
    up = decode_upload(geotiff(dn_raster(21, 70, 70), pixel=20.0), _contract(), "coarse.tif")
    assert up.notes[-1].startswith("pixels are 20 m in B04, B03, B02, the model was trained on 10 m pixels")
    assert up.patches.shape == (4, 3, 64, 64) and up.grid.rows == up.grid.cols == 2
    up = decode_upload(geotiff(dn_raster(21, 64, 64), pixel=20.0), _contract(), "coarse-patch.tif")
    assert up.grid is None and up.notes[-1].startswith("pixels are 20 m in")


@pytest.mark.parametrize("outer", ["python", "cli"])
def test_a_geotiff_is_decoded_under_s2lc_gdal_configuration_in_the_worker_thread(monkeypatch, outer):
    """From Python, and under ``s2lc serve``, whose main thread holds s2lc's configuration."""
    from contextlib import nullcontext

    import rasterio
    from rasterio.env import get_gdal_config

    from s2lc.gdal import GDAL_OPTIONS, gdal_env

    seen = []
    real = rasterio.io.DatasetReader.read

    def read(self, *args, **kwargs):
        seen.append({k: get_gdal_config(k) for k in GDAL_OPTIONS})
        return real(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", read)
    data = geotiff(dn_raster(22, 64, 64))
    with gdal_env() if outer == "cli" else nullcontext():
        worker = threading.Thread(target=lambda: decode_upload(data, _contract(), "a.tif"))  # as the server's pool
        worker.start()
        worker.join()
    assert seen and all(options == GDAL_OPTIONS for options in seen), seen


def test_decoder_takes_a_big_jpeg_at_reduced_scale_within_the_pixel_limit():
    big = jpeg(np.repeat(np.repeat(rgb_patch(23, size=(10, 12)), 80, axis=0), 80, axis=1))  # 960 × 800
    up = decode_upload(big, _contract(), "photo.jpg", max_pixels=20_000)  # 1/8 scale: 120 × 100
    assert up.patches.shape == (1, 3, 64, 64) and (up.width, up.height) == (960, 800)
    assert "resized from 960×800 to 64×64" in up.notes[0]
    with pytest.raises(UploadError, match="960×800 pixels exceed the limit of 10,000"):
        decode_upload(big, _contract(), "photo.jpg", max_pixels=10_000)


def test_small_georeferenced_geotiff_is_one_clipped_patch():
    up = decode_upload(geotiff(dn_raster(24, 30, 40), descriptions=["B04", "B03", "B02"]), _contract(), "small.tif")
    assert up.patches.shape == (1, 3, 64, 64) and up.patches.dtype == np.uint8 and up.cells.tolist() == [[0, 0]]
    boxes, rings, pixels = patch_geometry(up)
    x0, y0 = ORIGIN
    assert boxes.tolist() == [[x0, y0 - 300, x0 + 400, y0]] and pixels.tolist() == [1200]
    assert rings.shape == (1, 5, 2) and (rings[0, 0] == rings[0, -1]).all()


def test_decoder_orders_image_channels_by_the_contract():
    rgb = rgb_patch(22)
    up = decode_upload(png(rgb), _contract(bands=["B02", "B03", "B04"]), "x.png")
    np.testing.assert_array_equal(up.patches[0], rgb.transpose(2, 0, 1)[::-1])


# --------------------------------------------------------------------------- batcher on its own


def _echo(batches: list[int]):
    def predict(x: np.ndarray) -> np.ndarray:
        batches.append(len(x))
        m = x.reshape(len(x), -1).mean(axis=1)
        return np.stack([m, -m], axis=1)

    return predict


def test_batcher_gathers_concurrent_submissions_and_returns_each_its_own():
    sizes: list[int] = []
    b = Batcher(_echo(sizes), max_batch=5, max_wait_s=10.0)  # waits until 5 patches are queued
    futures = []
    for i in range(5):
        futures.append(b.submit(np.full((1, 3, 4, 4), i, np.float32)))
        time.sleep(0.02)  # arriving one by one, as requests do
    results = [f.result(timeout=10) for f in futures]
    assert sizes == [5] and b.batches == 1
    assert [r.tolist() for r in results] == [[[i, -i]] for i in range(5)]
    b.close()


def test_batcher_waits_at_most_max_wait_for_company():
    sizes: list[int] = []
    b = Batcher(_echo(sizes), max_batch=100, max_wait_s=0.2)
    t0 = time.monotonic()
    b.submit(np.zeros((1, 3, 4, 4), np.float32)).result(timeout=10)
    assert 0.2 <= time.monotonic() - t0 < 5 and sizes == [1]
    b.close()


def test_batcher_never_splits_a_submission_nor_overfills_a_batch():
    sizes: list[int] = []
    b = Batcher(_echo(sizes), max_batch=4, max_wait_s=0.3)
    first = b.submit(np.zeros((3, 3, 4, 4), np.float32))
    second = b.submit(np.ones((2, 3, 4, 4), np.float32))
    assert first.result(timeout=10).shape == (3, 2) and second.result(timeout=10)[:, 0].tolist() == [1, 1]
    assert sizes == [3, 2]
    b.close()


def test_batcher_failure_reaches_every_waiter_and_the_worker_goes_on():
    calls = []

    def predict(x):
        calls.append(len(x))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return np.zeros((len(x), 2), np.float32)

    b = Batcher(predict, max_batch=2, max_wait_s=10.0)
    futures = [b.submit(np.zeros((1, 1, 2, 2), np.float32)) for _ in range(2)]
    for f in futures:
        with pytest.raises(RuntimeError, match="boom"):
            f.result(timeout=10)
    assert b.submit(np.zeros((2, 1, 2, 2), np.float32)).result(timeout=10).shape == (2, 2)
    b.close()


def test_batcher_refuses_when_full_and_after_close():
    release = threading.Event()

    def predict(x):
        release.wait(10)
        return np.zeros((len(x), 2), np.float32)

    b = Batcher(predict, max_batch=1, max_wait_s=0.0, max_queue=1)
    running = b.submit(np.zeros((1, 1, 2, 2), np.float32))
    deadline = time.monotonic() + 10
    while b.pending and time.monotonic() < deadline:  # the worker has taken it
        time.sleep(0.005)
    queued = b.submit(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(BusyError, match="already waiting"):
        b.submit(np.zeros((1, 1, 2, 2), np.float32))
    release.set()
    assert running.result(timeout=10).shape == queued.result(timeout=10).shape == (1, 2)
    b.close()
    with pytest.raises(BusyError, match="shutting down"):
        b.submit(np.zeros((1, 1, 2, 2), np.float32))


# --------------------------------------------------------------------------- a real socket


@contextmanager
def uvicorn_on_loopback(app):
    """Serve ``app`` with uvicorn on 127.0.0.1, an ephemeral port, in a thread; stop it on exit."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
    assert not thread.is_alive(), "uvicorn did not stop"


def test_real_socket_concurrent_clients_get_their_own_answers(checkpoint):
    import httpx

    app = create_app(checkpoint[0], batch_size=8, max_wait_ms=300, device="cpu", precision="fp32")
    n = 6
    images = [rgb_patch(100 + i) for i in range(n)]
    want = expected(app, np.stack([im.transpose(2, 0, 1) for im in images]))
    answers: list = [None] * n
    start = threading.Barrier(n)

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            start.wait(10)
            answers[i] = c.post("/classify", files={"file": (f"{i}.png", png(images[i]), "image/png")})

    with uvicorn_on_loopback(app) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/health").json()["status"] == "ok"
            bad = c.post("/classify", files={"file": ("x.txt", b"plain text", "text/plain")})
            assert bad.status_code == 415 and "detail" in bad.json()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        batcher = app.state.batcher
    for i, r in enumerate(answers):
        assert r is not None and r.status_code == 200, r and r.text
        got = [r.json()["probabilities"][c] for c in CLASSES]
        np.testing.assert_allclose(got, want[i], atol=1e-5)
        assert r.json()["input"]["filename"] == f"{i}.png"
    assert batcher.batches < n  # concurrent requests shared batches
    assert batcher._thread is not None and not batcher._thread.is_alive()  # shutdown stopped the worker
