"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix; a checkpoint
evaluated (:func:`evaluate`) and calibrated (:func:`calibrate`) on a dataset split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["calibrate", "classification_report", "confusion_matrix", "evaluate"]

logger = logging.getLogger(__name__)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts; rows are true classes, columns predictions."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    A class never predicted has precision 0 (and F1 0), as scikit-learn reports with
    ``zero_division=0``.
    """
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    total = cm.sum()
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }
    return {
        "n": int(total),
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()) if k else 0.0,
        "per_class": per_class,
        "classes": list(classes),
        "confusion_matrix": cm.tolist(),
    }


def evaluate(
    model_path: str,
    data: str,
    split: str = "test",
    tta: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a split of a EuroSAT-style dataset.

    Args:
        model_path: an s2lc checkpoint.
        data: dataset folder or zip; its class folders must match the model's classes.
        split: ``train``, ``val``, ``test`` or ``all``.
        tta: average predictions over the 8 flips/rotations.

    Returns:
        :func:`classification_report` plus ``model``, ``model_sha256``, ``split``, ``tta``, the
        model's ``temperature`` and the ``ece`` of its probabilities (:mod:`s2lc.calibration`).

    Raises:
        CheckpointError, DatasetError: bad model or data; ModelError: bands differ.
    """
    from s2lc.calibration import expected_calibration_error
    from s2lc.inference import predict_proba, resolve_device

    loaded, ds = _model_and_data(model_path, data, progress)
    contract = loaded.contract
    idx = np.arange(len(ds)) if split == "all" else ds.split(split)
    prob = predict_proba(loaded.model, ds.images[idx], contract.divisor, batch_size=batch_size,
                         device=resolve_device(device), precision=precision, tta=tta, progress=progress,
                         temperature=contract.temperature)
    report = classification_report(ds.labels[idx], prob.argmax(1), ds.classes)
    report.update({"model": str(model_path), "model_sha256": loaded.sha256, "split": split, "tta": tta,
                   "dataset": str(data), "temperature": contract.temperature,
                   "ece": expected_calibration_error(prob, ds.labels[idx]) if len(idx) else None})
    return report


def _model_and_data(model_path: str, data: str, progress: bool):
    """The checkpoint (batch norm folded, as classify runs it) and the dataset, checked against each other.

    Raises:
        CheckpointError, DatasetError: bad model or data, or images whose bands differ from the model's.
    """
    from s2lc.checkpoint import load_checkpoint
    from s2lc.datasets import load_dataset
    from s2lc.errors import DatasetError

    loaded = load_checkpoint(model_path, fuse=True)
    contract = loaded.contract
    ds = load_dataset(data, classes=contract.classes, progress=progress)
    if list(ds.bands) != list(contract.bands):
        raise DatasetError(f"{data}: images have bands {', '.join(ds.bands)}; the model needs {', '.join(contract.bands)}")
    return loaded, ds


def calibrate(
    model_path: str,
    data: str,
    out: str | None = None,
    overwrite: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Fit a checkpoint's temperature on the validation split of its dataset and write the calibrated copy.

    The split is the one training chose its epoch on (stratified 60/20/20 by SHA-256); the test split
    is scored before and after and chooses nothing. The weights are copied byte for byte
    (:func:`s2lc.checkpoint.rewrite_contract`): only the contract's ``temperature`` and
    ``calibration`` change. The temperature is fitted afresh on the raw logits; "before" is the
    checkpoint as it was (its own temperature, 1.0 if it had none).

    Args:
        model_path: an s2lc checkpoint.
        data: the dataset it was trained on (EuroSAT-style folder or zip).
        out: the calibrated checkpoint; default ``<model>_calibrated.safetensors`` beside ``model_path``.
        overwrite: replace ``out`` if it exists (it may be ``model_path`` itself).
        batch_size, device, precision: as for :func:`s2lc.inference.predict_logits`.

    Returns:
        The ``calibration`` record written into the contract (:func:`s2lc.calibration.fit_calibration`
        plus ``dataset``, ``dataset_sha256`` and ``precision``), with ``model``, ``model_sha256``,
        ``out`` and ``out_sha256``.

    Raises:
        OutputError: ``out`` exists and ``overwrite`` is false (refused before any work), or cannot be written.
        CheckpointError, DatasetError: bad model or data.
    """
    from dataclasses import replace

    import torch

    from s2lc.calibration import fit_calibration
    from s2lc.checkpoint import rewrite_contract
    from s2lc.errors import DatasetError
    from s2lc.files import check_outputs
    from s2lc.inference import predict_logits, resolve_device, resolve_precision

    model_path = str(model_path)
    target = Path(out) if out else Path(model_path).with_name(f"{Path(model_path).stem}_calibrated.safetensors")
    check_outputs([target], overwrite)
    loaded, ds = _model_and_data(model_path, data, progress)
    c = loaded.contract
    trained_on = c.training.get("dataset_sha256")
    if trained_on and ds.sha256 and ds.sha256 != trained_on:
        logger.warning("%s is not the dataset %s was trained on (sha256 %s…, not %s…); its validation split may "
                       "overlap the model's training patches", data, model_path, ds.sha256[:12], trained_on[:12])
    dev = resolve_device(device)
    used = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[resolve_precision(precision, dev)]
    logits, labels = {}, {}
    for name in ("val", "test"):
        idx = ds.split(name)
        if not len(idx):
            raise DatasetError(f"{data}: no {name} patches; a 60/20/20 split needs at least 4 images per class")
        logits[name] = predict_logits(loaded.model, ds.images[idx], c.divisor, batch_size=batch_size, device=dev,
                                      precision=precision, progress=progress)
        labels[name] = ds.labels[idx]
    record = fit_calibration(logits["val"], labels["val"], logits["test"], labels["test"], before=c.temperature)
    record.update({"dataset": Path(str(data)).name, "dataset_sha256": ds.sha256, "precision": used})
    sha = rewrite_contract(model_path, target, replace(c, temperature=record["temperature"], calibration=record),
                           overwrite=overwrite)
    logger.info("temperature %.4f written to %s", record["temperature"], target)
    return {**record, "model": model_path, "model_sha256": loaded.sha256, "out": str(target), "out_sha256": sha}
