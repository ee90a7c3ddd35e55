"""The statistics of a band evaluation: folds, confidence intervals and paired comparisons.

- :func:`stratified_folds`: K folds, each class dealt evenly over them, independent of file order.
- :func:`wilson_interval`: Wilson's score interval for a binomial proportion (accuracy).
- :func:`bootstrap_macro_f1`: a percentile bootstrap interval of the macro F1 over patches.
- :func:`mcnemar_exact`: the exact (binomial) McNemar test of two classifiers scored on the same
  patches, for differences that two overlapping intervals do not settle.

Pure numpy; arrays in, numbers out.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from s2lc.errors import ArgumentError, DatasetError

__all__ = ["Z95", "bootstrap_macro_f1", "macro_f1", "mcnemar_exact", "stratified_folds", "wilson_interval"]

#: Two-sided 95 % normal quantile.
Z95 = 1.959963984540054


def stratified_folds(files: Sequence[str], labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The fold (0 … k−1) of every patch: each class dealt round-robin over the folds in a seeded
    shuffle of its patches, ordered first by file name so the result does not depend on listing order.

    Returns:
        (n,) int64 fold numbers; fold sizes within a class differ by at most one.

    Raises:
        DatasetError: ``k`` below 2, or more folds than the smallest class has patches.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    present = counts[counts > 0]
    if k < 2 or k > present.min():
        raise DatasetError(f"{k} folds need at least {k} patches in every class, and the smallest class has "
                           f"{int(present.min())}; use between 2 and {int(present.min())} folds, or more patches")
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    for cls in np.flatnonzero(counts):
        members = np.array(sorted(np.flatnonzero(labels == cls), key=lambda i: files[i]))
        folds[rng.permutation(members)] = np.arange(len(members)) % k
    return folds


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (95 % by default).

    Raises:
        ArgumentError: n < 1 or successes outside 0 … n.
    """
    if n < 1 or not 0 <= successes <= n:
        raise ArgumentError(f"wilson_interval needs 0 <= successes <= n and n >= 1, got {successes} of {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, not 1 - 1e-16
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def macro_f1(cm: np.ndarray) -> np.ndarray:
    """Macro F1 of (..., k, k) confusion matrices (rows true, columns predicted), as
    :func:`s2lc.evaluation.classification_report` counts it: F1 = 2·tp / (true + predicted)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0).mean(axis=-1)


def bootstrap_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, resamples: int = 2000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the macro F1, resampling patches with replacement.

    Args:
        y_true, y_pred: (n,) class indices.
        resamples: bootstrap draws; seed: their generator's seed.

    Returns:
        (low, high) at ``level``.
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    rng = np.random.default_rng(seed)
    cell = y_true * n_classes + y_pred
    scores = np.empty(resamples)
    for start in range(0, resamples, 250):  # 250 confusion matrices at a time
        b = min(250, resamples - start)
        pick = cell[rng.integers(0, len(cell), size=(b, len(cell)))]
        flat = pick + (np.arange(b) * n_classes * n_classes)[:, None]
        cm = np.bincount(flat.ravel(), minlength=b * n_classes * n_classes).reshape(b, n_classes, n_classes)
        scores[start : start + b] = macro_f1(cm)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return float(low), float(high)


# --------------------------------------------------------------------------------------------


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided p-value of the exact McNemar test: of the patches exactly one of two classifiers
    gets right, ``only_a`` go to the first and ``only_b`` to the second; under "equally accurate"
    each such patch is a fair coin. 1.0 when they disagree on none.
    """
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
