"""Benchmark ``s2lc classify`` on a synthetic full Sentinel-2 tile (10 980 × 10 980 at 10 m).

Reports, in one run on this machine:
  - model alone: patches/s of the model on 64 × 64 patches (batch 256), as classify runs it;
  - decode: seconds to read the bands the model needs over the whole tile through the reader;
  - end to end: wall seconds and peak RSS of ``s2lc classify`` in a fresh process;
  - the origin's approach: ``wide_resnet50_2``, each patch upsampled to 224 × 224 and classified
    one at a time, measured on a sample and projected to the tile, as the ratio we beat it by.

Targets (issue 4): end to end ≤ 1.5 × (decode + model seconds), peak RSS ≤ 2 GB.

Usage: python bench/classify_tile.py [--data DIR] [--size 10980] [--model PATH] [--json OUT]
The synthetic tile (baseline 04.00 L1C: B02, B03, B04 and B08 as 10 m JPEG 2000 with
1024 × 1024 tiles, B11 at 20 m (the snow test's bands, which a real Level-1C product has), a
60 m cloud mask, a no-data strip at the swath edge) is written once into --data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from s2lc import testing


def make_tile(root: Path, size: int, seed: int = 0) -> Path:
    """A synthetic L1C product (baseline 04.00) with only the RGB bands, land-cover-like texture."""
    name = testing.product_name("L1C", "04.00")
    safe = root / f"{name}.SAFE"
    if (safe / "MTD_MSIL1C.xml").exists() and "B11" in (safe / "MTD_MSIL1C.xml").read_text():
        return safe
    rng = np.random.default_rng(seed)
    cells = -(-size // 64)
    # land cover in 640 m blocks with some smoothness, 5 ground classes
    labels = rng.integers(0, len(testing.CLASSES), (cells // 4 + 1, cells // 4 + 1)).repeat(4, 0).repeat(4, 1)
    labels = np.where(rng.random((labels.shape)) < 0.3, rng.integers(0, len(testing.CLASSES), labels.shape), labels)
    nodata_cols = size // 12
    files = []
    from s2lc.sentinel2 import BAND_IDS

    for band_id, factor in (("B02", 1), ("B03", 1), ("B04", 1), ("B08", 1), ("B11", 2)):
        spectrum = testing.SPECTRA[:, BAND_IDS.index(band_id)]
        n = size // factor
        out = np.empty((n, n), np.uint16)
        for r0 in range(0, n, 1024):  # build row blocks to keep memory low
            r1 = min(n, r0 + 1024)
            cell = 64 // factor
            lab = labels[r0 // cell : (r1 - 1) // cell + 1].repeat(cell, 0).repeat(cell, 1)
            lab = lab[(r0 % cell) : (r0 % cell) + (r1 - r0), :n]
            block = spectrum[lab] * (0.9 + 0.2 * rng.random((r1 - r0, n))) + 1000  # + offset (04.00)
            out[r0:r1] = np.clip(block, 1, 65535).astype(np.uint16)
        out[:, : nodata_cols // factor] = 0
        rel = testing.image_file("L1C", band_id)
        files.append(rel)
        path = safe / f"{rel}.jp2"
        t0 = time.perf_counter()
        testing.write_jp2(path, out, 10 * factor, block=1024 // factor)
        print(f"wrote {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        del out
    n60 = -(-size // 6)
    cloud = np.zeros((3, n60, n60), np.uint8)
    cloud[0, n60 // 3 : n60 // 3 + n60 // 10, n60 // 2 : n60 // 2 + n60 // 8] = 1  # a cloud block, ~1 % of the tile
    testing.write_jp2(safe / testing.granule_folder("L1C") / "QI_DATA" / "MSK_CLASSI_B00.jp2", cloud, 60)
    (safe / "MTD_MSIL1C.xml").write_text(testing.metadata_xml("L1C", "04.00", name, files, 1.2))
    return safe


def bench_decode(product: Path, bands: list[str]) -> float:
    """Seconds to decode ``bands`` of the whole tile through the reader as classify does: strips
    of whole JPEG 2000 tiles, the bands of a strip side by side."""
    from rasterio.windows import Window

    from s2lc.product import open_product

    t0 = time.perf_counter()
    with open_product(product) as p:
        rows = p.block_rows(bands)
        for top in range(0, p.grid.height, rows):
            arr = p.read(bands, window=Window(0, top, p.grid.width, min(rows, p.grid.height - top)))
            del arr
    return time.perf_counter() - t0


def bench_model(model_path: str | None, n: int = 4096, batch: int = 256) -> tuple[float, dict]:
    import torch

    from s2lc.classify import load_model
    from s2lc.inference import predict_proba

    loaded = load_model(model_path)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(1, 255, (n, len(loaded.contract.bands), 64, 64), dtype=np.uint8))
    predict_proba(loaded.model, x[:batch], loaded.contract.divisor, batch_size=batch)  # warm-up
    rates = {}
    for precision in ("auto", "fp32"):
        t0 = time.perf_counter()
        predict_proba(loaded.model, x, loaded.contract.divisor, batch_size=batch, precision=precision)
        rates[precision] = n / (time.perf_counter() - t0)
    return rates["auto"], {
        "arch": loaded.contract.arch, "patches_per_s_fp32": rates["fp32"], "file_mb": loaded.path.stat().st_size / 1e6
    }


def bench_origin(n: int = 24) -> float:
    """The origin notebook's way: wide_resnet50_2, 224 × 224, one patch per call (fp32)."""
    import torch

    from s2lc.models import build_model

    model = build_model("wide_resnet50_2", 3, 10).eval()
    rng = np.random.default_rng(0)
    patches = torch.from_numpy(rng.integers(1, 255, (n + 2, 3, 64, 64), dtype=np.uint8))
    with torch.inference_mode():
        for i in range(n + 2):
            if i == 2:
                t0 = time.perf_counter()
            x = patches[i : i + 1].float() / 255
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            model(x).argmax(1).item()
    return n / (time.perf_counter() - t0)


