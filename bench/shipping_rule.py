"""Whether a candidate model may replace the shipped one, by the rule in docs/model-card.md.

The rule, set before the runs it judged and read on the validation split and the real T33UUU
crop only (never the test split):

- clean validation accuracy at most 0.2 points below the shipped model's;
- validation accuracy with every patch blurred by a Gaussian of sigma 1 pixel at least the
  shipped model's (bench/blur_robustness.py);
- on the T33UUU crop, more of the patches mostly forest labelled Forest, and more of the
  patches mostly water labelled water, than the shipped model (bench/real_scene_proxy.py).

Both models run as ``s2lc classify`` runs them: batch norm folded, bf16 where the CPU has it.
Prints the figures of both and a verdict per criterion as JSON; exits 1 when the rule fails.

Usage: python bench/shipping_rule.py CANDIDATE DATA [--against MODEL]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from realscene import T33UUU, agreement  # noqa: E402

MAX_CLEAN_DROP = 0.002  # 0.2 points of validation accuracy
SIGMA_PX = 1.0


def validation_figures(model: str, data: str) -> dict:
    """Clean and sigma-1-px-blurred validation accuracy of ``model`` on EuroSAT ``data``."""
    from s2lc.checkpoint import load_checkpoint
    from s2lc.datasets import load_dataset
    from s2lc.inference import predict_proba
    from s2lc.training import blur_patches

    loaded = load_checkpoint(model, fuse=True)
    c = loaded.contract
    ds = load_dataset(data, classes=c.classes)
    val = ds.split("val")
    images, y = ds.images[val], ds.labels[val]

    def accuracy(patches: np.ndarray) -> float:
        return float((predict_proba(loaded.model, patches, c.divisor).argmax(1) == y).mean())

    return {"model": str(model), "sha256": loaded.sha256, "val_accuracy": accuracy(images),
            "val_accuracy_blur_1px": accuracy(blur_patches(images, SIGMA_PX))}


def crop_figures(model: str) -> dict:
    """Forest and water patches of the T33UUU crop that ``model`` labels so (counts)."""
    a = agreement(T33UUU, model)
    return {"forest_labelled_forest": round(a["forest_patches_labelled_forest"] * a["forest_patches"]),
            "forest_patches": a["forest_patches"],
            "water_labelled_water": round(a["water_patches_labelled_water"] * a["water_patches"]),
            "water_patches": a["water_patches"]}


def main() -> None:
    from s2lc.models import SHIPPED_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidate", help="the candidate s2lc checkpoint")
    ap.add_argument("data", help="EuroSAT folder or zip")
    ap.add_argument("--against", default=str(SHIPPED_MODEL), help="the model to replace (default: the shipped one)")
    args = ap.parse_args()
    if not T33UUU.exists():
        sys.exit(f"{T33UUU}: the real crop the rule reads is not here (it lives in ../shared)")

    new, old = (dict(validation_figures(m, args.data), **crop_figures(m)) for m in (args.candidate, args.against))
    verdict = {
        "clean_validation": new["val_accuracy"] >= old["val_accuracy"] - MAX_CLEAN_DROP,
        "blurred_validation": new["val_accuracy_blur_1px"] >= old["val_accuracy_blur_1px"],
        "crop_forest": new["forest_labelled_forest"] > old["forest_labelled_forest"],
        "crop_water": new["water_labelled_water"] > old["water_labelled_water"],
    }
    print(json.dumps({"candidate": new, "against": old, "verdict": verdict, "ship": all(verdict.values())}, indent=2))
    sys.exit(0 if all(verdict.values()) else 1)


if __name__ == "__main__":
    main()
