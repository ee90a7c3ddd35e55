"""Real-scene yardsticks, and the rule for replacing the shipped model (docs/model-card.md).

Each model runs as ``s2lc classify`` runs it (batch norm folded, bf16 where the CPU has it), on:

- **EuroSAT** (the RGB zip): test accuracy, and validation accuracy clean and with every patch
  blurred by a Gaussian of sigma 1 pixel;
- **EuroSAT MS subset** (469 real 13-band L1C patches): B04/B03/B02 taken from the 16-bit DN
  through the model's own contract scaling, as ``classify`` reads a product, against the same
  patches' EuroSAT JPEGs; accuracy of both paths, and how often they agree;
- **eo-learn Slovenia** (one forested km² on five summer dates, two of them hazy; reference
  land cover): per date, the share of reference-forest pixels mapped Forest at stride 16, and
  how much of the map changes class from one date to the next (the ground did not change);
- **the T33UUU winter crop**: its patches mostly forest or mostly water by its own NIR band
  (``s2lc.yardsticks.nir_proxies``), and how many of them the map labels so.

The rule: a candidate ships when its test accuracy is above the shipped model's and it loses on
no yardstick (MS-subset DN accuracy, Slovenia forest agreement on all dates and on the hazy
ones, Slovenia flips, T33UUU forest and water). Prints both models' figures and the verdict as
JSON; exits 1 when the candidate fails the rule.

Usage: python bench/real_scenes.py CANDIDATE [--against MODEL] [--eurosat ZIP] [--data DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from s2lc.yardsticks import SHARED_DATA as DATA
from s2lc.yardsticks import T33UUU, agreement

HAZY = ("20150731", "20150820")  # the shared data's README: hazy or cloudy dates
REFERENCE_FOREST = 2  # lulc_reference.tif: 2 = forest
SIGMA_PX = 1.0


def _predict(loaded, stored: np.ndarray) -> np.ndarray:
    from s2lc.inference import predict_proba

    return predict_proba(loaded.model, stored, loaded.contract.divisor, batch_size=256)


def eurosat_figures(loaded, zip_path: Path) -> tuple[dict, dict]:
    """Test, validation and blurred-validation accuracy; and each file's split (for the MS subset)."""
    from s2lc.augment import blur_patches
    from s2lc.datasets import load_dataset

    ds = load_dataset(zip_path, classes=loaded.contract.classes)
    out = {}
    for split in ("test", "val"):
        idx = ds.split(split)
        out[f"{split}_accuracy"] = float((_predict(loaded, ds.images[idx]).argmax(1) == ds.labels[idx]).mean())
    val = ds.split("val")
    blurred = blur_patches(ds.images[val], SIGMA_PX)
    out["val_accuracy_blur_1px"] = float((_predict(loaded, blurred).argmax(1) == ds.labels[val]).mean())
    out["blur_loss_points"] = round(100 * (out["val_accuracy"] - out["val_accuracy_blur_1px"]), 2)
    split_of = {}
    for split in ("train", "val", "test"):
        for i in ds.split(split):
            split_of[ds.files[i]] = split
    return out, split_of


def ms_subset_figures(loaded, folder: Path, zip_path: Path | None, split_of: dict) -> dict:
    """The real-DN path (16-bit B04/B03/B02 through the contract) against the JPEG path."""
    import rasterio
    from PIL import Image

    from s2lc.patches import model_input
    from s2lc.sentinel2 import EUROSAT_MS_ORDER

    c = loaded.contract
    take = [EUROSAT_MS_ORDER.index(b) for b in c.bands]
    files = sorted(folder.glob("*/*.tif"))
    dn = []
    for f in files:
        with rasterio.open(f) as src:
            dn.append(src.read([i + 1 for i in take]).astype(np.float32))
    x, _ = model_input(np.moveaxis(np.stack(dn), 1, 0), c)  # band by band, as s2lc classify scales DN
    stored = np.moveaxis(x, 0, 1)
    classes = list(c.classes)
    y = np.array([classes.index(f.parent.name) for f in files])
    pred_dn = _predict(loaded, stored).argmax(1)
    out = {"patches": len(files), "accuracy_dn": float((pred_dn == y).mean())}
    keys = [f"{f.parent.name}/{f.stem}.jpg" for f in files]
    held_out = np.array([split_of.get(k) in ("val", "test") for k in keys])
    out["held_out_patches"] = int(held_out.sum())
    out["accuracy_dn_held_out"] = float((pred_dn[held_out] == y[held_out]).mean()) if held_out.any() else None
    if zip_path is not None:
        with zipfile.ZipFile(zip_path) as z:
            names = {n.split("/", 1)[-1]: n for n in z.namelist()}
            jpeg = np.stack([np.asarray(Image.open(io.BytesIO(z.read(names[k]))).convert("RGB")).transpose(2, 0, 1)
                             for k in keys])
        pred_jpeg = _predict(loaded, jpeg).argmax(1)
        out.update(accuracy_jpeg=float((pred_jpeg == y).mean()), dn_and_jpeg_agree=float((pred_jpeg == pred_dn).mean()),
                   mean_abs_dn_minus_jpeg=float(np.abs(stored - jpeg).mean()))
    return out


