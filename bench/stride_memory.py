"""Peak memory of ``s2lc classify`` at each ``--stride`` on a full-width strip of a tile.

Memory must stay bounded at any stride: at stride 8 a strip of rows holds 64 × as many patches
as at stride 64. The network is replaced by a stub that returns uniform probabilities, so this
measures what classify itself holds (strips, patches handed to the model, the mosaic), in a
fresh process per stride, without the model's time.

Usage: python bench/stride_memory.py [--width 10980] [--height 2048] [--strides 64 16 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys
import numpy as np
import s2lc.inference as inference
from s2lc.classify import classify

largest = [0]

def stub(model, patches, divisor, batch_size=256, **kwargs):
    largest[0] = max(largest[0], int(np.prod(patches.shape)) * patches.element_size())
    return np.full((len(patches), 10), 0.1, np.float32)

inference.predict_proba = stub
res = classify(sys.argv[1], bands={"B04": 1, "B03": 2, "B02": 3}, stride=int(sys.argv[2]))
print(json.dumps({"stride": int(sys.argv[2]), "patches": res.stats["patches"]["classified"],
                  "largest_model_input_mb": largest[0] / 2**20,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_strip(path: Path, width: int, height: int) -> None:
    """A 3-band uint16 GeoTIFF (B04, B03, B02 DN) with field-like texture, UTM 33N, 10 m."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    fields = rng.integers(500, 2500, (3, height // 64 + 1, width // 64 + 1)).astype(np.uint16)
    data = np.repeat(np.repeat(fields, 64, axis=1), 64, axis=2)[:, :height, :width]
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(300000, 5900040, 10, 10), tiled=True,
                       compress="deflate") as dst:
        dst.write(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=10980)
    ap.add_argument("--height", type=int, default=2048)
    ap.add_argument("--strides", type=int, nargs="+", default=[64, 16, 8])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "strip.tif"
        make_strip(path, args.width, args.height)
        for stride in args.strides:
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(stride)], check=True,
                                 capture_output=True, text=True).stdout
            print(json.dumps({"width": args.width, "height": args.height, **json.loads(out.splitlines()[-1])}))


if __name__ == "__main__":
    main()
