"""Benchmark cloud detection with s2cloudless on a synthetic full Sentinel-2 tile (10 980 × 10 980 at 10 m).

What ``--clouds s2cloudless`` (or ``auto`` on a Level-1C product without a cloud mask) adds to
``s2lc classify``: reading the ten bands s2cloudless needs averaged onto its 120 m grid (exactly,
at full resolution, as detection does; and for comparison the fast way, from reduced JPEG 2000
levels), and the detection itself. Reports both in seconds, the peak RSS of the process, and how much of a painted
cloud block is found and how much clear land far from it is flagged.

Usage: python bench/cloud_detection.py [--data DIR] [--size 10980] [--json OUT]
The synthetic tile (baseline 02.09 L1C without QI_DATA: the ten bands at their native 10/20/60 m
as JPEG 2000, 640 m blocks of five ground spectra, one cloud block of about 2 % of the tile) is
written once into --data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from s2lc import testing


def cloud_block(size: int) -> tuple[slice, slice]:
    """Rows and columns of the painted cloud (10 m pixels): about 14 % of the side each way."""
    return slice(size // 4, size // 4 + size // 7), slice(size // 2, size // 2 + size // 7)


def make_tile(root: Path, size: int, seed: int = 0) -> Path:
    """A synthetic L1C product (baseline 02.09) with the ten s2cloudless bands and no cloud mask."""
    from s2lc.clouds import BANDS
    from s2lc.sentinel2 import BAND_IDS, band

    name = testing.product_name("L1C", "02.09")
    safe = root / f"{name}.SAFE"
    if (safe / "MTD_MSIL1C.xml").exists():
        return safe
    rng = np.random.default_rng(seed)
    cells = -(-size // 64)
    labels = rng.integers(0, len(testing.CLASSES), (cells, cells))
    rows, cols = cloud_block(size)
    files = []
    for band_id in BANDS:
        factor = band(band_id).resolution // 10
        n = size // factor
        index = BAND_IDS.index(band_id)
        per_cell = testing.SPECTRA[labels, index]  # (cells, cells)
        out = np.empty((n, n), np.uint16)
        for r0 in range(0, n, 1024):
            r1 = min(n, r0 + 1024)
            y = (np.arange(r0, r1) * factor) // 64
            x = (np.arange(n) * factor) // 64
            block = per_cell[np.ix_(y, x)] * (0.95 + 0.1 * rng.random((r1 - r0, n)))
            out[r0:r1] = np.clip(block, 1, 65535).astype(np.uint16)
        out[rows.start // factor : rows.stop // factor,
            cols.start // factor : cols.stop // factor] = testing.CLOUD_SPECTRUM[index]
        rel = testing.image_file("L1C", band_id)
        files.append(rel)
        path = safe / f"{rel}.jp2"
        t0 = time.perf_counter()
        testing.write_jp2(path, out, 10 * factor, block=1024)
        print(f"wrote {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        del out
    (safe / "MTD_MSIL1C.xml").write_text(testing.metadata_xml("L1C", "02.09", name, files, 2.0))
    return safe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("S2LC_BENCH_DIR", "/tmp/s2lc-bench")) / "clouds")
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    from rasterio.windows import Window

    from s2lc import clouds
    from s2lc.product import open_product
    from s2lc.resampling import cell_index

    product = make_tile(args.data / f"tile{args.size}", args.size)
    with open_product(product, clouds="s2cloudless") as p:
        factor = clouds.RESOLUTION / p.grid.resolution
        shape = (round(p.grid.height / factor), round(p.grid.width / factor))
        t = time.perf_counter()
        p.read_averaged(clouds.BANDS, shape)  # the fast way, from reduced JPEG 2000 levels (previews use it)
        fast = time.perf_counter() - t
        t0 = time.perf_counter()
        reflectance = p.read_averaged(clouds.BANDS, shape, exact=True) / np.float32(10000)  # as detection reads
        t1 = time.perf_counter()
        mask = clouds.detect_clouds(reflectance)
        t2 = time.perf_counter()
    with open_product(product, clouds="s2cloudless") as p:  # all of it, as classify meets it: the first mask read
        p.read_masks(Window(0, 0, 64, 64))
        t3 = time.perf_counter()
    rows, cols = cloud_block(args.size)
    painted = np.zeros((args.size, args.size), bool)
    painted[rows, cols] = True
    up = mask[np.ix_(cell_index(0, args.size, args.size, shape[0]), cell_index(0, args.size, args.size, shape[1]))]
    far = np.ones_like(painted)
    far[rows.start - 100 : rows.stop + 100, cols.start - 100 : cols.stop + 100] = False  # beyond 1 km of the block
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "grid": list(shape),
        "read_averaged_exact_seconds": t1 - t0,
        "read_averaged_fast_seconds": fast,
        "detect_seconds": t2 - t1,
        "first_read_masks_seconds": t3 - t2,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "painted_cloud_found": float(up[painted].mean()),
        "clear_far_from_it_flagged": float(up[far].mean()),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
