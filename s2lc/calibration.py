"""Calibrated class probabilities: temperature scaling, expected calibration error, reliability diagrams.

Pure numpy; arrays in, arrays out.

**Temperature scaling** (Guo et al. 2017, "On Calibration of Modern Neural Networks"): the
probabilities are ``softmax(z / T)`` of the network's logits ``z``, with one temperature ``T > 0``
for all classes, fitted by minimising the mean negative log-likelihood (NLL) of held-out logits.
``T > 1`` softens over-confident probabilities, ``T < 1`` sharpens timid ones; the arg-max, and so
the accuracy, is the same for every ``T``.

**The fit.** With ``b = 1 / T`` the NLL ``mean(logsumexp(b·z_i) − b·z_i,y_i)`` is convex in ``b``
and its derivative ``mean(Σ_k p_ik·z_ik − z_i,y_i)`` rises monotonically, so its one root is found
by bisection on ``log b`` inside the bounds: deterministic, no learning rate, no start value, to
1e-9 in ``log T``. Where the derivative has no root inside the bounds (every validation patch
right by a wide margin pushes ``T`` towards 0), the nearer bound is returned and a warning logged.

**Expected calibration error** (ECE, Naeini et al. 2015; Guo et al. 2017): the patches are put in
:data:`ECE_BINS` (15) equal-width bins of confidence, the probability of the chosen class, bin
``m`` holding ``(m − 1)/M < confidence ≤ m/M`` (a confidence of exactly 0 joins the first bin), and
``ECE = Σ_m (n_m / n) · |accuracy_m − mean confidence_m|``. The same bins give the reliability
diagram (:func:`reliability_bins`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from s2lc.errors import ArgumentError

__all__ = [
    "ECE_BINS",
    "METHOD",
    "TEMPERATURE_BOUNDS",
    "ReliabilityBins",
    "check_temperature",
    "expected_calibration_error",
    "fit_calibration",
    "fit_temperature",
    "negative_log_likelihood",
    "reliability_bins",
    "score_calibration",
    "softmax",
]

logger = logging.getLogger(__name__)

#: Equal-width confidence bins of the expected calibration error and the reliability diagram.
ECE_BINS = 15
#: The temperatures :func:`fit_temperature` searches between.
TEMPERATURE_BOUNDS = (0.05, 20.0)


def _check_logits(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != (z.shape[0],) or z.shape[1] < 2:
        raise ArgumentError(f"need (n, classes ≥ 2) scores and (n,) labels, got {z.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= z.shape[1])):
        raise ArgumentError(f"labels must be class indices 0..{z.shape[1] - 1}")
    if not np.isfinite(z).all():
        raise ArgumentError("scores hold NaN or infinite values")
    return z, y.astype(np.int64)


def check_temperature(temperature: float) -> float:
    """``temperature`` as a float, checked.

    Raises:
        ArgumentError: not a finite number above 0.
    """
    try:
        if isinstance(temperature, (bool, str)):
            raise TypeError
        t = float(temperature)
    except (TypeError, ValueError):
        raise ArgumentError(f"temperature must be a finite number above 0, got {temperature!r}") from None
    if not (math.isfinite(t) and t > 0):
        raise ArgumentError(f"temperature must be a finite number above 0, got {temperature}")
    return t


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` along the last axis.

    Args:
        logits: (..., classes) float.
        temperature: T > 0.

    Returns:
        (..., classes) float64 probabilities.

    Raises:
        ArgumentError: T not a finite number above 0.
    """
    s = np.asarray(logits, dtype=np.float64) / check_temperature(temperature)
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (natural log) of ``labels`` under ``softmax(logits / T)``.

    Args:
        logits: (n, classes) float; labels: (n,) int class indices; temperature: T > 0.

    Raises:
        ArgumentError: shapes, labels or T out of range.
    """
    z, y = _check_logits(logits, labels)
    if not len(y):
        return float("nan")
    s = z / check_temperature(temperature)
    top = s.max(axis=1)
    lse = top + np.log(np.exp(s - top[:, None]).sum(axis=1))
    return float(np.mean(lse - s[np.arange(len(y)), y]))


def _slope(z: np.ndarray, y: np.ndarray, log_b: float) -> float:
    """d NLL / d b at b = exp(log_b): mean over patches of E_p[z] − z_y (rises with b)."""
    p = softmax(z * math.exp(log_b))
    return float(np.mean((p * z).sum(axis=1) - z[np.arange(len(y)), y]))


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS
) -> float:
    """The temperature T that minimises the NLL of ``labels`` under ``softmax(logits / T)``.

    Args:
        logits: (n, classes) float, the network's raw outputs on held-out patches (not probabilities).
        labels: (n,) int class indices.
        bounds: (lowest, highest) T searched.

    Returns:
        T within ``bounds`` (a bound when the minimum lies beyond it; a warning says so).

    Raises:
        ArgumentError: no patches, shapes or labels out of range, bounds not 0 < low < high.
    """
    z, y = _check_logits(logits, labels)
    if not len(y):
        raise ArgumentError("no patches to fit a temperature on")
    low, high = (check_temperature(b) for b in bounds)
    if not low < high:
        raise ArgumentError(f"temperature bounds must rise, got {bounds}")
    lo, hi = -math.log(high), -math.log(low)  # log b, b = 1 / T
    if _slope(z, y, lo) >= 0:
        logger.warning("the NLL is lowest at a temperature above %g; using %g", high, high)
        return high
    if _slope(z, y, hi) <= 0:
        logger.warning("the NLL is lowest at a temperature below %g (every patch right by a wide margin); using %g",
                       low, low)
        return low
    while hi - lo > 1e-9:
        mid = 0.5 * (lo + hi)
        if _slope(z, y, mid) < 0:
            lo = mid
        else:
            hi = mid
    return float(math.exp(-0.5 * (lo + hi)))


@dataclass(frozen=True)
class ReliabilityBins:
    """A reliability diagram's data: per confidence bin, what the model said and how often it was right.

    Attributes:
        edges: (bins + 1,) float64 bin edges, 0 to 1.
        confidence: (bins,) float64 mean confidence of the patches in each bin (NaN where empty).
        accuracy: (bins,) float64 share of them whose chosen class is right (NaN where empty).
        count: (bins,) int64 patches in each bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap between accuracy and confidence."""
        n = int(self.count.sum())
        full = self.count > 0
        if not n:
            return float("nan")
        return float(np.sum(self.count[full] * np.abs(self.accuracy[full] - self.confidence[full])) / n)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready lists (None for empty bins)."""

        def listed(a: np.ndarray) -> list:
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {"edges": self.edges.tolist(), "confidence": listed(self.confidence), "accuracy": listed(self.accuracy),
                "count": self.count.tolist()}


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> ReliabilityBins:
    """Bin patches by confidence (the probability of the chosen class) into ``n_bins`` equal-width bins.

    Args:
        probs: (n, classes) float probabilities (rows summing to 1).
        labels: (n,) int class indices.
        n_bins: bins between 0 and 1; bin m holds (m − 1)/n_bins < confidence ≤ m/n_bins.

    Returns:
        The bins' edges, mean confidence, accuracy and count.

    Raises:
        ArgumentError: shapes or labels out of range, n_bins < 1.
    """
    p, y = _check_logits(probs, labels)
    if n_bins < 1:
        raise ArgumentError(f"n_bins must be at least 1, got {n_bins}")
    confidence = p.max(axis=1)
    right = (p.argmax(axis=1) == y).astype(np.float64)
    idx = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(idx, weights=right, minlength=n_bins) / count
    return ReliabilityBins(np.linspace(0.0, 1.0, n_bins + 1), mean_conf, accuracy, count.astype(np.int64))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE of ``probs`` over ``n_bins`` equal-width confidence bins (see the module's docstring).

    Args:
        probs: (n, classes) float probabilities; labels: (n,) int class indices.

    Returns:
        ECE in [0, 1] (NaN for no patches).

    Raises:
        ArgumentError: shapes or labels out of range.
    """
    return reliability_bins(probs, labels, n_bins).ece


def score_calibration(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0,
                      n_bins: int = ECE_BINS) -> dict[str, float]:
    """Accuracy, NLL and ECE of ``softmax(logits / temperature)``.

    Args:
        logits: (n, classes) float; labels: (n,) int class indices; temperature: T > 0.

    Returns:
        ``{"n", "accuracy", "nll", "ece"}``.

    Raises:
        ArgumentError: shapes, labels or T out of range.
    """
    z, y = _check_logits(logits, labels)
    p = softmax(z, temperature)
    return {"n": int(len(y)), "accuracy": float(np.mean(p.argmax(axis=1) == y)) if len(y) else float("nan"),
            "nll": negative_log_likelihood(z, y, temperature), "ece": expected_calibration_error(p, y, n_bins)}


#: How :func:`fit_calibration` fits, as its record says.
METHOD = "temperature scaling (Guo et al. 2017): the T > 0 that minimises the NLL of the validation split's logits"


def fit_calibration(val_logits: np.ndarray, val_labels: np.ndarray, test_logits: np.ndarray | None = None,
                    test_labels: np.ndarray | None = None, before: float = 1.0) -> dict[str, Any]:
    """Fit a temperature on validation logits and score it against ``before``: the record that a
    checkpoint's ``calibration`` and a training run's ``metrics.json`` hold.

    Args:
        val_logits: (n, classes) float logits of the validation split; val_labels: (n,) int.
        test_logits, test_labels: the test split's, scored too (it chooses nothing); None to skip.
        before: the temperature the model had (1.0: none).

    Returns:
        ``{"method", "split": "val", "temperature", "temperature_before", "ece_bins", "val", "test"}``,
        ``val`` and ``test`` each ``{"before": …, "after": …}`` of :func:`score_calibration`
        (``test`` only when given).

    Raises:
        ArgumentError: as :func:`fit_temperature`.
    """
    t = fit_temperature(val_logits, val_labels)
    record: dict[str, Any] = {"method": METHOD, "split": "val", "temperature": t, "temperature_before": float(before),
                              "ece_bins": ECE_BINS}
    splits = {"val": (val_logits, val_labels)}
    if test_logits is not None and test_labels is not None:
        splits["test"] = (test_logits, test_labels)
    for name, (z, y) in splits.items():
        record[name] = {"before": score_calibration(z, y, before), "after": score_calibration(z, y, t)}
    return record
