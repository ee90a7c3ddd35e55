"""Is the real T33UUU crop softer than EuroSAT? Fine texture of its patches against EuroSAT's.

Texture is measured on each patch's brightness (the mean of its three bands, in EuroSAT's
0–255 units, the units the model sees) as the mean absolute difference between the patch and
the patch blurred with a Gaussian of one pixel: the detail that a one-pixel blur removes. For
EuroSAT it reports the median per class on the validation split (never the test split), as
the patches are and blurred by one pixel (what ``s2lc train --blur`` and
``bench/blur_robustness.py`` do to them); for the crop, the median over the patches that its
own NIR band calls mostly forest or mostly water (s2lc.yardsticks.nir_proxies) and over every patch.
Contrast (the standard deviation of the brightness) is reported beside it.

Usage: python bench/sharpness.py DATA [--product SAFE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from s2lc.yardsticks import T33UUU, nir_proxies, whole_patches


def texture(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) fine texture and (n,) contrast of (n, bands, h, w) patches in the model's 0–255 units."""
    import torch

    from s2lc.augment import gaussian_blur

    x = torch.from_numpy(np.asarray(patches, dtype=np.float32)).mean(1, keepdim=True)
    soft = gaussian_blur(x, torch.ones(len(x)))
    return (x - soft).abs().mean((1, 2, 3)).numpy(), x.std((1, 2, 3)).numpy()


def summary(patches: np.ndarray) -> dict:
    fine, contrast = texture(patches)
    return {"patches": len(patches), "texture": round(float(np.median(fine)), 2),
            "contrast": round(float(np.median(contrast)), 2)}


def main() -> None:
    from s2lc.augment import blur_patches
    from s2lc.checkpoint import read_contract
    from s2lc.datasets import load_dataset
    from s2lc.models import SHIPPED_MODEL
    from s2lc.patches import model_input
    from s2lc.product import open_product

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="EuroSAT RGB folder or zip")
    ap.add_argument("--product", type=Path, default=T33UUU)
    args = ap.parse_args()

    ds = load_dataset(args.data)
    val = ds.split("val")
    eurosat = {}
    for k, name in enumerate(ds.classes):
        patches = ds.images[val[ds.labels[val] == k]]
        eurosat[name] = {"as_they_are": summary(patches), "blurred_1px": summary(blur_patches(patches, 1.0))}

    contract = read_contract(SHIPPED_MODEL)[0]  # the scaling to EuroSAT's units that s2lc classify applies
    with open_product(args.product, clouds="none") as product:
        water, forest = nir_proxies(product)
        patches = whole_patches(model_input(product.read(contract.bands), contract)[0])
    crop = {
        "mostly_forest": summary(patches[forest > 0.5]),
        "mostly_water": summary(patches[water > 0.5]),
        "every_patch": summary(patches.reshape(-1, *patches.shape[2:])),
    }
    print(json.dumps({"eurosat_validation": eurosat, "crop": crop, "product": args.product.name}, indent=2))


if __name__ == "__main__":
    main()
