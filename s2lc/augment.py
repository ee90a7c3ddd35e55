"""Training-time augmentation and degraded copies of patches (torch, on the CPU or a GPU).

Each patch is flipped/rotated (one of 8), optionally shifted, blurred, jittered and hazed
(:func:`augment`); CutMix mixes batches (:func:`cutmix`). :func:`degraded_copy` makes the fixed
degraded validation copy a blurring or hazing run is also scored on, and :func:`blur_patches`
blurs stored patches for the yardsticks in ``bench/``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from s2lc.datasets import PatchDataset

__all__ = ["airlight_scale", "augment", "blur_patches", "cutmix", "degraded_copy", "gaussian_blur", "map_patches"]


def airlight_scale(ds: PatchDataset, scaling: dict) -> torch.Tensor:
    """Per-band upper bound of the haze airlight in network-input units.

    RGB (DN 0–2750 → 0–1): 1, so the airlight spans reflectance 0.14–0.275. Other data (DN ÷
    10 000): the same reflectance, falling with wavelength as scattering does (× 490 nm / λ,
    at most 1), so the SWIR bands are hardly lifted.
    """
    if ds.kind == "rgb":
        return torch.ones(len(ds.bands))
    from s2lc.sentinel2 import band

    top = 2750.0 / float(scaling["divisor"])
    return torch.tensor([top * min(1.0, 490.0 / band(b).wavelength_nm) for b in ds.bands], dtype=torch.float32)


def augment(x: torch.Tensor, gen: torch.Generator, jitter: float, clamp: bool, haze: float = 0.0,
             airlight: torch.Tensor | None = None, translate: int = 0, blur: float = 0.0) -> torch.Tensor:
    """Random flip/rotation (one of 8), a shift of up to ``translate`` pixels each way (edges
    mirrored), on half the patches a Gaussian blur of sigma uniform in [0, ``blur``] pixels,
    brightness/gain jitter and, on half the patches, haze; x is (n, c, h, w) in network-input
    units. Settings at 0 draw no random numbers (runs made before they existed reproduce).

    The blur stands for what softens a 10 m patch in real products and not in EuroSAT's: lossy
    JPEG 2000 re-encoding, resampling, a sensor or processing baseline with a softer response.
    A model that never saw it reads a slightly softer forest as water.

    Haze follows the usual scattering model, ``x·t + a·(1 − t)``: transmission ``t`` uniform in
    [1 − haze, 1] and an airlight ``a`` per band uniform in [0.5, 1] × ``airlight`` (per band,
    default 1), which lowers contrast and lifts dark surfaces as haze and thin cloud do
    (EuroSAT's patches are mostly clear).
    """
    n = x.shape[0]
    flip = torch.randint(0, 2, (n,), generator=gen).bool()
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    k = torch.randint(0, 4, (n,), generator=gen)
    out = x.clone()
    for r in (1, 2, 3):
        m = k == r
        if m.any():
            out[m] = torch.rot90(x[m], r, (-2, -1))
    if translate > 0:
        h, w = out.shape[-2:]
        padded = F.pad(out, (translate,) * 4, mode="reflect")
        dy, dx = torch.randint(0, 2 * translate + 1, (2, n), generator=gen).tolist()
        out = torch.stack([padded[i, :, a : a + h, b : b + w] for i, (a, b) in enumerate(zip(dy, dx))])
    if blur > 0:
        blurred = torch.rand(n, generator=gen) < 0.5
        sigma = torch.rand(n, generator=gen) * blur
        if blurred.any():  # the other half is left as it is, not convolved with a unit kernel
            out[blurred] = gaussian_blur(out[blurred], sigma[blurred])
    if jitter > 0:
        bright = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * jitter
        gain = 1 + (torch.rand(n, x.shape[1], 1, 1, generator=gen) * 2 - 1) * (jitter / 2)
        out = out * bright * gain
    if haze > 0:
        hazy = (torch.rand(n, 1, 1, 1, generator=gen) < 0.5).float()
        t = 1 - hazy * torch.rand(n, 1, 1, 1, generator=gen) * haze
        a = 0.5 + 0.5 * torch.rand(n, x.shape[1], 1, 1, generator=gen)
        if airlight is not None:
            a = a * airlight.view(1, -1, 1, 1)
        out = out * t + a * (1 - t)
    if clamp and (jitter > 0 or haze > 0):
        out = out.clamp_(0, 1)
    return out


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each patch of x (n, c, h, w) with its own Gaussian of ``sigma`` (n,) pixels (0: as
    it is), separable, edges mirrored; the kernel reaches 3 sigma, at most the patch's size − 1."""
    n, c, h, w = x.shape
    radius = max(1, min(math.ceil(3 * float(sigma.max())), h - 1, w - 1))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    s = sigma.to(x.device, x.dtype).clamp_min(1e-3)[:, None]
    k = torch.exp(-(t[None, :] ** 2) / (2 * s**2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n * c, taps): one kernel per patch and band
    y = F.pad(x.reshape(1, n * c, h, w), (radius,) * 4, mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=n * c)
    y = F.conv2d(y, k[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def cutmix(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix with a uniform mixing ratio; returns mixed inputs and soft targets."""
    n, _, h, w = x.shape
    perm = torch.randperm(n, generator=gen)
    lam = float(torch.rand(1, generator=gen))
    ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = int(torch.randint(0, h, (1,), generator=gen)), int(torch.randint(0, w, (1,), generator=gen))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    keep = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return x, keep * y + (1 - keep) * y[perm]


def map_patches(images: np.ndarray, fn: Callable[[torch.Tensor], torch.Tensor], chunk: int = 512) -> np.ndarray:
    """``fn`` applied to float copies of ``images`` (n, c, h, w), ``chunk`` patches at a time,
    each result rounded and clipped back into the images' own dtype (uint8 RGB, uint16 DN)."""
    top = float(np.iinfo(images.dtype).max)
    out = np.empty_like(images)
    for i in range(0, len(images), chunk):
        out[i : i + chunk] = fn(torch.from_numpy(images[i : i + chunk]).float()).round_().clamp_(0, top).numpy()
    return out


def blur_patches(images: np.ndarray, sigma: float) -> np.ndarray:
    """Every patch of ``images`` blurred with a Gaussian of ``sigma`` pixels (the blur of
    ``--blur``), in their own dtype."""
    return map_patches(images, lambda x: gaussian_blur(x, torch.full((len(x),), sigma)))


def degraded_copy(images: np.ndarray, divisor: float, *, blur: float, haze: float, seed: int, airlight: torch.Tensor,
                  clamp: bool, chunk: int = 512) -> np.ndarray | None:
    """The validation patches augmented as in training but without jitter: flipped/rotated,
    blurred and hazed (a fixed draw from ``seed`` + 1, for a run of ``blur`` and ``haze``), in the
    images' own dtype; None when the run neither blurs nor hazes."""
    if blur == 0 and haze == 0:
        return None
    gen = torch.Generator().manual_seed(seed + 1)

    def degrade(x: torch.Tensor) -> torch.Tensor:
        return augment(x.div_(divisor), gen, 0.0, clamp=clamp, haze=haze, airlight=airlight, blur=blur).mul_(divisor)

    return map_patches(images, degrade, chunk)
