"""Speed and size of the registered architectures for 64 × 64 RGB patches on this machine.

With ``--input-size``, each architecture is also timed with the patches resized inside the
network (the contract's ``input_size``), as a model trained at that size runs.

For each architecture: parameters, checkpoint size (float16 weights, as s2lc saves them),
and inference patches/s at batch 256, batch norm folded into the convolutions as s2lc runs
it, in bf16 autocast (the CPU default where supported) and in fp32, after a warm-up batch.
Accuracy is not measured here (it needs training): see docs/model-card.md.

Usage: python bench/architectures.py [--arch resnet18 ...] [--input-size 64 96 128] [--n 1024] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from s2lc.checkpoint import RGB_SCALING, ModelContract, save_checkpoint
from s2lc.inference import predict_proba
from s2lc.legend import EUROSAT_CLASSES
from s2lc.models import ARCHITECTURES, build_model, fuse_for_inference


def measure(arch: str, n: int, batch: int = 256, input_size: int | None = None) -> dict:
    model = build_model(arch, 3, len(EUROSAT_CLASSES), input_size=input_size).eval()
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        contract = ModelContract(arch=arch, bands=["B04", "B03", "B02"], classes=list(EUROSAT_CLASSES),
                                 scaling=dict(RGB_SCALING), mean=[0.5] * 3, std=[0.25] * 3)
        save_checkpoint(path, model, contract)
        size_mb = path.stat().st_size / 1e6
    x = torch.from_numpy(np.random.default_rng(0).integers(1, 255, (n, 3, 64, 64), dtype=np.uint8))
    out = {"arch": arch, "input_size": input_size or 64, "params_m": params / 1e6, "file_mb_fp16": size_mb}
    fused = fuse_for_inference(model)  # as s2lc classify, serve and evaluate run it
    for precision in ("auto", "fp32"):
        predict_proba(fused, x[:batch], 255.0, batch_size=batch, precision=precision)  # warm-up
        t0 = time.perf_counter()
        predict_proba(fused, x, 255.0, batch_size=batch, precision=precision)
        out[f"patches_per_s_{precision}"] = n / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="*", default=list(ARCHITECTURES))
    ap.add_argument("--input-size", type=int, nargs="*", default=[None], help="network input sizes (default: 64, as they come)")
    ap.add_argument("--n", type=int, default=1024, help="patches per timing")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for arch in args.arch:
        for size in args.input_size:
            r = measure(arch, args.n, input_size=size)
            rows.append(r)
            print(f"{arch:18s} {r['input_size']:4d} px {r['params_m']:6.1f} M params {r['file_mb_fp16']:7.1f} MB "
                  f"{r['patches_per_s_auto']:7.0f} patches/s (auto) {r['patches_per_s_fp32']:7.0f} (fp32)", flush=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}", "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
