"""How well a model's probabilities say how often it is right: reliability diagram and expected
calibration error (ECE) on the EuroSAT test split, before and after its temperature.

"Before" is the raw softmax (temperature 1), "after" the checkpoint's own temperature (the one
``s2lc classify``, ``serve`` and ``evaluate`` apply); a checkpoint without one gets a temperature
fitted here on the validation split, as ``s2lc calibrate`` fits it. The ECE uses 15 equal-width
confidence bins (:mod:`s2lc.calibration`). Besides the test split as it is, it scores the test
split with 8-fold test-time augmentation (``--tta``) and blurred by a Gaussian of sigma 1 pixel
(softer patches, as real products can be), where calibration fitted on sharp patches need not hold,
and reports the confidence of the map of the real February T33UUU crop (no per-patch labels: its
own near infrared marks the patches that are mostly forest or water; :mod:`s2lc.yardsticks`).

Usage: python bench/calibration.py DATA [--model PATH] [--out docs/images/reliability.png]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def plot(before, after, t: float, path: Path, title: str) -> None:
    """Two reliability diagrams side by side (raw softmax, with the temperature), each over a
    histogram of how many patches fall in each confidence bin."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for col, (bins, name) in enumerate(((before, "raw softmax (T = 1)"), (after, f"calibrated (T = {t:.3f})"))):
        ax, hist = axes[0, col], axes[1, col]
        width = np.diff(bins.edges)
        left = bins.edges[:-1]
        full = bins.count > 0
        ax.bar(left[full], bins.accuracy[full], width=width[full], align="edge", color="#4c72b0", edgecolor="white",
               label="accuracy")
        low = np.minimum(bins.accuracy[full], bins.confidence[full])
        gap = np.abs(bins.confidence[full] - bins.accuracy[full])
        ax.bar(left[full], gap, bottom=low, width=width[full], align="edge", color="none", edgecolor="#c44e52",
               hatch="///", label="gap to the bin's mean confidence")
        ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"{name}: ECE {100 * bins.ece:.2f} %")
        if col == 0:
            ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        hist.bar(left, np.maximum(bins.count, 0.8), width=width, align="edge", color="#8c8c8c", edgecolor="white")
        hist.set(yscale="log", ylim=(0.8, max(2, bins.count.max()) * 2), xlabel="confidence (probability of the chosen class)",
                 ylabel="patches")
        hist.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tta_logits(model, images: np.ndarray, divisor: float, kw: dict) -> np.ndarray:
    """(8, n, classes) logits of the 8 flips/rotations, in :func:`s2lc.inference.d4_views` order
    (what ``--tta`` averages the softmax of; computed once for both temperatures)."""
    import torch

    from s2lc.inference import d4_views, predict_logits

    return np.stack([predict_logits(model, v.contiguous().numpy(), divisor, **kw) for v in d4_views(torch.from_numpy(images))])


def _real_crop(model_path: Path, temperatures: dict[str, float], precision: str) -> dict:
    """The confidence of the map of the real February T33UUU crop (no per-patch labels): over all
    its patches, and over those its own near infrared calls mostly forest or water, split by
    whether the map agrees (:mod:`s2lc.yardsticks`), for each temperature."""
    import tempfile
    from dataclasses import replace

    from s2lc.checkpoint import read_contract, rewrite_contract
    from s2lc.classify import classify
    from s2lc.product import open_product
    from s2lc.yardsticks import T33UUU, WATER_CLASSES, nir_proxies, patch_labels

    contract, _, _ = read_contract(model_path)
    out = {}
    with tempfile.TemporaryDirectory() as tmp, open_product(T33UUU, clouds="none") as p:
        water, forest = nir_proxies(p)
        for name, t in temperatures.items():
            copy = Path(tmp) / f"{name}.safetensors"
            rewrite_contract(model_path, copy, replace(contract, temperature=t))
            res = classify(p, copy, precision=precision)
            label = patch_labels(res, water.shape)
            conf = res.cell_confidence[: water.shape[0], : water.shape[1]]
            said_water = np.isin(label, WATER_CLASSES)
            groups = {"forest_labelled_forest": (forest > 0.5) & (label == "Forest"),
                      "forest_labelled_otherwise": (forest > 0.5) & (label != "Forest"),
                      "water_labelled_water": (water > 0.5) & said_water,
                      "water_labelled_otherwise": (water > 0.5) & ~said_water}
            out[name] = {"temperature": t, "mean_confidence": float(np.nanmean(conf)),
                         "median_confidence": float(np.nanmedian(conf)),
                         **{k: {"patches": int(g.sum()), "mean_confidence": float(conf[g].mean()) if g.any() else None}
                            for k, g in groups.items()}}
    return out


