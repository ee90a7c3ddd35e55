"""Yardstick: how much of the change ``s2lc change`` reports on real city pairs is real.

Runs on the OSCD development pairs (``../shared/data/oscd_dev/<city>/{date1,date2,cm}.tif``:
13-band Level-1C stacks in EPSG:4326 and the reference change mask; labels CC BY-NC-SA, for
development only). For each city the two scenes are classified and compared as
``s2lc change date1.tif date2.tif`` does (:func:`s2lc.change.compare_scenes`), the reference
mask is put on the change map's grid (nearest neighbour), and the reported change is scored:

- at pixel level: precision, recall and F1 of "changed" (a confident transition);
- at patch level: the map cut into 64 × 64 patches from its origin; a patch is changed when
  at least 10 % of its pixels are (reference and prediction alike).

It scores the comparison as mapped (no gating), gated on confidence alone, and with confidence
and spectral evidence, at the default thresholds and over a sweep, summed over the cities.

Usage: python bench/change_real.py [--data DIR] [--json OUT] [--stride 64]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

PATCH = 64
SHARE = 0.10


def _patches(mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W) bool: 64 × 64 patches of which at least 10 % of the valid pixels are in ``mask``."""
    h, w = mask.shape
    rows, cols = -(-h // PATCH), -(-w // PATCH)
    m = np.zeros((rows * PATCH, cols * PATCH))
    v = np.zeros_like(m)
    m[:h, :w], v[:h, :w] = mask & valid, valid
    inside = m.reshape(rows, PATCH, cols, PATCH).sum(axis=(1, 3))
    total = v.reshape(rows, PATCH, cols, PATCH).sum(axis=(1, 3))
    return (total > 0) & (inside >= SHARE * np.maximum(total, 1))


def _counts(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.array([(pred & ref).sum(), (pred & ~ref).sum(), (~pred & ref).sum()], np.int64)


def _scores(tp_fp_fn: np.ndarray) -> dict[str, float | int]:
    tp, fp, fn = (int(v) for v in tp_fp_fn)
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if p + r > 0 else float("nan")
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def _reference(path: Path, transform, crs, shape) -> np.ndarray:
    import rasterio
    from rasterio.warp import Resampling, reproject

    out = np.zeros(shape, np.uint8)
    with rasterio.open(path) as src:
        reproject(src.read(1), out, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.nearest)
    return out > 0


def main() -> int:
    from s2lc.change import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_MAGNITUDE, Evidence, compare_scenes, judge
    from s2lc.change.core import FIRST_TRANSITION
    from s2lc.change.evidence import SPECTRAL
    from s2lc.yardsticks import SHARED_DATA

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED_DATA / "oscd_dev")
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    cities = sorted(p for p in args.data.iterdir() if (p / "cm.tif").exists()) if args.data.exists() else []
    if not cities:
        print(f"no OSCD pairs in {args.data}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    confidences = (None, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    magnitudes = (None, 0.25, 0.5, 0.75, 1.0)
    settings = [(c, m) for c in confidences for m in magnitudes]
    totals = {s: np.zeros(6, np.int64) for s in settings}
    per_city = {}
    t0 = time.perf_counter()
    for city in cities:
        found = compare_scenes(city / "date1.tif", city / "date2.tif", stride=args.stride, clouds="s2cloudless",
                               min_confidence=DEFAULT_MIN_CONFIDENCE, min_magnitude=DEFAULT_MIN_MAGNITUDE)
        r = found.change
        ref = _reference(city / "cm.tif", r.transform, r.crs, r.codes.shape)
        valid = r.codes >= 1  # data at both dates
        ref_patches = _patches(ref, valid)
        conf = (r.before.confidence, r.after.confidence)
        for c, m in settings:
            ev = Evidence(c, m, r.evidence.magnitude if m is not None else None, r.evidence.cell)
            reported = judge(r.codes, ev, conf)
            changed = (reported >= FIRST_TRANSITION) & (reported < SPECTRAL)
            totals[(c, m)] += np.concatenate([_counts(changed & valid, ref & valid),
                                              _counts(_patches(changed, valid), ref_patches)])
        per_city[city.name] = {"pixels": int(valid.sum()), "reference_changed_pixels": int((ref & valid).sum()),
                               "reference_changed_patches": int(ref_patches.sum()), "patches": int(ref_patches.size)}
    rows = []
    for (c, m), t in totals.items():
        rows.append({"min_confidence": c, "min_magnitude": m, "pixel": _scores(t[:3]), "patch": _scores(t[3:])})
    ungated = next(x for x in rows if x["min_confidence"] is None and x["min_magnitude"] is None)
    default = next(x for x in rows if x["min_confidence"] == DEFAULT_MIN_CONFIDENCE
                   and x["min_magnitude"] == DEFAULT_MIN_MAGNITUDE)
    conf_only = next(x for x in rows if x["min_confidence"] == DEFAULT_MIN_CONFIDENCE and x["min_magnitude"] is None)
    goal = {"patch_precision": default["patch"]["precision"] >= 0.5,
            "half_the_recall": default["patch"]["recall"] >= 0.5 * ungated["patch"]["recall"]}
    out = {"cities": per_city, "stride": args.stride, "ungated": ungated, "confidence_only": conf_only,
           "default": default, "goal_met": goal, "sweep": rows, "seconds": time.perf_counter() - t0}
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    for name, x in (("as mapped", ungated), ("confidence only", conf_only), ("confidence + spectral", default)):
        print(f"{name:22s} pixel P {x['pixel']['precision']:.3f} R {x['pixel']['recall']:.3f} F1 {x['pixel']['f1']:.3f}"
              f" | patch P {x['patch']['precision']:.3f} R {x['patch']['recall']:.3f} F1 {x['patch']['f1']:.3f}",
              file=sys.stderr)
    return 0 if all(goal.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
