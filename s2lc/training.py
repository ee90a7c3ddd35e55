"""Training a patch classifier on a labelled dataset, resumable, chosen on validation.

Recipe (defaults): SGD with Nesterov momentum (or AdamW, for fine-tuning ImageNet weights) and a one-cycle learning rate,
label smoothing, the 8 flips/rotations and a mild brightness/gain jitter on every patch (random shifts with
``translate`` > 0, a Gaussian blur on half of them with ``blur`` > 0, haze on half of them with
``haze`` > 0), CutMix on half the batches, and an
exponential moving average (EMA) of the weights, which is what gets validated and saved. The epoch whose EMA weights score best on
the validation split is kept; the test split is evaluated once, at the end, with those weights,
and never used to choose anything. A run that blurs or hazes its patches is scored on the
validation split twice, as it is and degraded the same way (a fixed draw), and chosen on the
mean of the two accuracies: on clean patches alone the first epoch of a fine-tune, barely
moved from where it started, would win. The chosen weights' temperature (:mod:`s2lc.calibration`)
is then fitted on the clean validation split's logits and written into the checkpoint's contract.

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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from s2lc import __version__
from s2lc.augment import airlight_scale, augment, cutmix, degraded_copy
from s2lc.calibration import fit_calibration
from s2lc.checkpoint import (
    MS_SCALING,
    RGB_SCALING,
    ModelContract,
    read_contract,
    save_checkpoint,
)
from s2lc.datasets import PatchDataset, load_dataset
from s2lc.errors import DatasetError, ModelError
from s2lc.evaluation import classification_report
from s2lc.inference import autocast, predict_logits, predict_proba, resolve_device, resolve_precision
from s2lc.models import (
    build_model,
    load_pretrained,
    require_imagenet_weights,
    set_backbone_trainable,
)
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
_BEST_FILE = ".best.safetensors"  #: the best epoch's EMA weights so far


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
        raise ModelError(
            f"{config.teacher}: the teacher's classes or bands differ from the dataset's; "
            "distil from a model trained on the same classes and bands"
        )
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


def _check(config: TrainConfig) -> None:
    """Refuse settings out of range before anything is read."""
    if not 0 <= config.translate < 32:
        raise ModelError(f"translate must be between 0 and 31 pixels, got {config.translate}")
    if not 0 <= config.blur <= 4:
        raise ModelError(f"blur must be between 0 and 4 pixels, got {config.blur}")
    if not 0 <= config.haze < 1 or not 0 <= config.distill <= 1:
        raise ModelError(f"haze must be in [0, 1) and distill in [0, 1]; got haze {config.haze}, distill {config.distill}")
    choose(Arch, config.arch, ModelError)
    choose(Optimizer, config.optimizer, ModelError)


def _starting_points(config: TrainConfig) -> tuple[TrainConfig, ModelContract | None, Any]:
    """The teacher (loaded, its sha256 recorded in the config) and the contract of an s2lc checkpoint
    to fine-tune (None for ImageNet or a plain weights file, whose presence is checked here)."""
    teacher = None
    if config.teacher:
        from s2lc.checkpoint import load_checkpoint

        teacher = load_checkpoint(config.teacher, fuse=True)  # its file's sha256 comes with it
        if config.teacher_sha256 and config.teacher_sha256 != teacher.sha256:
            raise ModelError(f"{config.teacher}: sha256 {teacher.sha256[:16]}… is not the expected {config.teacher_sha256[:16]}…")
        config = replace(config, teacher_sha256=teacher.sha256)
    _check(config)
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
    return config, base_contract, teacher


def _dataset(data, config: TrainConfig, base_contract: ModelContract | None, progress: bool):
    """The dataset (cut to ``limit_per_class``) and its train, validation and test indices."""
    ds = _subset(load_dataset(data, progress=progress), config.limit_per_class)
    if config.translate >= min(ds.images.shape[-2:]):
        raise ModelError(f"{data}: translate={config.translate} must be below the patch size {ds.images.shape[-1]}")
    if base_contract is not None and list(ds.bands) != list(base_contract.bands):
        raise DatasetError(f"{data}: bands {ds.bands} differ from the checkpoint's {tuple(base_contract.bands)}")
    splits = ds.split("train"), ds.split("val"), ds.split("test")
    if min(len(s) for s in splits) == 0:
        raise DatasetError(f"{data}: too few images per class for a 60/20/20 split (need at least 3 per class)")
    return ds, splits


def _network(config: TrainConfig, ds: PatchDataset, base_contract: ModelContract | None, train_x: torch.Tensor,
             divisor: float) -> tuple[torch.nn.Module, list[float], list[float]]:
    """The network to train, initialised from scratch, ImageNet, a weights file or a checkpoint, and
    the normalisation (mean, std) measured on the training patches."""
    sample = train_x[:: max(1, len(train_x) // 4000)].float() / divisor
    mean = sample.mean(dim=(0, 2, 3)).tolist()
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    n_classes = len(ds.classes)
    model = build_model(config.arch, len(ds.bands), n_classes, mean, std, config.input_size)
    if base_contract is not None:
        from s2lc.checkpoint import load_checkpoint

        state = load_checkpoint(config.pretrained).model.state_dict()
        if list(base_contract.classes) != list(ds.classes):
            logger.warning("classes differ from the checkpoint's: the head is re-initialised for %d classes", n_classes)
            state = {k: v for k, v in state.items() if not k.startswith("body.fc.")}
        state.update({"mean": model.mean, "std": model.std})
        model.load_state_dict(state, strict=False)
    elif config.pretrained:
        load_pretrained(model, config.arch, config.pretrained, config.pretrained_sha256, bands=list(ds.bands))
    return model, mean, std


@dataclass
class _Run:
    """A training run's moving parts, saved after every epoch and restored on resume."""

    config: TrainConfig
    model: torch.nn.Module
    ema: Any
    opt: torch.optim.Optimizer
    sched: Any
    gen: torch.Generator
    device: torch.device
    history: list[dict] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "val_acc": -1.0})
    start_epoch: int = 0

    @classmethod
    def create(cls, config: TrainConfig, model: torch.nn.Module, steps: int, gen: torch.Generator,
               device: torch.device) -> "_Run":
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
        opt = OPTIMIZERS[config.optimizer](_param_groups(model, config.weight_decay), config.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=config.lr, total_steps=config.epochs * steps, pct_start=0.15, div_factor=20, final_div_factor=200
        )
        return cls(config, model, ema, opt, sched, gen, device)

    def save(self, path: Path, epoch: int) -> None:
        _atomic_torch_save(
            {
                "config": asdict(self.config), "epoch": epoch, "model": self.model.state_dict(),
                "ema": self.ema.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                "gen": self.gen.get_state(), "history": json.dumps(self.history), "best": json.dumps(self.best),
            },
            path,
        )

    def restore(self, path: Path) -> None:
        """Continue the run saved at ``path``, refused if its settings differ."""
        st = torch.load(path, map_location="cpu", weights_only=True)
        saved, now = {**_SETTINGS_BEFORE_THEY_EXISTED, **st["config"]}, asdict(self.config)
        if saved != now:
            changed = [f"{k} was {saved.get(k)}" for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
            raise ModelError(f"{path.parent}: resume=True with different settings ({'; '.join(changed)}); use the original ones")
        self.model.load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["opt"])
        self.sched.load_state_dict(st["sched"])
        self.gen.set_state(st["gen"])
        self.history, self.best, self.start_epoch = json.loads(st["history"]), json.loads(st["best"]), st["epoch"]
        logger.info("resuming %s at epoch %d of %d", path.parent, self.start_epoch + 1, self.config.epochs)