def main() -> None:
    import torch

    from s2lc.augment import blur_patches
    from s2lc.calibration import expected_calibration_error, fit_temperature, reliability_bins, score_calibration, softmax
    from s2lc.checkpoint import load_checkpoint
    from s2lc.datasets import load_dataset
    from s2lc.inference import predict_logits, resolve_precision
    from s2lc.models import SHIPPED_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="EuroSAT folder or zip (the model's training data)")
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument("--out", default="docs/images/reliability.png", help="the figure (PNG)")
    ap.add_argument("--precision", default="auto", help="as s2lc classify (auto: bf16 on CPUs with native bf16, else fp32)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    loaded = load_checkpoint(args.model or SHIPPED_MODEL, fuse=True)  # as classify runs it
    c = loaded.contract
    ds = load_dataset(args.data, classes=c.classes)
    val, test = ds.split("val"), ds.split("test")
    kw = {"device": "cpu", "precision": args.precision}
    y_val, y_test = ds.labels[val], ds.labels[test]
    val_z = predict_logits(loaded.model, ds.images[val], c.divisor, **kw)
    views_z = _tta_logits(loaded.model, ds.images[test], c.divisor, kw)
    test_z = views_z[0]  # the first view is the patches as they are
    blurred_z = predict_logits(loaded.model, blur_patches(ds.images[test], 1.0), c.divisor, **kw)
    refit = fit_temperature(val_z, y_val)
    t = c.temperature if c.temperature != 1.0 else refit
    tta = {temp: softmax(views_z, temp).mean(axis=0) for temp in (1.0, t)}

    before, after = reliability_bins(softmax(test_z), y_test), reliability_bins(softmax(test_z, t), y_test)
    used = resolve_precision(args.precision, torch.device("cpu"))
    precision = "fp32" if used is None else str(used).removeprefix("torch.")
    plot(before, after, t, Path(args.out), f"{c.name or loaded.path.name}: EuroSAT test split, {len(test)} patches, {precision}")
    result = {
        "model": loaded.path.name, "sha256": loaded.sha256, "contract_temperature": c.temperature,
        "temperature_used": t, "temperature_refit_on_val": refit,
        "val": {"before": score_calibration(val_z, y_val), "after": score_calibration(val_z, y_val, t)},
        "test": {"before": score_calibration(test_z, y_test), "after": score_calibration(test_z, y_test, t)},
        "test_tta8": {"before": {"ece": expected_calibration_error(tta[1.0], y_test)},
                      "after": {"ece": expected_calibration_error(tta[t], y_test)},
                      "accuracy": float(np.mean(tta[t].argmax(1) == y_test))},
        "test_blur_1px": {"before": score_calibration(blurred_z, y_test),
                          "after": score_calibration(blurred_z, y_test, t)},
        "t33uuu_crop": _real_crop(loaded.path, {"before": 1.0, "after": t}, args.precision),
        "reliability_test": {"before": before.as_dict(), "after": after.as_dict()},
        "figure": args.out,
        "machine": f"{_cpu()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "precision": precision,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