def _hwm_mb(pid: int) -> float | None:
    """The peak resident memory (VmHWM) of a running process, from /proc (Linux), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def bench_end_to_end(product: Path, model_path: str | None, out: Path) -> tuple[float, float, dict]:
    """Wall seconds and peak RSS of ``s2lc classify`` in a fresh process.

    The peak is the child's own VmHWM, polled from /proc: ``getrusage(RUSAGE_CHILDREN)`` would
    also count the memory the child had between fork and exec, a copy of this (torch-laden) process.
    """
    cmd = [sys.executable, "-m", "s2lc", "-q", "classify", str(product), "-o", str(out), "--overwrite", "--json"]
    if model_path:
        cmd += ["--model", model_path]
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:  # pipes could fill up
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _hwm_mb(proc.pid) or 0.0)
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        out_f.seek(0)
        err_f.seek(0)
        stdout, stderr = out_f.read(), err_f.read()
    if proc.returncode:
        raise SystemExit(f"classify failed: {stderr.strip()}")
    if not peak:  # no /proc: fall back on rusage (an over-estimate, see above)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak, json.loads(stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("S2LC_BENCH_DIR", "/tmp/s2lc-bench")))
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument("--origin-patches", type=int, default=24)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    args.data.mkdir(parents=True, exist_ok=True)
    product = make_tile(args.data / f"tile{args.size}", args.size)
    from s2lc.classify import load_model
    from s2lc.tiling import TileGrid

    n_patches = len(TileGrid(args.size, args.size))
    wall, rss_mb, summary = bench_end_to_end(product, args.model, args.data / "out")  # first, before this process grows
    bands = load_model(args.model).contract.bands
    decode_s = bench_decode(product, list(bands))
    rate, model_info = bench_model(args.model)
    model_s = n_patches / rate
    origin_rate = bench_origin(args.origin_patches)
    origin_s = n_patches / origin_rate
    res = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "tile": f"{args.size} x {args.size}", "patches": n_patches,
        "patches_classified": summary["stats"]["patches"]["classified"],
        "model": model_info, "model_patches_per_s": rate, "model_seconds": model_s,
        "decode_seconds": decode_s, "end_to_end_seconds": wall,
        "end_to_end_over_decode_plus_model": wall / (decode_s + model_s),
        "peak_rss_mb": rss_mb,
        "classify_internal_seconds": summary["stats"]["seconds"],
        "origin_patches_per_s": origin_rate, "origin_projected_seconds": origin_s,
        "speedup_over_origin": origin_s / wall,
    }
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
