"""Which mapped changes to trust: confidence gating and spectral evidence (pure numpy).

Post-classification change inherits the errors of both maps: where either date's class is a
guess, a "transition" is often the same ground labelled twice differently. Two tests sort the
transitions of a comparison (:func:`s2lc.change.core.compare_arrays`):

* **Confidence.** A transition is reported as change only where both dates' calibrated
  probability of the class given (their ``<id>_confidence.tif``) reaches ``min_confidence``;
  below, it is :data:`UNCERTAIN`.
* **Spectral evidence**, when the scenes themselves are at hand. The bands of the second date
  are matched to the first's, band by band (mean and standard deviation over the pixels with
  land cover at both dates: a linear radiometric normalisation), and each cell's change
  magnitude is the root mean square, over the bands, of the difference of the cell means in
  units of the first date's between-cell standard deviation (:func:`change_magnitude`). A
  confident transition whose cell did not change spectrally (magnitude below
  ``min_magnitude``) is a likely classification :data:`FLIP`; a cell that changed spectrally
  without a class transition is :data:`SPECTRAL`.

Status codes share the change raster's code space (:mod:`s2lc.change.core`): transitions run
from 3 to 242 at most, so 253–255 are free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from s2lc.change.core import FIRST_TRANSITION, UNCHANGED
from s2lc.errors import ArgumentError
from s2lc.legend import LandCoverClass

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_MIN_MAGNITUDE",
    "FLIP",
    "SPECTRAL",
    "UNCERTAIN",
    "CellStatistics",
    "Evidence",
    "change_magnitude",
    "judge",
    "status_classes",
]

#: Change raster: no class transition, but the cell changed spectrally.
SPECTRAL = 253
#: Change raster: a confident class transition without spectral change: likely a classification flip.
FLIP = 254
#: Change raster: a class transition where either date's confidence is below the threshold.
UNCERTAIN = 255
#: Default of ``min_confidence`` (calibrated probability of the class at both dates), chosen on
#: the OSCD development pairs (docs/change.md).
DEFAULT_MIN_CONFIDENCE = 0.7
#: Default of ``min_magnitude`` (standard deviations, :func:`change_magnitude`), chosen likewise.
DEFAULT_MIN_MAGNITUDE = 0.5

_STATUS_CLASSES = {
    SPECTRAL: LandCoverClass(SPECTRAL, "SpectralChange", "Spectral change, same class", (255, 200, 0)),
    FLIP: LandCoverClass(FLIP, "LikelyFlip", "Likely classification flip (no spectral change)", (200, 160, 220)),
    UNCERTAIN: LandCoverClass(UNCERTAIN, "Uncertain", "Uncertain change (low confidence)", (150, 150, 150)),
}


def status_classes(codes: set[int] | None = None) -> tuple[LandCoverClass, ...]:
    """Legend entries of the status codes (all, or those in ``codes``)."""
    return tuple(c for k, c in sorted(_STATUS_CLASSES.items()) if codes is None or k in codes)


@dataclass(frozen=True)
class Evidence:
    """What the change raster's judgement used.

    Attributes:
        min_confidence: the threshold on both dates' confidence; None: not gated (no confidence).
        min_magnitude: the threshold on the spectral change magnitude; None: no spectral evidence.
        magnitude: (H, W) float32 change magnitude per cell (:func:`change_magnitude`), NaN where
            not measured; or None.
        cell: the cells' size in pixels.
    """

    min_confidence: float | None
    min_magnitude: float | None = None
    magnitude: np.ndarray | None = None
    cell: int = 1

    def magnitude_pixels(self, shape: tuple[int, int]) -> np.ndarray | None:
        """The magnitude expanded to the (h, w) pixel grid, or None."""
        if self.magnitude is None:
            return None
        h, w = shape
        return self.magnitude[np.arange(h)[:, None] // self.cell, np.arange(w)[None, :] // self.cell]

    def to_dict(self) -> dict[str, float | None]:
        return {"min_confidence": self.min_confidence, "min_magnitude": self.min_magnitude}


def judge(codes: np.ndarray, evidence: Evidence, confidence: tuple[np.ndarray | None, np.ndarray | None]) -> np.ndarray:
    """The reported change raster: ``codes`` with the transitions and stable pixels judged.

    Args:
        codes: (h, w) uint8 change codes as mapped (:func:`s2lc.change.core.compare_arrays`).
        evidence: thresholds and the magnitude.
        confidence: the two dates' (h, w) float32 confidence (NaN where no class), or None each.

    Returns:
        (h, w) uint8: transitions become :data:`UNCERTAIN` where either date's confidence is
        below ``min_confidence`` (a date without confidence counts as below), else :data:`FLIP`
        where the magnitude is below ``min_magnitude``; unchanged pixels whose magnitude reaches
        it become :data:`SPECTRAL`. Everything else is as mapped.
    """
    out = codes.copy()
    transition = codes >= FIRST_TRANSITION
    if evidence.min_magnitude is not None and evidence.magnitude is not None:
        cells = evidence.magnitude >= evidence.min_magnitude  # NaN compares False
        h, w = codes.shape
        moved = cells[np.arange(h)[:, None] // evidence.cell, np.arange(w)[None, :] // evidence.cell]
        out[transition & ~moved] = FLIP
        out[(codes == UNCHANGED) & moved] = SPECTRAL
    if evidence.min_confidence is not None:
        sure = np.ones(codes.shape, bool)
        for conf in confidence:
            if conf is None:
                sure[:] = False
            else:
                sure &= np.nan_to_num(conf, nan=0.0) >= evidence.min_confidence
        out[transition & ~sure] = UNCERTAIN
    return out


class CellStatistics:
    """Per-cell sums of two dates' bands over the pixels valid at both, added strip by strip so a
    whole tile never sits in memory; :meth:`magnitude` turns them into :func:`change_magnitude`.

    Args:
        n_bands: bands per date.
        shape: (H, W) cells.
        cell: the cell size in pixels.
    """

    def __init__(self, n_bands: int, shape: tuple[int, int], cell: int) -> None:
        if cell < 1:
            raise ArgumentError(f"cell must be at least 1 pixel, got {cell}")
        self.cell = cell
        self.count = np.zeros((n_bands, *shape), np.float64)
        self.sums = {k: np.zeros((n_bands, *shape), np.float64) for k in ("a", "b", "aa", "bb")}

    def add(self, first_row: int, before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> None:
        """Add a strip: (bands, h, w) of each date starting at pixel row ``first_row`` (a multiple
        of the cell size), and its (h, w) validity."""
        if first_row % self.cell:
            raise ArgumentError(f"strips start on cell rows; row {first_row} is not a multiple of {self.cell}")
        c, (h, w) = self.cell, valid.shape
        rows, cols = -(-h // c), -(-w // c)
        r0 = first_row // c
        for i, (a, b) in enumerate(zip(before, after)):
            ok = valid & np.isfinite(a) & np.isfinite(b)
            a = np.where(ok, a, 0.0)
            b = np.where(ok, b, 0.0)
            for key, values in (("a", a), ("b", b), ("aa", a * a), ("bb", b * b)):
                self.sums[key][i, r0 : r0 + rows, :cols] += _block_sums(values, c)
            self.count[i, r0 : r0 + rows, :cols] += _block_sums(ok.astype(np.float64), c)

    def magnitude(self) -> np.ndarray:
        """(H, W) float32 :func:`change_magnitude` of what was added."""
        squares = np.zeros(self.count.shape[1:], np.float64)
        for i in range(len(self.count)):
            n = self.count[i]
            total = n.sum()
            if total < 2:
                return np.full(squares.shape, np.nan, np.float32)
            mean_a, mean_b = self.sums["a"][i].sum() / total, self.sums["b"][i].sum() / total
            std_a = np.sqrt(max(self.sums["aa"][i].sum() / total - mean_a**2, 0.0))
            std_b = np.sqrt(max(self.sums["bb"][i].sum() / total - mean_b**2, 0.0))
            gain = std_a / std_b if std_b > 0 else 1.0
            with np.errstate(invalid="ignore", divide="ignore"):
                ma = np.where(n > 0, self.sums["a"][i] / n, np.nan)
                mb = (np.where(n > 0, self.sums["b"][i] / n, np.nan) - mean_b) * gain + mean_a
            spread = np.nanstd(ma)
            squares += ((mb - ma) / spread) ** 2 if spread > 0 else np.nan
        return np.sqrt(squares / len(self.count)).astype(np.float32)


def _block_sums(values: np.ndarray, cell: int) -> np.ndarray:
    """(ceil(h / cell), ceil(w / cell)) sums of ``cell`` × ``cell`` blocks."""
    h, w = values.shape
    rows, cols = -(-h // cell), -(-w // cell)
    padded = np.zeros((rows * cell, cols * cell), np.float64)
    padded[:h, :w] = values
    return padded.reshape(rows, cell, cols, cell).sum(axis=(1, 3))


def change_magnitude(before: np.ndarray, after: np.ndarray, valid: np.ndarray, cell: int) -> np.ndarray:
    """Per cell, how much the bands changed between two dates of one grid.

    Args:
        before, after: (bands, h, w) float reflectance of the same bands (NaN = no data).
        valid: (h, w) bool, pixels to use (land cover at both dates).
        cell: the cell size in pixels (the classification's stride).

    Returns:
        (H, W) float32, one value per cell (H = ceil(h / cell)): the root mean square over the
        bands of (after′ − before) / σ, where after′ is ``after`` matched to ``before`` per band
        (mean and standard deviation over the valid pixels), the differences are of cell means,
        and σ is the standard deviation of ``before``'s cell means. NaN where a cell has no valid
        pixel or a band has no spread. For a whole tile, add strips to a :class:`CellStatistics`.

    Raises:
        ArgumentError: shapes that differ, or a cell size below 1.
    """
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape or before.ndim != 3 or before.shape[1:] != valid.shape:
        raise ArgumentError(f"expected two (bands, h, w) stacks and an (h, w) mask, got {before.shape}, "
                            f"{after.shape} and {valid.shape}")
    h, w = valid.shape
    stats = CellStatistics(len(before), (-(-h // max(cell, 1)), -(-w // max(cell, 1))), cell)
    stats.add(0, before, after, valid)
    return stats.magnitude()
