"""Training a patch classifier on a labelled dataset, resumable, chosen on validation.

Recipe (defaults): SGD with Nesterov momentum (or AdamW, for fine-tuning ImageNet weights) and a one-cycle learning rate, label smoothing,
the 8 flips/rotations and a mild brightness/gain jitter on every patch (random shifts with
``translate`` > 0, a Gaussian blur on half of them with ``blur`` > 0, haze on half of them with
``haze`` > 0), CutMix on half the batches, and an
exponential moving average (EMA) of the weights, which is what gets validated and saved. The epoch whose EMA weights score best on
the validation split is kept; the test split is evaluated once, at the end, with those weights,
and never used to choose anything. A run that blurs or hazes its patches is scored on the
validation split twice, as it is and degraded the same way (a fixed draw), and chosen on the
mean of the two accuracies: on clean patches alone the first epoch of a fine-tune, barely
moved from where it started, would win.

State is saved after every epoch (``state.pt``, tensors only, loaded with
``weights_only=True``), so an interrupted run continues with ``resume=True``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from s2lc import __version__
from s2lc.checkpoint import MS_SCALING, RGB_SCALING, ModelContract, read_contract, save_checkpoint
from s2lc.datasets import PatchDataset, load_dataset
from s2lc.errors import DatasetError, ModelError
from s2lc.evaluation import classification_report
from s2lc.inference import autocast, predict_proba, resolve_device, resolve_precision
from s2lc.models import ARCHITECTURES, build_model, load_pretrained, require_imagenet_weights, set_backbone_trainable
from s2lc.options import Arch, Optimizer, choose

__all__ = ["OPTIMIZERS", "TrainConfig", "train"]

logger = logging.getLogger(__name__)

#: Optimisers by name: SGD with Nesterov momentum (from scratch), AdamW (fine-tuning pretrained weights).
OPTIMIZERS: dict[Optimizer, Callable[[list[dict], float], torch.optim.Optimizer]] = {
    Optimizer.SGD: lambda groups, lr: torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True),
    Optimizer.ADAMW: lambda groups, lr: torch.optim.AdamW(groups, lr=lr),
}

STATE_FILE = "state.pt"
MODEL_FILE = "model.safetensors"


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (all recorded in the checkpoint)."""

    arch: str = "resnet18"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.2
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    cutmix: float = 0.5  #: probability that a batch is CutMix-ed
    jitter: float = 0.1  #: brightness ±jitter, per-band gain ±jitter/2
    haze: float = 0.0  #: on half the patches, haze of transmission down to 1 − haze (0: none)
    translate: int = 0  #: random shift of up to this many pixels each way, edges mirrored (0: none)
    blur: float = 0.0  #: on half the patches, a Gaussian blur of sigma up to this many pixels (0: none)
    ema_decay: float = 0.999
    seed: int = 0
    pretrained: str | None = None  #: "imagenet", a weights file, or an s2lc checkpoint
    pretrained_sha256: str | None = None
    freeze_epochs: int = 0  #: epochs with the backbone frozen (head only) before unfreezing
    precision: str = "auto"
    device: str = "auto"
    weights_dtype: str = "float16"  #: how the final checkpoint stores weights
    limit_per_class: int | None = None  #: use at most this many patches per class (smoke runs)
    teacher: str | None = None  #: an s2lc checkpoint to distil from (its 8-fold TTA probabilities)
    teacher_sha256: str | None = None  #: sha256 of the teacher file (filled in when not given)
    distill: float = 0.7  #: weight of the teacher's probabilities in the target (the rest: the label)
    optimizer: str = "sgd"  #: "sgd" (Nesterov momentum) or "adamw"
    input_size: int | None = None  #: resize patches to this size inside the network (None: as they are)


#: Values that reproduce what a run saved before a setting existed did (for --resume).
_SETTINGS_BEFORE_THEY_EXISTED = {"haze": 0.0, "teacher": None, "teacher_sha256": None, "distill": 0.7, "translate": 0,
                                "blur": 0.0, "optimizer": "sgd", "input_size": None}


