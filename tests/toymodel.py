"""A real resnet18 checkpoint with hand-set weights: it labels a patch by its red brightness.

The network sees B04/B03/B02 scaled as EuroSAT RGB (DN 0–2750 → 1–255, ÷ 255). Its first
convolution averages the red band, every residual branch is zeroed so blocks pass that value
through, and the head compares the pooled value with ``threshold``: brighter patches are
``bright`` (AnnualCrop by default), darker ones ``dark`` (SeaLake). Deterministic, so tests
can check where each class lands on the map.
"""

from __future__ import annotations

from pathlib import Path

import torch

from s2lc.checkpoint import RGB_SCALING, ModelContract, save_checkpoint
from s2lc.legend import EUROSAT_CLASSES
from s2lc.models import build_model


def brightness_model(path: Path, bright: str = "AnnualCrop", dark: str = "SeaLake", threshold: float = 0.5,
                     level: str = "L1C", bands=("B04", "B03", "B02")) -> Path:
    classes = list(EUROSAT_CLASSES)
    model = build_model("resnet18", len(bands), len(classes), [0.0] * len(bands), [1.0] * len(bands))
    body = model.body
    with torch.no_grad():
        for p in body.parameters():
            p.zero_()
        for m in body.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.eps = 0.0
        body.conv1.weight[0, 0] = 1.0 / 49  # channel 0 = local mean of the red band
        body.bn1.weight.fill_(1.0)
        for layer in (body.layer2, body.layer3, body.layer4):
            ds = layer[0].downsample
            n_in = ds[0].in_channels
            ds[0].weight[torch.arange(n_in), torch.arange(n_in), 0, 0] = 1.0  # identity shortcut
            ds[1].weight.fill_(1.0)
        body.fc.bias.fill_(-50.0)
        b, d = classes.index(bright), classes.index(dark)
        body.fc.weight[b, 0], body.fc.bias[b] = 40.0, -40.0 * threshold
        body.fc.weight[d, 0], body.fc.bias[d] = -40.0, 40.0 * threshold
    contract = ModelContract(arch="resnet18", bands=list(bands), classes=classes, scaling=dict(RGB_SCALING),
                             mean=[0.0] * len(bands), std=[1.0] * len(bands), patch_size=64, level=level,
                             name="toy-brightness")
    save_checkpoint(path, model, contract, dtype=torch.float32)
    return path
