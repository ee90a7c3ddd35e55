"""Tiny generated patch datasets (EuroSAT layout) for training and evaluation tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

CLASSES = ("Alpha", "Beta", "Gamma")


def _jpeg(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def make_rgb_dataset(root: Path, classes=CLASSES, per_class: int = 10, size: int = 32, seed: int = 0,
                     zipped: bool = False, top: str = "EuroSAT_RGB") -> Path:
    """Classes told apart by colour: class k is brightest in channel k % 3, with noise."""
    rng = np.random.default_rng(seed)
    files = {}
    for k, cls in enumerate(classes):
        for i in range(per_class):
            base = np.full((size, size, 3), 40, dtype=np.float64)
            base[..., k % 3] = 90 + 60 * (k // 3)
            img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            files[f"{top}/{cls}/{cls}_{i + 1}.jpg"] = _jpeg(img)
    if zipped:
        path = root / f"{top}.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        return path
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root / top