def _airlight_scale(ds: PatchDataset, scaling: dict) -> torch.Tensor:
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


def _augment(x: torch.Tensor, gen: torch.Generator, jitter: float, clamp: bool, haze: float = 0.0,
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
            out[blurred] = _gaussian_blur(out[blurred], sigma[blurred])
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


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
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


def _cutmix(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
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


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _subset(ds: PatchDataset, limit: int | None) -> PatchDataset:
    if not limit:
        return ds
    keep = np.sort(np.concatenate([np.flatnonzero(ds.labels == c)[:limit] for c in range(len(ds.classes))]))
    return PatchDataset(ds.images[keep], ds.labels[keep], [ds.files[i] for i in keep], ds.classes,
                        ds.bands, ds.kind, ds.source, ds.sha256)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    from s2lc.files import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        torch.save(obj, tmp)


def _teacher_probabilities(config: TrainConfig, teacher, ds: PatchDataset, train_idx: np.ndarray, divisor: float,
                           device: torch.device) -> torch.Tensor:
    """The teacher's class probabilities for the training patches, averaged over the 8 flips/rotations.

    The average is invariant to the flips/rotations the student sees, so one pass serves every epoch.
    ``teacher`` is the loaded checkpoint (:class:`s2lc.checkpoint.LoadedModel`) of ``config.teacher``.
    """
    c = teacher.contract
    if list(c.classes) != list(ds.classes) or list(c.bands) != list(ds.bands):
        raise ModelError(f"{config.teacher}: the teacher's classes or bands differ from the dataset's; distil from a model trained on the same classes and bands")
    if float(c.scaling["divisor"]) != divisor:
        raise ModelError(f"{config.teacher}: the teacher scales its input differently from this dataset ({c.scaling})")
    logger.info("teacher %s: 8-fold TTA probabilities for %d training patches", config.teacher, len(train_idx))
    prob = predict_proba(teacher.model, ds.images[train_idx], divisor, batch_size=512, device=device,
                         precision=config.precision, tta=True)
    return torch.from_numpy(prob).float()


def _evaluate(model, images, labels, divisor, device, precision, batch_size=512) -> tuple[float, float, np.ndarray]:
    prob = predict_proba(model, images, divisor, batch_size=batch_size, device=device, precision=precision)
    loss = float(F.nll_loss(torch.log(torch.from_numpy(prob).clamp_min(1e-8)), torch.from_numpy(labels)))
    pred = prob.argmax(1)
    return float((pred == labels).mean()), loss, pred


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
    return map_patches(images, lambda x: _gaussian_blur(x, torch.full((len(x),), sigma)))


def _degraded_copy(images: np.ndarray, divisor: float, config: TrainConfig, airlight: torch.Tensor, clamp: bool,
                   chunk: int = 512) -> np.ndarray | None:
    """The validation patches augmented as in training but without jitter: flipped/rotated,
    blurred and hazed (a fixed draw from ``seed`` + 1), in the images' own dtype; None when the
    run neither blurs nor hazes."""
    if config.blur == 0 and config.haze == 0:
        return None
    gen = torch.Generator().manual_seed(config.seed + 1)

    def degrade(x: torch.Tensor) -> torch.Tensor:
        return _augment(x.div_(divisor), gen, 0.0, clamp=clamp, haze=config.haze, airlight=airlight,
                        blur=config.blur).mul_(divisor)

    return map_patches(images, degrade, chunk)


def train(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train a classifier and write the checkpoint, metrics and figures into ``out_dir``.

    Writes ``model.safetensors`` (the epoch best on validation), ``metrics.json``,
    ``curves.png``, ``confusion.png``, ``samples.png``, and ``state.pt`` (for resuming).

    Args:
        data: a EuroSAT-style folder or zip (see :func:`s2lc.datasets.load_dataset`).
        out_dir: run folder; must not hold an earlier run unless ``resume``.
        config: hyper-parameters.
        resume: continue the run saved in ``out_dir``.
        progress: tqdm bars on stderr.
        command: the command line, recorded in the checkpoint.

    Returns:
        The metrics dictionary also written to ``metrics.json``.

    Raises:
        DatasetError: bad dataset. ModelError: bad architecture, weights or resume state.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    state_path = out / STATE_FILE
    if state_path.exists() and not resume:
        raise ModelError(f"{out}: holds an earlier run ({STATE_FILE}); pass resume=True to continue it or choose another folder")
    if resume and not state_path.exists():
        raise ModelError(f"{out}: nothing to resume ({STATE_FILE} missing); start without resume=True")
    teacher = None
    if config.teacher:
        from s2lc.checkpoint import load_checkpoint

        teacher = load_checkpoint(config.teacher, fuse=True)  # its file's sha256 comes with it
        if config.teacher_sha256 and config.teacher_sha256 != teacher.sha256:
            raise ModelError(f"{config.teacher}: sha256 {teacher.sha256[:16]}… is not the expected {config.teacher_sha256[:16]}…")
        config = replace(config, teacher_sha256=teacher.sha256)
    if not 0 <= config.translate < 32:
        raise ModelError(f"translate must be between 0 and 31 pixels, got {config.translate}")
    if not 0 <= config.blur <= 4:
        raise ModelError(f"blur must be between 0 and 4 pixels, got {config.blur}")
    if not 0 <= config.haze < 1 or not 0 <= config.distill <= 1:
        raise ModelError(f"haze must be in [0, 1) and distill in [0, 1]; got haze {config.haze}, distill {config.distill}")
    choose(Arch, config.arch, ModelError)
    choose(Optimizer, config.optimizer, ModelError)

    base_contract = None
    if config.pretrained and Path(config.pretrained).suffix == ".safetensors":
        try:
            base_contract, _, _ = read_contract(config.pretrained)
        except Exception:
            base_contract = None  # a plain safetensors weights file: handled by load_pretrained
    if config.pretrained and base_contract is None:
        require_imagenet_weights(config.arch, config.pretrained)  # refused before the data is read, not after
    if base_contract is not None and config.input_size is None and base_contract.input_size:
        config = replace(config, input_size=base_contract.input_size)  # a fine-tune keeps the size it starts from
    ds = load_dataset(data, progress=progress)
    ds = _subset(ds, config.limit_per_class)
    if config.translate >= min(ds.images.shape[-2:]):
        raise ModelError(f"{data}: translate={config.translate} must be below the patch size {ds.images.shape[-1]}")
    if base_contract is not None and list(ds.bands) != list(base_contract.bands):
        raise DatasetError(f"{data}: bands {ds.bands} differ from the checkpoint's {tuple(base_contract.bands)}")
    train_idx, val_idx, test_idx = ds.split("train"), ds.split("val"), ds.split("test")
    if min(len(train_idx), len(val_idx), len(test_idx)) == 0:
        raise DatasetError(f"{data}: too few images per class for a 60/20/20 split (need at least 3 per class)")
    scaling = RGB_SCALING if ds.kind == "rgb" else MS_SCALING
    divisor = float(scaling["divisor"])
    out.mkdir(parents=True, exist_ok=True)  # only once the data is known to be usable

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    device = resolve_device(config.device)
    amp = resolve_precision(config.precision, device)

    train_x = torch.from_numpy(ds.images[train_idx])
    train_y = torch.from_numpy(ds.labels[train_idx])
    sample = train_x[:: max(1, len(train_x) // 4000)].float() / divisor
    mean = sample.mean(dim=(0, 2, 3)).tolist()
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    n_classes = len(ds.classes)
    model = build_model(config.arch, len(ds.bands), n_classes, mean, std, config.input_size)
    if base_contract is not None:
        from s2lc.checkpoint import load_checkpoint

        base = load_checkpoint(config.pretrained).model
        state = base.state_dict()
        if list(base_contract.classes) != list(ds.classes):
            logger.warning("classes differ from the checkpoint's: the head is re-initialised for %d classes", n_classes)
            state = {k: v for k, v in state.items() if not k.startswith("body.fc.")}
        state.update({"mean": model.mean, "std": model.std})
        model.load_state_dict(state, strict=False)
    elif config.pretrained:
        load_pretrained(model, config.arch, config.pretrained, config.pretrained_sha256, bands=list(ds.bands))
    model = model.to(device).to(memory_format=torch.channels_last)

    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    opt = OPTIMIZERS[config.optimizer](_param_groups(model, config.weight_decay), config.lr)
    steps = math.ceil(len(train_x) / config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * steps, pct_start=0.15, div_factor=20, final_div_factor=200
    )
    history: list[dict] = []
    best = {"epoch": 0, "val_acc": -1.0}
    start_epoch = 0
    if resume:
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        saved, now = {**_SETTINGS_BEFORE_THEY_EXISTED, **st["config"]}, asdict(config)
        if saved != now:
            changed = [f"{k} was {saved.get(k)}" for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
            raise ModelError(f"{out}: resume=True with different settings ({'; '.join(changed)}); use the original ones")
        model.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        gen.set_state(st["gen"])
        history, best, start_epoch = json.loads(st["history"]), json.loads(st["best"]), st["epoch"]
        logger.info("resuming %s at epoch %d of %d", out, start_epoch + 1, config.epochs)

    airlight = _airlight_scale(ds, scaling)
    teacher_p = _teacher_probabilities(config, teacher, ds, train_idx, divisor, device) if teacher else None
    val_x, val_y = ds.images[val_idx], ds.labels[val_idx]
    val_degraded = _degraded_copy(val_x, divisor, config, airlight, clamp=ds.kind == "rgb")
    best_path = out / ".best.safetensors"

    def load_best() -> torch.nn.Module:
        """The network with the weights of the best epoch so far, in eval mode."""
        from safetensors.torch import load_file

        kept = build_model(config.arch, len(ds.bands), n_classes, mean, std, config.input_size)
        kept.load_state_dict(load_file(str(best_path)))
        return kept.eval()

    if resume and val_degraded is not None and "score" not in best and best_path.exists():
        # a run saved before degraded validation existed: score its best epoch the new way
        acc, loss, _ = _evaluate(load_best().to(device), val_degraded, val_y, divisor, device, config.precision)
        best.update(score=(best["val_acc"] + acc) / 2, val_degraded_acc=acc, val_degraded_loss=loss)
    for epoch in range(start_epoch, config.epochs):
        set_backbone_trainable(model, epoch >= config.freeze_epochs)
        model.train()
        perm = torch.randperm(len(train_x), generator=gen)
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, unit="batch", leave=False)
        for b in bar:
            idx = perm[b * config.batch_size : (b + 1) * config.batch_size]
            x = _augment(train_x[idx].float().div_(divisor), gen, config.jitter, clamp=ds.kind == "rgb", haze=config.haze,
                         airlight=airlight, translate=config.translate, blur=config.blur)
            y = train_y[idx]
            target = F.one_hot(y, n_classes).float()
            if teacher_p is not None:
                target = (1 - config.distill) * target + config.distill * teacher_p[idx]
            if config.cutmix > 0 and float(torch.rand(1, generator=gen)) < config.cutmix:
                x, target = _cutmix(x, target, gen)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            target = target.to(device)
            with autocast(device, amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), target, label_smoothing=config.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update_parameters(model)
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1).cpu() == y).sum())
            if b % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        bar.close()
        val_acc, val_loss, _ = _evaluate(ema.module, val_x, val_y, divisor, device, config.precision)
        score, degraded = val_acc, {}
        if val_degraded is not None:
            acc, loss, _ = _evaluate(ema.module, val_degraded, val_y, divisor, device, config.precision)
            score, degraded = (val_acc + acc) / 2, {"val_degraded_acc": acc, "val_degraded_loss": loss}
        rec = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "val_loss": val_loss,
            "val_acc": val_acc,
            **degraded,
            "lr": sched.get_last_lr()[0],
            "seconds": time.perf_counter() - t0,
        }
        history.append(rec)
        logger.info(
            "epoch %d/%d: train loss %.4f acc %.4f, val loss %.4f acc %.4f (%.0f s)",
            epoch + 1, config.epochs, rec["train_loss"], rec["train_acc"], val_loss, val_acc, rec["seconds"],
        )
        if degraded:
            logger.info("epoch %d/%d: degraded val acc %.4f, chosen on %.4f", epoch + 1, config.epochs, degraded["val_degraded_acc"], score)
        if progress:
            print(f"epoch {epoch + 1}/{config.epochs}: val acc {val_acc:.4f} loss {val_loss:.4f} ({rec['seconds']:.0f} s)",
                  file=sys.stderr, flush=True)
        if score > best.get("score", best["val_acc"]):
            best = {"epoch": epoch + 1, "val_acc": val_acc, "val_loss": val_loss, "score": score, **degraded}
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in ema.module.state_dict().items()}, str(best_path))
        _atomic_torch_save(
            {
                "config": asdict(config), "epoch": epoch + 1, "model": model.state_dict(), "ema": ema.state_dict(),
                "opt": opt.state_dict(), "sched": sched.state_dict(), "gen": gen.get_state(),
                "history": json.dumps(history), "best": json.dumps(best),
            },
            state_path,
        )

    final = load_best()
    test_x, test_y = ds.images[test_idx], ds.labels[test_idx]
    prob = predict_proba(final, test_x, divisor, batch_size=512, device=device, precision=config.precision)
    report = classification_report(test_y, prob.argmax(1), ds.classes)
    prob_tta = predict_proba(final, test_x, divisor, batch_size=512, device=device, precision=config.precision, tta=True)
    report_tta = classification_report(test_y, prob_tta.argmax(1), ds.classes)
    chosen_on = {"val_accuracy": best["val_acc"],
                 **({"val_degraded_accuracy": best["val_degraded_acc"]} if "val_degraded_acc" in best else {})}
    metrics = {
        "best_epoch": best["epoch"],
        **chosen_on,
        "test_accuracy": report["accuracy"],
        "test_accuracy_tta8": report_tta["accuracy"],
        "test": report,
        "split_sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
        "history": history,
    }
    level = "L1C"
    name = f"s2lc-{'eurosat-rgb' if ds.kind == 'rgb' else 'eurosat-ms'}-{config.arch}"
    contract = ModelContract(
        arch=config.arch,
        bands=list(ds.bands),
        classes=list(ds.classes),
        scaling=dict(scaling),
        mean=mean,
        std=std,
        patch_size=int(ds.images.shape[-1]),
        input_size=config.input_size,
        level=level,
        name=name,
        training={
            "dataset": Path(ds.source).name,
            "dataset_sha256": ds.sha256,
            "n_images": len(ds),
            "split": "stratified 60/20/20 by sha256 of '<class>/<file>' within each class",
            "split_sizes": metrics["split_sizes"],
            "config": asdict(config),
            "command": command,
            "best_epoch": best["epoch"],
        },
        metrics={
            **chosen_on,
            "test_accuracy": report["accuracy"],
            "test_accuracy_tta8": report_tta["accuracy"],
            "test_macro_f1": report["macro_f1"],
        },
        s2lc_version=__version__,
    )
    dtype = {"float16": torch.float16, "float32": torch.float32}[config.weights_dtype]
    sha = save_checkpoint(out / MODEL_FILE, final, contract, dtype=dtype)
    metrics["model_sha256"] = sha
    metrics["model_file"] = MODEL_FILE
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _figures(out, history, report, ds, test_idx, prob)
    logger.info("test accuracy %.4f (TTA %.4f), model %s", report["accuracy"], report_tta["accuracy"], out / MODEL_FILE)
    return metrics


def _figures(out: Path, history, report, ds: PatchDataset, test_idx: np.ndarray, prob: np.ndarray) -> None:
    from s2lc.plots import plot_confusion, plot_curves, plot_samples

    plot_curves(history, out / "curves.png")
    plot_confusion(np.array(report["confusion_matrix"]), ds.classes, out / "confusion.png",
                   title=f"Test split, accuracy {100 * report['accuracy']:.2f} %")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(test_idx), size=min(24, len(test_idx)), replace=False)
    plot_samples(ds.images[test_idx][pick], ds.labels[test_idx][pick], prob.argmax(1)[pick], ds.classes, out / "samples.png")
