"""Model architectures: a registry over torchvision, any number of input bands.

Every network is wrapped in :class:`PatchClassifier`, which holds the input normalisation
(mean and standard deviation per band, as buffers saved with the weights), so training and
inference cannot normalise differently: both feed the network values scaled to 0–1.

The shipped model file lives beside this module (``eurosat_rgb.safetensors``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from s2lc.errors import ModelError

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "PatchClassifier",
    "SHIPPED_MODEL",
    "build_model",
    "fuse_for_inference",
    "load_pretrained",
    "require_imagenet_weights",
    "set_backbone_trainable",
]

logger = logging.getLogger(__name__)

SHIPPED_MODEL = Path(__file__).with_name("eurosat_rgb.safetensors")


def _origin_head(n_features: int, n_classes: int) -> nn.Module:
    """The origin notebook's head: Linear(n,256) → ReLU → Dropout → Linear(256,k) → LogSoftmax."""
    return nn.Sequential(
        nn.Linear(n_features, 256),
        nn.ReLU(inplace=True),
        nn.Dropout(0.4),
        nn.Linear(256, n_classes),
        nn.LogSoftmax(dim=1),
    )


def _linear_head(n_features: int, n_classes: int) -> nn.Module:
    return nn.Linear(n_features, n_classes)


@dataclass(frozen=True)
class Architecture:
    """How to build one registered network."""

    name: str
    factory: Callable[..., nn.Module]  #: torchvision constructor (called with ``weights=None``)
    weights: str | None  #: torchvision ImageNet weights enum member, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    head: Callable[[int, int], nn.Module]
    description: str


ARCHITECTURES: dict[str, Architecture] = {}


def _register(name: str, weights: str | None, head=_linear_head, description: str = "", factory=None) -> None:
    import torchvision.models as tvm

    ARCHITECTURES[name] = Architecture(name, factory or getattr(tvm, name), weights, head, description)


def _resnet18_fine(weights: None = None, widths: tuple[int, ...] = (32, 64, 128, 256)) -> nn.Module:
    """torchvision's ResNet-18 at half width (32–256 channels) without the stem's max-pool.

    Every stage sees 4× the pixels of ``resnet18`` on a 64 × 64 patch (32 × 32 after the stem
    instead of 16 × 16), at about the same compute: a field's or an orchard's texture survives
    the stem. Built from torchvision's own blocks; there are no ImageNet weights for it.
    """
    import torchvision.models as tvm
    from torchvision.models.resnet import BasicBlock

    body = tvm.resnet18(weights=weights)
    body.inplanes = widths[0]
    body.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    body.bn1 = nn.BatchNorm2d(widths[0])
    body.maxpool = nn.Identity()
    for i, planes in enumerate(widths):
        setattr(body, f"layer{i + 1}", body._make_layer(BasicBlock, planes, 2, stride=1 if i == 0 else 2))
    body.fc = nn.Linear(widths[-1], 1000)
    for m in body.modules():  # torchvision's initialisation, for the replaced modules too
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return body


_register("resnet18", "ResNet18_Weights.IMAGENET1K_V1", description="compact, fast on CPU")
_register("resnet34", "ResNet34_Weights.IMAGENET1K_V1", description="deeper ResNet with basic blocks")
_register("resnet50", "ResNet50_Weights.IMAGENET1K_V2", description="bottleneck ResNet")
_register(
    "wide_resnet50_2",
    "Wide_ResNet50_2_Weights.IMAGENET1K_V2",
    head=_origin_head,
    description="the origin notebook's network and head",
)
_register(
    "resnet18_fine",
    None,
    factory=_resnet18_fine,
    description="half-width resnet18 without the stem max-pool: finer feature maps, same speed (shipped)",
)
_register(
    "resnet18_fine40",
    None,
    factory=lambda weights=None: _resnet18_fine(weights, widths=(40, 80, 160, 320)),
    description="resnet18_fine at 5/8 width (40–320 channels): about 1.6x its compute",
)


class PatchClassifier(nn.Module):
    """Normalisation + a torchvision network whose classifier is ``body.fc``.

    Input: (n, bands, h, w) float32 scaled to 0–1. Output: (n, classes) logits (or
    log-probabilities for the origin head; softmax gives probabilities for both).
    """

    def __init__(self, body: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.body = body
        self._frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)

    def train(self, mode: bool = True) -> "PatchClassifier":
        super().train(mode)
        if mode and self._frozen:  # a frozen backbone keeps its batch-norm statistics too
            for name, module in self.body.named_children():
                if name != "fc":
                    module.eval()
        return self


