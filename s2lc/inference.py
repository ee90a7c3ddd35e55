"""Batched inference on patches: devices, precision and test-time augmentation."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import torch

from s2lc.calibration import check_temperature
from s2lc.errors import ModelError
from s2lc.options import Device, Precision, choose

__all__ = ["autocast", "d4_views", "predict_logits", "predict_proba", "resolve_device", "resolve_precision"]

logger = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> torch.device:
    """A :class:`~s2lc.options.Device` as a torch device: ``auto`` → CUDA when present, else CPU
    (``cuda:1`` picks a GPU).

    Raises:
        ModelError: an unknown device name, or ``cuda`` without a CUDA GPU.
    """
    kind = choose(Device, "cuda" if str(device).startswith("cuda:") else device, ModelError)
    if kind == Device.AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == Device.CUDA and not torch.cuda.is_available():
        raise ModelError(f"device={str(device)!r} asked for, but no CUDA GPU is available; use device='cpu' or device='auto'")
    return torch.device(str(device))


def _cpu_bf16_fast() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # pragma: no cover - older torch
        return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None`` = float32).

    ``auto``: float16 on CUDA, bfloat16 on CPUs with native bf16 (AVX512-BF16/AMX), else float32.

    Raises:
        ModelError: ``precision`` is not a :class:`~s2lc.options.Precision`.
    """
    precision = choose(Precision, precision, ModelError)
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if _cpu_bf16_fast() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype``, or a no-op for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def d4_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/rotations of a (n, c, h, w) batch."""
    views = []
    for flip in (False, True):
        base = x.flip(-1) if flip else x
        views.extend(torch.rot90(base, k, (-2, -1)) for k in range(4))
    return views


def _batches(model: torch.nn.Module, patches: np.ndarray | torch.Tensor, divisor: float, batch_size: int,
             device: torch.device, progress: bool):
    """The network's 0–1 input, batch by batch, on ``device`` (the model is put there, in eval mode)."""
    from tqdm import tqdm

    model.eval().to(device)
    data = torch.as_tensor(patches)
    for start in tqdm(range(0, len(data), batch_size), disable=not progress, desc="predicting", unit="batch"):
        x = data[start : start + batch_size].to(device).float().div(divisor)  # not in place: float input is the caller's
        yield x.contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def predict_proba(
    model: torch.nn.Module,
    patches: np.ndarray | torch.Tensor,
    divisor: float,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    precision: str = "auto",
    tta: bool = False,
    progress: bool = False,
    temperature: float = 1.0,
) -> np.ndarray:
    """Class probabilities of patches: ``softmax(logits / temperature)``.

    Args:
        model: a :class:`~s2lc.models.PatchClassifier` (eval mode is set here).
        patches: (n, bands, h, w) in the dataset's stored values (uint8 for RGB); divided by
            ``divisor`` to reach the network's 0–1 input.
        tta: average the softmax over the 8 flips/rotations (each view's logits divided by the temperature).
        temperature: the checkpoint's calibration (:attr:`s2lc.checkpoint.ModelContract.temperature`;
            1.0: the raw softmax). It changes no arg-max.

    Returns:
        (n, classes) float32 probabilities.

    Raises:
        ArgumentError: a temperature that is not a finite number above 0.
    """
    temperature = check_temperature(temperature)
    device = torch.device(device) if isinstance(device, str) else device
    dtype = resolve_precision(precision, device)
    out = []
    for x in _batches(model, patches, divisor, batch_size, device, progress):
        with autocast(device, dtype):
            views = d4_views(x) if tta else [x]
            prob = sum(torch.softmax(model(v).float() / temperature, dim=1) for v in views) / len(views)
        out.append(prob.float().cpu())
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(out).numpy()


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    patches: np.ndarray | torch.Tensor,
    divisor: float,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    precision: str = "auto",
    progress: bool = False,
) -> np.ndarray:
    """The network's raw outputs (logits) for patches, as :func:`predict_proba` computes them
    before the softmax (no test-time augmentation); what a temperature is fitted on
    (:func:`s2lc.calibration.fit_temperature`).

    Args:
        model, patches, divisor, batch_size, device, precision, progress: as for :func:`predict_proba`.

    Returns:
        (n, classes) float32 logits.
    """
    device = torch.device(device) if isinstance(device, str) else device
    dtype = resolve_precision(precision, device)
    out = []
    for x in _batches(model, patches, divisor, batch_size, device, progress):
        with autocast(device, dtype):
            out.append(model(x).float().cpu())
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(out).numpy()
