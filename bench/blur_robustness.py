"""Validation accuracy of a model when its patches are softer than EuroSAT's.

Real products can be softer at 10 m than EuroSAT's patches: resampling, lossy re-encoding,
another sensor response (the T33UUU crop in ``../shared``, though re-encoded lossy, is not:
``bench/sharpness.py``). A model that learnt
EuroSAT's fine texture alone can lose most of its accuracy to a blur of one pixel. This blurs
every validation patch with a Gaussian of each sigma (pixels, edges mirrored; the blur
``s2lc train --blur`` trains with) and reports accuracy and where the Forest patches go. It
reads the validation split, never the test split, so it may be used to choose.

Usage: python bench/blur_robustness.py DATA [--model PATH] [--sigmas 0 0.5 1 1.5]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np


def main() -> None:
    from s2lc.augment import blur_patches
    from s2lc.checkpoint import load_checkpoint
    from s2lc.datasets import load_dataset
    from s2lc.inference import predict_proba
    from s2lc.models import SHIPPED_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="EuroSAT folder or zip")
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5])
    args = ap.parse_args()

    loaded = load_checkpoint(args.model or SHIPPED_MODEL, fuse=True)
    c = loaded.contract
    ds = load_dataset(args.data, classes=c.classes)
    val = ds.split("val")
    images, y = ds.images[val], ds.labels[val]
    names = np.array(c.classes)
    forest = y == list(c.classes).index("Forest")
    rows = []
    for sigma in args.sigmas:
        patches = blur_patches(images, sigma) if sigma > 0 else images
        pred = predict_proba(loaded.model, patches, c.divisor).argmax(1)
        rows.append({
            "sigma_px": sigma, "val_accuracy": float((pred == y).mean()),
            "forest_labelled": dict(Counter(names[pred[forest]].tolist()).most_common(3)),
        })
    print(json.dumps({"model": loaded.path.name, "sha256": loaded.sha256, "val_patches": len(val), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