def build_model(
    arch: str, in_bands: int, n_classes: int, mean: list[float] | None = None, std: list[float] | None = None
) -> PatchClassifier:
    """A freshly initialised network.

    Args:
        arch: a key of :data:`ARCHITECTURES`.
        in_bands: number of input bands (3 for RGB, 13 for MS).
        n_classes: number of output classes.
        mean, std: per-band normalisation of the 0–1 input (defaults 0.5 / 0.25).

    Raises:
        ModelError: unknown architecture.
    """
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    body = spec.factory(weights=None)
    if in_bands != 3:
        old = body.conv1
        body.conv1 = nn.Conv2d(in_bands, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    body.fc = spec.head(body.fc.in_features, n_classes)
    mean = mean if mean is not None else [0.5] * in_bands
    std = std if std is not None else [0.25] * in_bands
    if len(mean) != in_bands or len(std) != in_bands:
        raise ModelError(f"normalisation has {len(mean)} means / {len(std)} stds for {in_bands} bands")
    return PatchClassifier(body, mean, std)


def set_backbone_trainable(model: PatchClassifier, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze the backbone; the head ``body.fc`` always trains.

    A frozen backbone gets ``requires_grad = False`` on every parameter and keeps its
    batch-norm running statistics (its modules stay in eval mode while the model trains).
    """
    for name, param in model.body.named_parameters():
        if not name.startswith("fc."):
            param.requires_grad_(trainable)
    model._frozen = not trainable
    model.train(model.training)


_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.(?:pth|pt|safetensors)$")


def require_imagenet_weights(arch: str) -> Architecture:
    """``arch``'s registry entry, refusing an architecture that torchvision has no ImageNet weights for.

    Raises:
        ModelError: ``arch`` has none (the compact ``resnet18_fine`` members).
    """
    spec = ARCHITECTURES[arch]
    if spec.weights is None:
        raise ModelError(f"{arch} has no ImageNet weights; train it from scratch or from an s2lc checkpoint")
    return spec


def load_pretrained(model: PatchClassifier, arch: str, source: str, sha256: str | None = None) -> None:
    """Initialise the backbone from ImageNet weights.

    Args:
        source: ``"imagenet"`` (torchvision downloads and caches the weights, hash-checked),
            or the path of a local weights file (a torchvision ``.pth`` state dict, loaded with
            ``weights_only=True``, or a ``.safetensors`` file).
        sha256: expected SHA-256 of a local file. Without it, the hash prefix in the file
            name (torchvision's ``resnet18-f37072fd.pth`` convention) or, failing that, the
            prefix of torchvision's own published file for this architecture is checked.

    The first convolution is adapted to the model's band count (mean of the RGB filters,
    repeated) and the classifier head is left freshly initialised.

    Raises:
        ModelError: the file is missing, its checksum differs, or it does not fit the architecture.
    """
    import torchvision.models as tvm

    spec = require_imagenet_weights(arch)
    enum_name, member = spec.weights.split(".")
    weights_enum = getattr(getattr(tvm, enum_name), member)
    if source == "imagenet":
        try:
            state = weights_enum.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:
            raise ModelError(
                f"cannot download ImageNet weights for {arch} ({exc}); pass a local file with --pretrained PATH"
            ) from exc
    else:
        from s2lc.datasets import file_sha256

        path = Path(source)
        if not path.is_file():
            raise ModelError(f"{path}: weights file not found; give an existing file or 'imagenet'")
        digest = file_sha256(path)
        if sha256:
            expected, what = sha256.lower(), "the given --pretrained-sha256"
        else:
            m = _HASH_IN_NAME.search(path.name) or _HASH_IN_NAME.search(Path(weights_enum.url).name)
            expected = m.group(1) if m else ""
            what = "the hash in its name" if _HASH_IN_NAME.search(path.name) else f"torchvision's {Path(weights_enum.url).name}"
        if not expected or not digest.startswith(expected):
            raise ModelError(f"{path}: sha256 {digest[:16]}… does not match {what} ({expected[:16]}); wrong or corrupt file")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(f"{path}: cannot read weights ({exc})") from exc
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    conv_w = state.get("conv1.weight")
    in_bands = model.body.conv1.in_channels
    if conv_w is not None and conv_w.shape[1] != in_bands:
        state["conv1.weight"] = conv_w.mean(dim=1, keepdim=True).repeat(1, in_bands, 1, 1) * (3 / in_bands)
    missing, unexpected = model.body.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ModelError(
            f"{source}: weights do not fit {arch} (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    logger.info("initialised %s from %s", arch, source)


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """The model in eval mode with every batch norm folded into its convolution (torch.fx).

    Same outputs up to float rounding, faster on the CPU (no separate batch-norm pass). The
    result is for inference only: it cannot be trained or frozen. A model that cannot be traced
    is returned unchanged.
    """
    from torch.fx.experimental.optimization import fuse

    model.eval()
    try:
        return fuse(model)
    except Exception as exc:  # pragma: no cover - every registered architecture traces
        logger.debug("cannot fuse %s for inference (%s); using it as it is", type(model).__name__, exc)
        return model