def slovenia_figures(model: str, folder: Path) -> dict:
    """Forest agreement per date at stride 16, and how much of the map flips between dates."""
    import rasterio

    from s2lc.classify import classify

    with rasterio.open(folder / "lulc_reference.tif") as src:
        forest = src.read(1) == REFERENCE_FOREST
    maps, dates = [], {}
    for tif in sorted(folder.glob("S2_L1C_*_slovenia.tif")):
        date = tif.stem.split("_")[2]
        res = classify(tif, model, stride=16, clouds="none")
        names = {cl.code: cl.name for cl in res.legend.classes}
        m = res.class_map
        maps.append(m)
        valid = forest & (m > 0)
        codes, counts = np.unique(m[m > 0], return_counts=True)
        dates[date] = {"forest_agreement": float((m[valid] == _code(res, "Forest")).mean()),
                       "labels": {names[int(k)]: round(float(n) / counts.sum(), 3) for k, n in zip(codes, counts)}}
    stack = np.stack(maps)
    valid = (stack > 0).all(0)
    flips = [float((a[valid] != b[valid]).mean()) for a, b in zip(stack[:-1], stack[1:])]
    agree = [d["forest_agreement"] for d in dates.values()]
    return {"dates": dates, "forest_agreement_mean": float(np.mean(agree)),
            "forest_agreement_hazy": float(np.mean([dates[d]["forest_agreement"] for d in HAZY])),
            "flip_rate": float(np.mean(flips)), "same_class_all_dates": float((stack[:, valid] == stack[0, valid]).all(0).mean())}


def _code(res, name: str) -> int:
    return next(cl.code for cl in res.legend.classes if cl.name == name or cl.name.replace(" ", "") == name)


def t33uuu_figures(model: str) -> dict:
    a = agreement(T33UUU, model)
    return {"forest_labelled_forest": round(a["forest_patches_labelled_forest"] * a["forest_patches"]),
            "forest_patches": a["forest_patches"],
            "water_labelled_water": round(a["water_patches_labelled_water"] * a["water_patches"]),
            "water_patches": a["water_patches"], "labels": a["labels"]}


def figures(model: str, data: Path, zip_path: Path | None) -> dict:
    from s2lc.checkpoint import load_checkpoint

    loaded = load_checkpoint(model, fuse=True)
    out = {"model": str(model), "sha256": loaded.sha256, "arch": loaded.contract.arch,
           "input_size": loaded.contract.input_size}
    split_of = {}
    if zip_path is not None:
        out["eurosat"], split_of = eurosat_figures(loaded, zip_path)
    out["ms_subset"] = ms_subset_figures(loaded, data / "EuroSAT_MS_subset", zip_path, split_of)
    out["slovenia"] = slovenia_figures(model, data / "eolearn_slovenia")
    out["t33uuu"] = t33uuu_figures(model)
    return out


def verdict(new: dict, old: dict) -> dict:
    """Each part of the rule: True where the candidate passes it."""
    parts = {
        "ms_subset_dn": new["ms_subset"]["accuracy_dn"] >= old["ms_subset"]["accuracy_dn"],
        "slovenia_forest": new["slovenia"]["forest_agreement_mean"] >= old["slovenia"]["forest_agreement_mean"],
        "slovenia_hazy": new["slovenia"]["forest_agreement_hazy"] >= old["slovenia"]["forest_agreement_hazy"],
        "slovenia_flips": new["slovenia"]["flip_rate"] <= old["slovenia"]["flip_rate"],
        "t33uuu_forest": new["t33uuu"]["forest_labelled_forest"] >= old["t33uuu"]["forest_labelled_forest"],
        "t33uuu_water": new["t33uuu"]["water_labelled_water"] >= old["t33uuu"]["water_labelled_water"],
    }
    if "eurosat" in new and "eurosat" in old:
        parts = {"test_accuracy": new["eurosat"]["test_accuracy"] > old["eurosat"]["test_accuracy"], **parts}
    return parts


def main() -> None:
    from s2lc.models import SHIPPED_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidate", help="the candidate s2lc checkpoint")
    ap.add_argument("--against", default=str(SHIPPED_MODEL), help="the model to replace (default: the shipped one)")
    ap.add_argument("--eurosat", type=Path, default=DATA / "EuroSAT_RGB.zip", help="EuroSAT RGB zip (test split, JPEG path)")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    args = ap.parse_args()
    for need in (args.data / "EuroSAT_MS_subset", args.data / "eolearn_slovenia", T33UUU):
        if not need.exists():
            sys.exit(f"{need}: real data the yardsticks read is not here (it lives in ../shared/data)")
    zip_path = args.eurosat if args.eurosat.is_file() else None
    new, old = figures(args.candidate, args.data, zip_path), figures(args.against, args.data, zip_path)
    parts = verdict(new, old)
    ship = "test_accuracy" in parts and all(parts.values())
    print(json.dumps({"candidate": new, "against": old, "verdict": parts, "ship": ship}, indent=2))
    sys.exit(0 if ship else 1)


if __name__ == "__main__":
    main()
