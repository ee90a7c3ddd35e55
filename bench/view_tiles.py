"""What a web-map tile of a full Sentinel-2 tile costs: s2lc view's rendering, zoom by zoom.

    python bench/view_tiles.py [--tiles 30] [--work /tmp/s2lc_view_tiles]

Writes a synthetic full-tile class map (10980², random classes in 64-pixel cells, the COG
s2lc classify writes), then renders random Web Mercator tiles over it at each zoom level with
the function the server and the export use, and counts the tiles an export of each level holds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
from affine import Affine

from s2lc import writers
from s2lc.legend import default_legend
from s2lc.view import find_layers
from s2lc.view.tiles import render_tile, tiles_over

SIZE, CELL = 10980, 64


def write_map(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    cells = rng.integers(1, 11, (SIZE // CELL + 1, SIZE // CELL + 1), dtype=np.uint8)
    data = np.repeat(np.repeat(cells, CELL, 0), CELL, 1)[:SIZE, :SIZE]
    pid = "S2A_MSIL1C_20200406T101559_N0500_R022_T33UVP_20200406T120000"
    folder.mkdir(parents=True, exist_ok=True)
    return writers.write_class_map(folder / f"{pid}_landcover.tif", data, Affine(10, 0, 399960, 0, -10, 5300040),
                                   "EPSG:32633", default_legend().classes,
                                   {"S2LC_PRODUCT_ID": pid, "S2LC_SENSING_TIME": "2020-04-06T10:15:59+00:00"},
                                   overwrite=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=30, help="tiles timed per zoom level")
    ap.add_argument("--work", type=Path, default=Path("/tmp/s2lc_view_tiles"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    write_map(args.work)
    print(f"full-tile map written in {time.perf_counter() - t0:.1f} s")
    layer = find_layers([args.work]).of_kind("landcover")[0]
    random.seed(0)
    rows = []
    for z in range(8, 16):
        over = tiles_over(layer.bounds, range(z, z + 1))
        sample = random.sample(over, min(args.tiles, len(over)))
        ms, empty = [], 0
        for t in sample:
            start = time.perf_counter()
            png = render_tile(layer, *t, skip_empty=True)
            ms.append(1000 * (time.perf_counter() - start))
            empty += png is None  # in the bounding box, outside the tile's rotated footprint
        rows.append({"zoom": z, "tiles_in_export": len(over), "empty_in_sample": empty,
                     "median_ms": round(statistics.median(ms), 1),
                     "p95_ms": round(sorted(ms)[int(0.95 * (len(ms) - 1))], 1),
                     "export_minutes_at_median": round(len(over) * statistics.median(ms) / 60000, 1)})
        print(json.dumps(rows[-1]))


if __name__ == "__main__":
    main()
