"""Accuracy and area by good practice: stratified random sampling and its estimators.

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014),
"Good practices for estimating area and assessing accuracy of land change", Remote Sensing of
Environment 148, 42–57 (equations 4–11; also Card 1982, Olofsson et al. 2013).

**Design.** The strata are the map's classes (the codes of a change map). Stratum ``i`` holds
``N_i`` pixels, so its weight is ``W_i = N_i / N``; ``n_i`` points are drawn from it at random,
without replacement (:func:`allocate` chooses the ``n_i``, :func:`draw_ranks` and
:func:`locate_ranks` the pixels, a strip of rows at a time).

**Estimation** (:func:`estimate`), with ``n_ij`` the points of stratum (map class) ``i`` whose
reference class is ``j``:

* error matrix in area proportions ``p_ij = W_i n_ij / n_i``;
* area proportion of class ``k`` ``p_k = Σ_i p_ik``, standard error
  ``sqrt(Σ_i W_i² (n_ik/n_i)(1 − n_ik/n_i) / (n_i − 1))``, area ``p_k × A`` (A: the pixels of
  the strata × pixel area);
* overall accuracy ``Σ_k p_kk``, SE ``sqrt(Σ_i W_i² U_i (1 − U_i) / (n_i − 1))``;
* user's accuracy ``U_i = n_ii / n_i``, SE ``sqrt(U_i (1 − U_i) / (n_i − 1))``;
* producer's accuracy ``P_j = p_jj / p_j``, variance by equation 7 of the paper;
* 95 % confidence intervals as ± 1.96 SE (:data:`Z95`).

A stratum whose every pixel was sampled (a census, ``n_i = N_i``) adds no sampling variance;
any other stratum needs at least two points (the variance divides by ``n_i − 1``).

Pure numpy; arrays in, arrays out. Reading maps and writing samples is :mod:`s2lc.sampling`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from s2lc.errors import ArgumentError

__all__ = [
    "ALLOCATIONS",
    "ANTICIPATED_CHANGE",
    "ANTICIPATED_STABLE",
    "MIN_PER_STRATUM",
    "Z95",
    "Estimates",
    "allocate",
    "draw_ranks",
    "error_matrix",
    "estimate",
    "locate_ranks",
]

#: The normal quantile of a two-sided 95 % interval, as Olofsson et al. (2014) round it.
Z95 = 1.96
#: Points per stratum that :func:`allocate` gives at least (or every pixel of a smaller stratum):
#: Olofsson et al. (2014, section 5.1.4) suggest 50 to 100 for a rare class.
MIN_PER_STRATUM = 50
#: Anticipated user's accuracy of a stable class (a land-cover class, "Unchanged"), for Neyman allocation.
ANTICIPATED_STABLE = 0.9
#: Anticipated user's accuracy of a change class (a transition), for Neyman allocation.
ANTICIPATED_CHANGE = 0.7


# --------------------------------------------------------------------------------------------
# Sampling design


def _weights_proportional(pixels: np.ndarray, anticipated: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float64)


def _weights_equal(pixels: np.ndarray, anticipated: np.ndarray) -> np.ndarray:
    return np.ones(len(pixels))


def _weights_neyman(pixels: np.ndarray, anticipated: np.ndarray) -> np.ndarray:
    # n_i ∝ N_i S_i with S_i = sqrt(U_i (1 − U_i)): the allocation that minimises the variance of
    # the overall accuracy for the anticipated user's accuracies U_i.
    return pixels * np.sqrt(anticipated * (1 - anticipated))


#: How :func:`allocate` shares the points among strata: name → weights(pixels, anticipated).
ALLOCATIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "proportional": _weights_proportional,
    "equal": _weights_equal,
    "neyman": _weights_neyman,
}


def allocate(pixels: np.ndarray, n: int, method: str = "proportional", *,
             anticipated: np.ndarray | None = None, minimum: int = MIN_PER_STRATUM) -> np.ndarray:
    """Share ``n`` sample points among strata.

    Each stratum gets its share of ``n`` by the method's weights — its pixels (proportional),
    one (equal), or ``N_i sqrt(U_i (1 − U_i))`` (Neyman, ``U_i`` the anticipated user's
    accuracy) — kept between ``min(minimum, N_i)`` and ``N_i``: the exact box-constrained
    shares (``clip(λ w_i, low_i, N_i)`` summing to ``n``), rounded by largest remainder.

    Args:
        pixels: (q,) int pixels per stratum, each > 0.
        n: points in all.
        method: a key of :data:`ALLOCATIONS`.
        anticipated: (q,) float anticipated user's accuracies in (0, 1); needed for Neyman.
        minimum: points a stratum gets at least (a smaller stratum gets all its pixels).

    Returns:
        (q,) int64 points per stratum, summing to ``n``.

    Raises:
        ArgumentError: an unknown method; ``n`` below the minimums' sum or above the pixels';
            anticipated accuracies missing or outside (0, 1) for Neyman.
    """
    pixels = np.asarray(pixels, np.int64)
    if method not in ALLOCATIONS:
        raise ArgumentError(f"allocation must be one of {', '.join(ALLOCATIONS)}, got {method!r}")
    if pixels.ndim != 1 or not len(pixels) or (pixels <= 0).any():
        raise ArgumentError(f"pixels must be a (q,) array of positive counts, got {pixels!r}")
    if anticipated is None:
        if method == "neyman":
            raise ArgumentError("Neyman allocation needs the anticipated user's accuracy of each stratum")
        anticipated = np.full(len(pixels), ANTICIPATED_STABLE)
    anticipated = np.asarray(anticipated, np.float64)
    if anticipated.shape != pixels.shape or not ((anticipated > 0) & (anticipated < 1)).all():
        raise ArgumentError(f"anticipated user's accuracies must be {len(pixels)} values in (0, 1), got {anticipated!r}")
    low, high = np.minimum(minimum, pixels), pixels
    if n > high.sum():
        raise ArgumentError(f"n={n} is more than the {int(high.sum())} pixels of the strata; ask for fewer points")
    if n < low.sum():
        raise ArgumentError(f"n={n} cannot give each of the {len(pixels)} strata its minimum of {minimum} points "
                            f"(or all its pixels): that needs {int(low.sum())}; raise n or lower the minimum")
    w = ALLOCATIONS[method](pixels, anticipated)

    def total(lam: float) -> float:
        return float(np.clip(lam * w, low, high).sum())

    lo, hi = 0.0, 1.0
    while total(hi) < n:
        hi *= 2
    for _ in range(200):  # bisection on λ: the sum is continuous and non-decreasing in λ
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) < n else (lo, mid)
    share = np.clip(hi * w, low, high)
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")
    for i in order:  # largest remainder, within the bounds
        if counts.sum() >= n:
            break
        if counts[i] < high[i]:
            counts[i] += 1
    for i in np.argsort(-counts, kind="stable"):  # rounding may overshoot by a point or two
        while counts.sum() > n and counts[i] > low[i]:
            counts[i] -= 1
    return counts


def draw_ranks(pixels: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Which pixels of each stratum to sample, as ranks in scan order (row by row).

    Args:
        pixels: (q,) int pixels per stratum.
        counts: (q,) int points per stratum, each at most its pixels.
        rng: the seeded generator.

    Returns:
        q sorted int64 arrays: the ranks (0-based) of the chosen pixels among the stratum's
        pixels, drawn without replacement.
    """
    return [np.sort(rng.choice(int(N), size=int(k), replace=False)).astype(np.int64)
            for N, k in zip(np.asarray(pixels), np.asarray(counts))]