@dataclass
class _Data:
    """What every epoch reads: the training tensors, the validation split (clean and degraded), the
    teacher's targets."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: np.ndarray
    val_y: np.ndarray
    val_degraded: np.ndarray | None
    teacher_p: torch.Tensor | None
    airlight: torch.Tensor
    divisor: float
    clamp: bool
    n_classes: int


def _epoch(run: _Run, d: _Data, epoch: int, progress: bool) -> dict[str, float]:
    """One pass over the training patches; returns its loss, accuracy and seconds."""
    from tqdm import tqdm

    c, model = run.config, run.model
    set_backbone_trainable(model, epoch >= c.freeze_epochs)
    model.train()
    perm = torch.randperm(len(d.train_x), generator=run.gen)
    steps = math.ceil(len(d.train_x) / c.batch_size)
    amp = resolve_precision(c.precision, run.device)
    t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{c.epochs}", disable=not progress, unit="batch", leave=False)
    for b in bar:
        idx = perm[b * c.batch_size : (b + 1) * c.batch_size]
        x = augment(d.train_x[idx].float().div_(d.divisor), run.gen, c.jitter, clamp=d.clamp, haze=c.haze,
                    airlight=d.airlight, translate=c.translate, blur=c.blur)
        y = d.train_y[idx]
        target = F.one_hot(y, d.n_classes).float()
        if d.teacher_p is not None:
            target = (1 - c.distill) * target + c.distill * d.teacher_p[idx]
        if c.cutmix > 0 and float(torch.rand(1, generator=run.gen)) < c.cutmix:
            x, target = cutmix(x, target, run.gen)
        x = x.to(run.device).contiguous(memory_format=torch.channels_last)
        with autocast(run.device, amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), target.to(run.device), label_smoothing=c.label_smoothing)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        run.sched.step()
        run.ema.update_parameters(model)
        seen += len(y)
        loss_sum += loss.item() * len(y)
        correct += int((logits.argmax(1).cpu() == y).sum())
        if b % 10 == 0:
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    bar.close()
    return {"train_loss": loss_sum / seen, "train_acc": correct / seen, "seconds": time.perf_counter() - t0}


def _validate(model: torch.nn.Module, d: _Data, run: _Run) -> tuple[float, dict[str, float]]:
    """Validation of ``model``: the score it is chosen on and the figures for the history (the
    mean of clean and degraded accuracy where the run blurs or hazes)."""
    val_acc, val_loss, _ = _evaluate(model, d.val_x, d.val_y, d.divisor, run.device, run.config.precision)
    figures = {"val_loss": val_loss, "val_acc": val_acc}
    if d.val_degraded is None:
        return val_acc, figures
    acc, loss, _ = _evaluate(model, d.val_degraded, d.val_y, d.divisor, run.device, run.config.precision)
    return (val_acc + acc) / 2, {**figures, "val_degraded_acc": acc, "val_degraded_loss": loss}


def _epochs(run: _Run, d: _Data, out: Path, load_best: Callable[[], torch.nn.Module], progress: bool) -> None:
    """The epochs left: train, validate the EMA weights, keep the best, save the state."""
    c, best_path = run.config, out / _BEST_FILE
    if run.start_epoch and d.val_degraded is not None and "score" not in run.best and best_path.exists():
        # a run saved before degraded validation existed: score its best epoch the new way
        acc, loss, _ = _evaluate(load_best().to(run.device), d.val_degraded, d.val_y, d.divisor, run.device, c.precision)
        run.best.update(score=(run.best["val_acc"] + acc) / 2, val_degraded_acc=acc, val_degraded_loss=loss)
    for epoch in range(run.start_epoch, c.epochs):
        trained = _epoch(run, d, epoch, progress)
        score, val = _validate(run.ema.module, d, run)
        degraded = {k: v for k, v in val.items() if k.startswith("val_degraded")}
        rec = {"epoch": epoch + 1, "train_loss": trained["train_loss"], "train_acc": trained["train_acc"],
               "val_loss": val["val_loss"], "val_acc": val["val_acc"], **degraded,
               "lr": run.sched.get_last_lr()[0], "seconds": trained["seconds"]}
        run.history.append(rec)
        logger.info("epoch %d/%d: train loss %.4f acc %.4f, val loss %.4f acc %.4f (%.0f s)", epoch + 1, c.epochs,
                    rec["train_loss"], rec["train_acc"], rec["val_loss"], rec["val_acc"], rec["seconds"])
        if degraded:
            logger.info("epoch %d/%d: degraded val acc %.4f, chosen on %.4f", epoch + 1, c.epochs,
                        degraded["val_degraded_acc"], score)
        if progress:
            print(f"epoch {epoch + 1}/{c.epochs}: val acc {rec['val_acc']:.4f} loss {rec['val_loss']:.4f} "
                  f"({rec['seconds']:.0f} s)", file=sys.stderr, flush=True)
        if score > run.best.get("score", run.best["val_acc"]):
            from safetensors.torch import save_file

            run.best = {"epoch": epoch + 1, "val_acc": rec["val_acc"], "val_loss": rec["val_loss"], "score": score,
                        **degraded}
            save_file({k: v.detach().cpu().contiguous() for k, v in run.ema.module.state_dict().items()}, str(best_path))
        run.save(out / STATE_FILE, epoch + 1)


def _test(final: torch.nn.Module, ds: PatchDataset, test_idx: np.ndarray, run: _Run, divisor: float):
    """The chosen weights on the test split, as they are and with 8-fold TTA: (report, TTA report, probabilities)."""
    test_x, test_y = ds.images[test_idx], ds.labels[test_idx]
    kw = {"batch_size": 512, "device": run.device, "precision": run.config.precision}
    prob = predict_proba(final, test_x, divisor, **kw)
    report = classification_report(test_y, prob.argmax(1), ds.classes)
    prob_tta = predict_proba(final, test_x, divisor, tta=True, **kw)
    return report, classification_report(test_y, prob_tta.argmax(1), ds.classes), prob


def _calibration(final: torch.nn.Module, d: _Data, ds: PatchDataset, test_idx: np.ndarray, run: _Run) -> dict[str, Any]:
    """The temperature of the chosen weights, fitted on the clean validation split's logits, with NLL
    and ECE before and after on validation and test (:func:`s2lc.calibration.fit_calibration`)."""
    kw = {"batch_size": 512, "device": run.device, "precision": run.config.precision}
    record = fit_calibration(predict_logits(final, d.val_x, d.divisor, **kw), d.val_y,
                             predict_logits(final, ds.images[test_idx], d.divisor, **kw), ds.labels[test_idx])
    logger.info("temperature %.4f: validation ECE %.4f -> %.4f, test ECE %.4f -> %.4f", record["temperature"],
                record["val"]["before"]["ece"], record["val"]["after"]["ece"],
                record["test"]["before"]["ece"], record["test"]["after"]["ece"])
    return record


def _contract(config: TrainConfig, ds: PatchDataset, scaling: dict, mean: list[float], std: list[float],
              metrics: dict[str, Any], chosen_on: dict[str, float], command: str | None) -> ModelContract:
    """What the saved model expects and how it was made."""
    return ModelContract(
        arch=config.arch,
        bands=list(ds.bands),
        classes=list(ds.classes),
        scaling=dict(scaling),
        mean=mean,
        std=std,
        patch_size=int(ds.images.shape[-1]),
        input_size=config.input_size,
        level="L1C",
        name=f"s2lc-{'eurosat-rgb' if ds.kind == 'rgb' else 'eurosat-ms'}-{config.arch}",
        training={
            "dataset": Path(ds.source).name,
            "dataset_sha256": ds.sha256,
            "n_images": len(ds),
            "split": "stratified 60/20/20 by sha256 of '<class>/<file>' within each class",
            "split_sizes": metrics["split_sizes"],
            "config": asdict(config),
            "command": command,
            "best_epoch": metrics["best_epoch"],
        },
        metrics={
            **chosen_on,
            "test_accuracy": metrics["test_accuracy"],
            "test_accuracy_tta8": metrics["test_accuracy_tta8"],
            "test_macro_f1": metrics["test"]["macro_f1"],
        },
        s2lc_version=__version__,
        temperature=metrics["calibration"]["temperature"],
        calibration=metrics["calibration"],
    )


def train(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train a classifier and write the checkpoint, metrics and figures into ``out_dir``.

    Writes ``model.safetensors`` (the epoch best on validation, its temperature fitted on
    validation), ``metrics.json`` (with ``calibration``: the temperature, NLL and ECE before and after),
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
    out = Path(out_dir)
    state_path = out / STATE_FILE
    if state_path.exists() and not resume:
        raise ModelError(f"{out}: holds an earlier run ({STATE_FILE}); pass resume=True to continue it or choose another folder")
    if resume and not state_path.exists():
        raise ModelError(f"{out}: nothing to resume ({STATE_FILE} missing); start without resume=True")
    config, base_contract, teacher = _starting_points(config)
    ds, (train_idx, val_idx, test_idx) = _dataset(data, config, base_contract, progress)
    scaling = RGB_SCALING if ds.kind == "rgb" else MS_SCALING
    divisor = float(scaling["divisor"])
    out.mkdir(parents=True, exist_ok=True)  # only once the data is known to be usable

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    device = resolve_device(config.device)
    train_x = torch.from_numpy(ds.images[train_idx])
    model, mean, std = _network(config, ds, base_contract, train_x, divisor)
    model = model.to(device).to(memory_format=torch.channels_last)
    run = _Run.create(config, model, math.ceil(len(train_x) / config.batch_size), gen, device)
    if resume:
        run.restore(state_path)

    airlight = airlight_scale(ds, scaling)
    clamp = ds.kind == "rgb"
    d = _Data(train_x, torch.from_numpy(ds.labels[train_idx]), ds.images[val_idx], ds.labels[val_idx],
              degraded_copy(ds.images[val_idx], divisor, blur=config.blur, haze=config.haze, seed=config.seed,
                            airlight=airlight, clamp=clamp),
              _teacher_probabilities(config, teacher, ds, train_idx, divisor, device) if teacher else None,
              airlight, divisor, clamp, len(ds.classes))

    def load_best() -> torch.nn.Module:
        """The network with the weights of the best epoch so far, in eval mode."""
        from safetensors.torch import load_file

        kept = build_model(config.arch, len(ds.bands), len(ds.classes), mean, std, config.input_size)
        kept.load_state_dict(load_file(str(out / _BEST_FILE)))
        return kept.eval()

    _epochs(run, d, out, load_best, progress)
    final = load_best()
    report, report_tta, prob = _test(final, ds, test_idx, run, divisor)
    best = run.best
    chosen_on = {"val_accuracy": best["val_acc"],
                 **({"val_degraded_accuracy": best["val_degraded_acc"]} if "val_degraded_acc" in best else {})}
    metrics = {
        "best_epoch": best["epoch"], **chosen_on, "test_accuracy": report["accuracy"],
        "test_accuracy_tta8": report_tta["accuracy"], "test": report,
        "split_sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
        "calibration": _calibration(final, d, ds, test_idx, run),
        "history": run.history,
    }
    contract = _contract(config, ds, scaling, mean, std, metrics, chosen_on, command)
    dtype = {"float16": torch.float16, "float32": torch.float32}[config.weights_dtype]
    metrics["model_sha256"] = save_checkpoint(out / MODEL_FILE, final, contract, dtype=dtype)
    metrics["model_file"] = MODEL_FILE
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _figures(out, run.history, report, ds, test_idx, prob)
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
