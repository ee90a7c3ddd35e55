"""Training figures: curves, confusion matrix, sample predictions (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["plot_confusion", "plot_curves", "plot_samples"]


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.subplots(*args, **kwargs)


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation (and the degraded validation copy of a
    run that blurs or hazes its patches)."""
    plt, (fig, (ax_loss, ax_acc)) = _figure(1, 2, figsize=(11, 4))
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    degraded = all("val_degraded_acc" in h for h in history)
    if degraded:
        ax_loss.plot(epochs, [h["val_degraded_loss"] for h in history], label="validation, degraded")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], label="train")
    ax_acc.plot(epochs, [100 * h["val_acc"] for h in history], label="validation")
    if degraded:
        ax_acc.plot(epochs, [100 * h["val_degraded_acc"] for h in history], label="validation, degraded")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: Path, title: str = "Confusion matrix") -> None:
    """Row-normalised confusion matrix with counts."""
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    plt, (fig, ax) = _figure(figsize=(8.5, 7.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_samples(
    images: np.ndarray, true: np.ndarray, pred: np.ndarray, classes: Sequence[str], path: Path, n: int = 24
) -> None:
    """A grid of patches titled ``predicted (true)``, mistakes in red. ``images``: (n, 3, h, w) uint8."""
    n = min(n, len(images))
    cols = 6
    rows = max(1, (n + cols - 1) // cols)
    plt, (fig, axes) = _figure(rows, cols, figsize=(2.1 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes.ravel()[i]
        img = images[i][:3].transpose(1, 2, 0)
        if img.dtype != np.uint8:
            img = np.clip(img / max(float(np.percentile(img, 99)), 1.0), 0, 1)
        ax.imshow(img)
        ok = pred[i] == true[i]
        ax.set_title(f"{classes[pred[i]]}" + ("" if ok else f"\n(true {classes[true[i]]})"),
                     fontsize=7, color="black" if ok else "red")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
