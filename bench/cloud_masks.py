"""Compare two cloud detectors for Level-1C products without a mask: s2cloudless and ukis-csmask.

s2cloudless (what ``--clouds s2cloudless`` runs) flags cloud only, on a 120 m grid; ukis-csmask
(DLR, Apache-2.0: a U-Net run through onnxruntime on 256-pixel tiles, here its 6-band Level-1C
model at 30 m) flags cloud and cloud shadow. On real scenes in ``../shared/data``:

* the T33UUU winter crop (the demo scene): how much each flags, and how much of the crop's open
  water and forest (by its own NIR, :func:`s2lc.yardsticks.nir_proxies`, per pixel) it flags;
* the five eo-learn Slovenia dates (two hazy or cloudy, three clear): how much each flags per date.

Usage: python bench/cloud_masks.py [--json OUT]   (needs ``pip install "ukis-csmask[cpu]"``)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from s2lc.demo import demo_product
from s2lc.product import open_product
from s2lc.yardsticks import SHARED_DATA

CSMASK_BANDS = ["B02", "B03", "B04", "B8A", "B11", "B12"]
CSMASK_NAMES = ["blue", "green", "red", "nir", "swir16", "swir22"]


def csmask_classes(product) -> tuple[np.ndarray, float]:
    """(0 clear, 1 cloud, 2 shadow) on the product's 10 m grid, and the seconds it took (read included)."""
    from ukis_csmask.mask import CSmask

    t0 = time.perf_counter()
    h, w = product.grid.shape
    shape = (max(1, round(h / 3)), max(1, round(w / 3)))  # about 30 m, as the model was trained
    reflectance = product.read_averaged(CSMASK_BANDS, shape, exact=True) / np.float32(10000)
    img = np.nan_to_num(np.moveaxis(reflectance, 0, -1)).astype(np.float32)
    classes = CSmask(img, band_order=CSMASK_NAMES, product_level="l1c").csm[..., 0]
    rows = (np.arange(h) * shape[0] // h)[:, None]
    cols = (np.arange(w) * shape[1] // w)[None, :]
    return classes[rows, cols], time.perf_counter() - t0


def s2cloudless_mask(path) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    with open_product(path, clouds="s2cloudless") as p:
        cloud = p.read_masks().cloud
    return cloud, time.perf_counter() - t0


def compare(path, proxies: bool) -> dict:
    s2c, s2c_s = s2cloudless_mask(path)
    with open_product(path, clouds="none") as p:
        classes, csm_s = csmask_classes(p)
        red, nir = p.read(["B04", "B08"])
    out = {
        "s2cloudless": {"cloud": float(s2c.mean()), "seconds": round(s2c_s, 2)},
        "csmask": {"cloud": float((classes == 1).mean()), "shadow": float((classes == 2).mean()),
                   "seconds": round(csm_s, 2)},
        "agreement_on_cloud": float(((classes == 1) == s2c).mean()),
    }
    if proxies:
        water, forest = nir < 1000, (red < 900) & (nir >= 1000)
        far = ~_near(s2c | (classes == 1), 50)  # pixels more than 500 m from any cloud either finds
        out["open_water_pixels"] = {"fraction": float(water.mean()),
                                    "s2cloudless_flags": float(s2c[water].mean()),
                                    "csmask_flags_cloud": float((classes == 1)[water].mean()),
                                    "csmask_flags_shadow": float((classes == 2)[water].mean())}
        out["forest_pixels"] = {"fraction": float(forest.mean()),
                                "s2cloudless_flags": float(s2c[forest].mean()),
                                "csmask_flags": float((classes > 0)[forest].mean())}
        out["far_from_cloud"] = {"fraction": float(far.mean()),
                                 "csmask_shadow_there": float((classes == 2)[far].mean())}
    return out


def _near(mask: np.ndarray, pixels: int) -> np.ndarray:
    from scipy.ndimage import distance_transform_edt

    return distance_transform_edt(~mask) <= pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {"T33UUU": compare(demo_product(), proxies=True)}
    slovenia = SHARED_DATA / "eolearn_slovenia"
    for path in sorted(slovenia.glob("S2_L1C_*_slovenia.tif")):
        result[path.stem.split("_")[2]] = compare(path, proxies=False)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
