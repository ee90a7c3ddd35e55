"""Real-scene yardsticks of a model's maps: NIR proxies of water and forest on a real Level-1C
product, and how a map agrees with them.

``bench/real_scenes.py`` and the tests of the shipped model use them on the real T33UUU crop
shipped with the package (:data:`T33UUU`, the demo scene); they work on any Level-1C product
with B04 and B08.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2lc.demo import DEMO_PATH

if TYPE_CHECKING:
    from s2lc.classify import Classification
    from s2lc.product import Product

__all__ = ["SHARED_DATA", "T33UUU", "WATER_CLASSES", "agreement", "nir_proxies", "patch_labels", "whole_patches"]


#: The real data beside a development checkout (``<checkout>/../shared/data``): a convenience of
#: s2lc's own tests and benchmarks, absent in a fresh clone and in an installed package.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: The real Level-1C crop of tile T33UUU (16 February 2017, 1536 x 768 at 10 m): the scene
#: :mod:`s2lc.demo` ships, so it is present wherever s2lc is installed.
T33UUU = DEMO_PATH
#: EuroSAT classes that count as water.
WATER_CLASSES = ("SeaLake", "River")


def whole_patches(a: np.ndarray, size: int = 64) -> np.ndarray:
    """The whole ``size`` × ``size`` patches of a (..., h, w) array, as (rows, cols, ..., size, size)."""
    *lead, h, w = a.shape
    rows, cols = h // size, w // size
    blocks = a[..., : rows * size, : cols * size].reshape(*lead, rows, size, cols, size)
    n = len(lead)
    return blocks.transpose(n, n + 2, *range(n), n + 1, n + 3)


def nir_proxies(product: Product) -> tuple[np.ndarray, np.ndarray]:
    """(water, forest) pixel fractions of each whole 64 × 64 patch of an open product, each
    (rows, cols) float64, from its B04 and B08."""
    red, nir = product.read(["B04", "B08"])
    return whole_patches(nir < 1000).mean(axis=(2, 3)), whole_patches((red < 900) & (nir >= 1000)).mean(axis=(2, 3))


def patch_labels(res: Classification, shape: tuple[int, int]) -> np.ndarray:
    """Class name of each 64 × 64 patch of a classification: the majority of its cells, as a
    ``shape`` array of str."""
    names = {c.code: c.name for c in res.legend.classes}
    s = 64 // res.stride
    cells = res.cell_map[: shape[0] * s, : shape[1] * s]
    blocks = cells.reshape(shape[0], s, shape[1], s).transpose(0, 2, 1, 3).reshape(*shape, -1)
    return np.array([[names[Counter(b.tolist()).most_common(1)[0][0]] for b in row] for row in blocks])


def agreement(path: str | os.PathLike, model: str | os.PathLike | None = None, stride: int = 64) -> dict[str, Any]:
    """How a model's map of a Level-1C product agrees with its NIR proxies (fractions of patches).

    Args:
        path: the product, e.g. :data:`T33UUU`.
        model: a checkpoint; None for the shipped model.
        stride: as for :func:`s2lc.classify.classify`.

    Returns:
        Counts and fractions of the patches mostly water or forest by :func:`nir_proxies`, and the
        labels the map gives them, as plain JSON values.
    """
    from s2lc.classify import classify
    from s2lc.product import open_product

    with open_product(path, clouds="none") as p:  # the model on every patch, as measured before clouds were detected
        water, forest = nir_proxies(p)
        res = classify(p, model, stride=stride)
    label = patch_labels(res, water.shape)
    said_water = np.isin(label, WATER_CLASSES)
    return {
        "model": res.provenance["model"]["name"], "model_sha256": res.provenance["model"]["sha256"], "stride": stride,
        "water_patches": int((water > 0.5).sum()),
        "water_patches_labelled_water": float(said_water[water > 0.5].mean()),
        "forest_patches": int((forest > 0.5).sum()),
        "forest_patches_labelled_forest": float((label[forest > 0.5] == "Forest").mean()),
        "forest_patches_labelled_water": float(said_water[forest > 0.5].mean()),
        "patches_labelled_forest": int((label == "Forest").sum()),
        "of_which_mostly_forest": float((forest[label == "Forest"] > 0.5).mean()) if (label == "Forest").any() else None,
        "patches_labelled_water": int(said_water.sum()),
        "of_which_at_least_20pct_water": float((water[said_water] >= 0.2).mean()) if said_water.any() else None,
        "labels_of_water_patches": dict(Counter(label[water > 0.5].tolist())),
        "labels_of_forest_patches": dict(Counter(label[forest > 0.5].tolist())),
        "labels": dict(Counter(label.ravel().tolist())),
        "patches": res.stats["patches"],
    }
