"""Benchmark ``s2lc classify`` over many products: in this process, on ``local:1`` and on ``local:2``.

Writes 8 synthetic products (4 Level-1C with all 13 bands and 4 Level-2A, baselines 02.09 to
05.09, --size 10 m pixels a side, 10 % cloud) once into --data, then classifies them with the
shipped model (``s2lc.batch.classify_many``):

- ``loop``: one after another in this process, which already uses every core (torch threads,
  one decoding thread per band);
- ``local:1``: a Dask LocalCluster of one single-threaded worker process;
- ``local:2``: two of them.

Reports wall seconds and products per hour for each, the scaling efficiency
(local:2 / local:1, what carries over to N machines) and local:2 against the loop (what the engine
costs). Targets (issue 22), on a 2-core machine: local:2 ≥ 1.7 × local:1, and local:2 no slower
than the loop.

Usage: python bench/batch.py [--data DIR] [--size 1830] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

#: Level and baseline of the 8 products: distinct product ids, as distinct products have.
KINDS = [("L1C", "02.09"), ("L1C", "03.00"), ("L1C", "04.00"), ("L1C", "05.00"),
         ("L2A", "02.14"), ("L2A", "03.01"), ("L2A", "04.00"), ("L2A", "05.09")]
N_PRODUCTS = len(KINDS)


def make_products(root: Path, size: int) -> list[Path]:
    from s2lc.testing import make_product

    paths = []
    for i, (level, baseline) in enumerate(KINDS):
        folder = root / f"p{i}"
        existing = sorted(folder.glob("*.SAFE"))
        paths.append(existing[0] if existing else make_product(folder, level, baseline, size=size, seed=i,
                                                               cloud_fraction=0.1))
    return paths


def run(mode: str, products: list[Path], out: Path) -> float:
    from s2lc.batch import classify_many, start_client

    shutil.rmtree(out, ignore_errors=True)
    client = start_client(mode) if mode != "loop" else None
    try:
        if client is not None:  # the workers up before the clock starts; loading the model in them counts
            client.wait_for_workers(int(mode.split(":")[1]))
        t0 = time.perf_counter()
        table = classify_many(products, out, client=client)
        seconds = time.perf_counter() - t0
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            cluster.close()
    failed = table[table.status != "done"]
    if len(failed):
        raise SystemExit(f"{mode}: {len(failed)} products failed: {failed.error.tolist()}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("S2LC_BENCH_DIR", "/tmp/s2lc-bench")) / "batch")
    ap.add_argument("--size", type=int, default=1830)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    products = make_products(args.data / f"size{args.size}", args.size)
    seconds = {}
    for mode in ("loop", "local:1", "local:2"):
        seconds[mode] = run(mode, products, args.data / "out")
        print(f"{mode}: {seconds[mode]:.1f} s, {3600 * N_PRODUCTS / seconds[mode]:.0f} products/h", file=sys.stderr)
    res = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "products": N_PRODUCTS, "size": args.size,
        "seconds": seconds,
        "products_per_hour": {m: 3600 * N_PRODUCTS / s for m, s in seconds.items()},
        "scaling_local2_over_local1": seconds["local:1"] / seconds["local:2"],
        "local2_over_loop": seconds["loop"] / seconds["local:2"],
    }
    res["targets_met"] = {"scaling >= 1.7": res["scaling_local2_over_local1"] >= 1.7,
                          "local:2 no slower than the loop": res["local2_over_loop"] >= 1.0}
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if all(res["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