def locate_ranks(strip: np.ndarray, codes: np.ndarray, seen: np.ndarray, ranks: list[np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chosen pixels that fall in one strip of rows.

    Call it for each strip in order, with ``seen`` updated in place: pixel ranks count in scan
    order across strips.

    Args:
        strip: (rows, w) uint8 codes of the strip.
        codes: (q,) the stratum codes, in the order of ``ranks``.
        seen: (q,) int64 pixels of each stratum in the strips before this one; updated.
        ranks: as :func:`draw_ranks` returns.

    Returns:
        ``(rows, cols, stratum)``: int64 arrays, one entry per chosen pixel in the strip; rows
        count from the strip's first row, ``stratum`` indexes ``codes``.
    """
    flat = strip.ravel()
    here = np.bincount(flat, minlength=256)[np.asarray(codes)]
    out_idx, out_stratum = [], []
    for s, r in enumerate(ranks):
        a, b = np.searchsorted(r, [seen[s], seen[s] + here[s]])
        if b > a:
            positions = np.flatnonzero(flat == codes[s])
            out_idx.append(positions[r[a:b] - seen[s]])
            out_stratum.append(np.full(b - a, s, np.int64))
    seen += here
    idx = np.concatenate(out_idx) if out_idx else np.zeros(0, np.int64)
    stratum = np.concatenate(out_stratum) if out_stratum else np.zeros(0, np.int64)
    return idx // strip.shape[1], idx % strip.shape[1], stratum


# --------------------------------------------------------------------------------------------
# Estimation


def error_matrix(map_codes: np.ndarray, reference: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Sample counts: (q, q) int64, rows the map class (stratum), columns the reference class,
    both in the order of ``codes``.

    Raises:
        ArgumentError: a map or reference code not in ``codes``; arrays of different lengths.
    """
    map_codes, reference, codes = (np.asarray(a, np.int64).ravel() for a in (map_codes, reference, codes))
    if map_codes.shape != reference.shape:
        raise ArgumentError(f"{len(map_codes)} map codes but {len(reference)} reference codes")
    missing = sorted(set(np.concatenate([map_codes, reference]).tolist()) - set(codes.tolist()))
    if missing:
        raise ArgumentError(f"codes {missing} are not among the classes {codes.tolist()}")
    index = {c: i for i, c in enumerate(codes.tolist())}
    rows = np.array([index[c] for c in map_codes.tolist()], np.int64)
    cols = np.array([index[c] for c in reference.tolist()], np.int64)
    q = len(codes)
    return np.bincount(rows * q + cols, minlength=q * q).reshape(q, q)


@dataclass(frozen=True, eq=False)
class Estimates:
    """The stratified estimates of :func:`estimate`; ``q`` classes, rows the map class
    (stratum), columns the reference class. Values that do not exist (the user's accuracy of a
    class that is not a stratum, the producer's accuracy of a class never found in the
    reference) are NaN."""

    counts: np.ndarray  #: (q, q) int64 sample counts
    pixels: np.ndarray  #: (q,) int64 mapped pixels per class (0 for a class that is not a stratum)
    pixel_area_m2: float
    proportions: np.ndarray  #: (q, q) float64 error matrix in area proportions p_ij
    area_proportion: np.ndarray  #: (q,) p_·k, the estimated share of the area in class k
    area_proportion_se: np.ndarray  #: (q,)
    overall: float  #: overall accuracy
    overall_se: float
    users: np.ndarray  #: (q,) user's accuracy U_i
    users_se: np.ndarray
    producers: np.ndarray  #: (q,) producer's accuracy P_j
    producers_se: np.ndarray
    z: float = Z95  #: the normal quantile of the confidence intervals

    @property
    def total_area_ha(self) -> float:
        """The area of the strata: all their pixels × the pixel area, in hectares."""
        return float(self.pixels.sum()) * self.pixel_area_m2 / 10_000

    @property
    def mapped_area_ha(self) -> np.ndarray:
        """(q,) the area each class has on the map (pixel counts × pixel area), hectares."""
        return self.pixels * self.pixel_area_m2 / 10_000

    @property
    def area_ha(self) -> np.ndarray:
        """(q,) the error-adjusted area of each class, hectares."""
        return self.area_proportion * self.total_area_ha

    @property
    def area_ha_se(self) -> np.ndarray:
        return self.area_proportion_se * self.total_area_ha

    def ci(self, se: np.ndarray | float) -> np.ndarray | float:
        """The half-width of the confidence interval for a standard error: ``z × se``."""
        return self.z * se


def _variance_factors(n: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """1 / (n_i − 1) per stratum, 0 for a census (n_i = N_i) or a class that is not a stratum."""
    with np.errstate(divide="ignore"):
        f = 1.0 / (n - 1.0)
    return np.where((n >= pixels) | (pixels == 0), 0.0, f)


def estimate(counts: np.ndarray, pixels: np.ndarray, pixel_area_m2: float, *, z: float = Z95) -> Estimates:
    """Stratified estimates of accuracy and area (Olofsson et al. 2014, equations 4–11).

    Args:
        counts: (q, q) int sample counts, rows the map class (stratum), columns the reference
            class, one class order for both (:func:`error_matrix`).
        pixels: (q,) int mapped pixels per class; 0 for a class found only in the reference.
        pixel_area_m2: the area of one pixel.
        z: the normal quantile of the confidence intervals (1.96: 95 %).

    Returns:
        The :class:`Estimates`.

    Raises:
        ArgumentError: shapes that do not match; a stratum (pixels > 0) with fewer than 2 points
            that is not a census; points in a class that has no pixels; more points than pixels.
    """
    n_ij = np.asarray(counts, np.float64)
    N = np.asarray(pixels, np.float64)
    q = len(N)
    if n_ij.shape != (q, q) or N.ndim != 1:
        raise ArgumentError(f"counts must be (q, q) and pixels (q,), got {n_ij.shape} and {N.shape}")
    n = n_ij.sum(axis=1)
    bad = [i for i in range(q) if (N[i] == 0 and n[i] > 0) or n[i] > N[i] or (N[i] > 0 and n[i] < min(2, N[i]))]
    if bad:
        i = bad[0]
        raise ArgumentError(f"row {i} has {int(n[i])} points for {int(N[i])} pixels: a stratum needs at least 2 "
                            "points (or all its pixels), and a class without pixels none")
    W = N / N.sum()
    f = _variance_factors(n, N)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n[:, None] > 0, n_ij / n[:, None], 0.0)  # n_ij / n_i
        p = W[:, None] * share
        p_k = p.sum(axis=0)
        p_k_se = np.sqrt((W[:, None] ** 2 * share * (1 - share) * f[:, None]).sum(axis=0))
        U = np.where(n > 0, np.diag(share), np.nan)
        U_se = np.sqrt(np.where(n > 0, U * (1 - U) * f, np.nan))
        overall = float(np.trace(p))
        overall_se = float(np.sqrt(np.nansum(W ** 2 * U * (1 - U) * f)))
        P = np.where(p_k > 0, np.diag(p) / p_k, np.nan)
        P_se = np.sqrt(_producers_variance(share, N, f, np.nan_to_num(U), P))
    return Estimates(np.asarray(counts, np.int64), np.asarray(pixels, np.int64), float(pixel_area_m2), p, p_k, p_k_se,
                     overall, overall_se, U, U_se, P, P_se, z)


def _producers_variance(share: np.ndarray, N: np.ndarray, f: np.ndarray, U: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Equation 7 of Olofsson et al. (2014): the variance of each producer's accuracy P_j,

    V(P_j) = [N_j² (1 − P_j)² U_j (1 − U_j) / (n_j − 1)
              + P_j² Σ_{i≠j} N_i² (n_ij/n_i)(1 − n_ij/n_i) / (n_i − 1)] / N̂_j²,

    with N̂_j = Σ_i N_i n_ij / n_i the estimated pixels of reference class j; NaN where P_j is."""
    N_hat = (N[:, None] * share).sum(axis=0)
    first = N ** 2 * (1 - P) ** 2 * U * (1 - U) * f
    terms = N[:, None] ** 2 * share * (1 - share) * f[:, None]
    others = terms.sum(axis=0) - np.diag(terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (first + P ** 2 * others) / N_hat ** 2
