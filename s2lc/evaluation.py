"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["classification_report", "confusion_matrix", "evaluate"]


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
        :func:`classification_report` plus ``model``, ``model_sha256``, ``split`` and ``tta``.

    Raises:
        CheckpointError, DatasetError: bad model or data; ModelError: bands differ.
    """
    from s2lc.checkpoint import load_checkpoint
    from s2lc.datasets import load_dataset
    from s2lc.errors import DatasetError
    from s2lc.inference import predict_proba, resolve_device

    loaded = load_checkpoint(model_path, fuse=True)
    contract = loaded.contract
    ds = load_dataset(data, classes=contract.classes, progress=progress)
    if list(ds.bands) != list(contract.bands):
        raise DatasetError(f"{data}: images have bands {', '.join(ds.bands)}; the model needs {', '.join(contract.bands)}")
    idx = np.arange(len(ds)) if split == "all" else ds.split(split)
    prob = predict_proba(loaded.model, ds.images[idx], contract.divisor, batch_size=batch_size,
                         device=resolve_device(device), precision=precision, tta=tta, progress=progress)
    report = classification_report(ds.labels[idx], prob.argmax(1), ds.classes)
    report.update({"model": str(model_path), "model_sha256": loaded.sha256, "split": split, "tta": tta,
                   "dataset": str(data)})
    return report
