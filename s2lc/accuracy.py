"""``s2lc assess``: accuracy and error-adjusted area of a map from a labelled sample.

:func:`assess` reads a map (:func:`s2lc.sampling.open_map`, by strips) and the sample that
``s2lc sample`` drew from it, once an analyst has filled its ``reference`` field, checks one
against the other, and returns the stratified estimates of :mod:`s2lc.assessment` as an
:class:`AccuracyReport`: the error matrix in area proportions; overall, user's and producer's
accuracies; the error-adjusted area of each class in hectares (pixel counts × pixel area), each
with its 95 % confidence interval. :meth:`AccuracyReport.save` writes them as JSON, two CSV
tables and a figure (:data:`s2lc.naming.ACCURACY_SUFFIXES`), all or nothing.

The population is the map's pixels in the sample's strata: the strata its ``sample_design``
table lists (their pixel counts must still be the map's), or, for a GeoPackage without one,
every code of the map but no data and the masks, and the masks the points fall on.

Points not labelled yet (``reference`` NULL) are left out, with a warning: the estimates then
treat the labelled points of each stratum as its sample. Everything else that does not fit is
an error that names the file and the first feature at fault.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2lc.assessment import Estimates, error_matrix, estimate
from s2lc.errors import DatasetError, MapError
from s2lc.legend import LandCoverClass
from s2lc.naming import ACCURACY_SUFFIXES
from s2lc.sampling import MASKS, MapHeader, Samples, codes_at, count_map, open_map, read_samples

__all__ = ["AccuracyReport", "accuracy_paths", "assess"]

logger = logging.getLogger(__name__)


def accuracy_paths(out_dir: str | os.PathLike, samples: str | os.PathLike) -> dict[str, Path]:
    """The files :meth:`AccuracyReport.save` writes: ``<out_dir>/<samples stem><suffix>``."""
    stem = Path(samples).stem
    return {kind: Path(out_dir) / f"{stem}{suffix}" for kind, suffix in ACCURACY_SUFFIXES.items()}


@dataclass(frozen=True, eq=False)
class AccuracyReport:
    """What :func:`assess` found: the estimates, the classes they are in, and how they came about."""

    map: MapHeader
    samples: Path
    classes: tuple[LandCoverClass, ...]  #: rows and columns of the matrix, in code order
    estimates: Estimates
    points: int  #: points in the sample
    unlabelled: int  #: points without a reference label, left out
    notes: tuple[str, ...] = ()  #: what the reader of the numbers should know

    def per_class(self) -> list[dict[str, Any]]:
        """One dict per class: mapped pixels and area, points, user's and producer's accuracy,
        area proportion and error-adjusted area, each estimate with its ``ci95`` half-width."""
        e = self.estimates

        def value(x: np.ndarray, se: np.ndarray, i: int) -> dict[str, float | None]:
            v, s = float(x[i]), float(se[i])
            return {"estimate": _finite(v), "ci95": _finite(e.ci(s)), "se": _finite(s)}

        n = e.counts.sum(axis=1)
        return [{"code": c.code, "name": c.name, "label": c.label, "stratum": bool(e.pixels[i] > 0),
                 "mapped_pixels": int(e.pixels[i]), "mapped_area_ha": float(e.mapped_area_ha[i]),
                 "points": int(n[i]), "users_accuracy": value(e.users, e.users_se, i),
                 "producers_accuracy": value(e.producers, e.producers_se, i),
                 "area_proportion": value(e.area_proportion, e.area_proportion_se, i),
                 "area_ha": value(e.area_ha, e.area_ha_se, i)}
                for i, c in enumerate(self.classes)]

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready values (what ``s2lc assess --json`` prints)."""
        e = self.estimates
        return {
            "map": str(self.map.path), "samples": str(self.samples), "map_kind": self.map.kind,
            "crs": self.map.crs.to_string(), "pixel_area_m2": e.pixel_area_m2,
            "points": {"total": self.points, "labelled": int(e.counts.sum()), "unlabelled": self.unlabelled},
            "strata": int((e.pixels > 0).sum()), "total_area_ha": e.total_area_ha,
            "confidence_interval": f"95 % (± {e.z} standard errors)",
            "overall_accuracy": {"estimate": e.overall, "ci95": e.ci(e.overall_se), "se": e.overall_se},
            "per_class": self.per_class(),
            "error_matrix": {"rows": "map class (stratum)", "columns": "reference class",
                             "codes": [c.code for c in self.classes], "counts": e.counts.tolist(),
                             "area_proportions": e.proportions.tolist()},
            "estimator": "stratified (Olofsson et al. 2014, Remote Sensing of Environment 148, eq. 4-11)",
            "notes": list(self.notes),
        }

    def text(self) -> str:
        """A readable report: overall accuracy, a table per class, the error matrix."""
        e, rows = self.estimates, self.per_class()
        width = max(12, *(len(r["label"]) for r in rows))
        lines = [f"{self.map.path.name}: {int(e.counts.sum())} labelled points of {self.points} in "
                 f"{int((e.pixels > 0).sum())} strata, {e.total_area_ha:,.2f} ha; "
                 f"overall accuracy {e.overall:.3f} ± {e.ci(e.overall_se):.3f} (95 % CI)",
                 f"{'class':<{width}}  {'mapped ha':>13}  {'n':>5}  {'user’s':>13}  {'producer’s':>13}  "
                 f"{'error-adjusted ha':>26}"]
        for r in rows:
            lines.append(f"{r['label']:<{width}}  {r['mapped_area_ha']:>13,.2f}  {r['points']:>5}  "
                         f"{_pm(r['users_accuracy'], '.3f'):>13}  {_pm(r['producers_accuracy'], '.3f'):>13}  "
                         f"{_pm(r['area_ha'], ',.2f'):>26}")
        lines.append("error matrix in area proportions (rows: map class, columns: reference class, by code):")
        lines.append(f"{'':<{width}}  " + " ".join(f"{c.code:>7}" for c in self.classes))
        for c, row in zip(self.classes, e.proportions):
            lines.append(f"{c.label:<{width}}  " + " ".join(f"{v:7.4f}" for v in row))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Path]:
        """Write the summary (JSON), the per-class table and the error matrix (CSV) and the area
        figure (PNG) into ``out_dir`` (which must exist), all or nothing.

        Raises:
            OutputError: an output exists (without ``overwrite``) or cannot be written.
        """
        from s2lc import writers

        paths = accuracy_paths(out_dir, self.samples)
        with writers.staged_outputs(list(paths.values()), overwrite) as stage:
            writers.write_json(stage(paths["summary"]), {**self.summary(),
                                                         "outputs": {k: p.name for k, p in paths.items()}})
            writers.write_text(stage(paths["table"]), self._table_csv())
            writers.write_text(stage(paths["matrix"]), self._matrix_csv())
            self._figure(stage(paths["figure"]))
        return paths

    def _table_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        quantities = ("users_accuracy", "producers_accuracy", "area_proportion", "area_ha")
        w.writerow(["code", "name", "label", "mapped_pixels", "mapped_area_ha", "points",
                    *(f"{q}{part}" for q in quantities for part in ("", "_ci95"))])
        for r in self.per_class():
            w.writerow([r["code"], r["name"], r["label"], r["mapped_pixels"], r["mapped_area_ha"], r["points"],
                        *(_cell(r[q][part]) for q in quantities for part in ("estimate", "ci95"))])
        return out.getvalue()

    def _matrix_csv(self) -> str:
        """Area proportions, then sample counts: rows map class, columns reference class, with totals."""
        e = self.estimates
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["quantity", "map_code", "map_class", *(c.name for c in self.classes), "total"])
        for quantity, matrix in (("area_proportion", e.proportions), ("count", e.counts)):
            for c, row in zip(self.classes, matrix):
                w.writerow([quantity, c.code, c.name, *row.tolist(), row.sum().item()])
            w.writerow([quantity, "", "total", *matrix.sum(axis=0).tolist(), matrix.sum().item()])
        return out.getvalue()

    def _figure(self, path: Path) -> None:
        """Mapped and error-adjusted area per class, on a log scale (classes differ by orders of
        magnitude), the adjusted area with its 95 % confidence interval."""
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        e = self.estimates
        mapped, adjusted, half = e.mapped_area_ha, e.area_ha, e.ci(e.area_ha_se)
        positive = np.concatenate([mapped[mapped > 0], adjusted[adjusted > 0]])
        floor = positive.min() / 4 if len(positive) else 1.0
        y = np.arange(len(self.classes))
        fig, ax = plt.subplots(figsize=(8.5, 1.6 + 0.5 * len(self.classes)))
        shown = mapped > 0
        ax.scatter(mapped[shown], y[shown] - 0.15, marker="D", s=36, color="#9e9e9e", zorder=3,
                   label="mapped (pixel count × pixel area)")
        shown = adjusted > 0
        low = np.maximum(adjusted - half, floor)
        ax.errorbar(adjusted[shown], y[shown] + 0.15, xerr=[(adjusted - low)[shown], half[shown]], fmt="none",
                    ecolor="#333333", capsize=3, zorder=2)
        ax.scatter(adjusted[shown], y[shown] + 0.15, s=48, edgecolors="#333333", zorder=4, label="error-adjusted, 95 % CI",
                   color=["#{:02x}{:02x}{:02x}".format(*c.color) for c, ok in zip(self.classes, shown) if ok])
        ax.set_xscale("log")
        ax.set_yticks(y, [f"{c.label}\n{adjusted[i]:,.0f} ± {half[i]:,.0f} ha" for i, c in enumerate(self.classes)],
                      fontsize=8)
        ax.set_ylim(len(self.classes) - 0.5, -0.5)
        ax.set(xlabel="area (ha, log scale)", title=f"{self.map.path.name}: overall accuracy {e.overall:.3f} ± "
                                                    f"{e.ci(e.overall_se):.3f} ({int(e.counts.sum())} points)")
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.9 / (1.6 + 0.5 * len(self.classes))), ncol=2,
                  fontsize=8, frameon=False)
        fig.tight_layout()
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)


def _finite(v: float) -> float | None:
    return v if np.isfinite(v) else None


def _pm(v: dict[str, float | None], fmt: str) -> str:
    return "n/a" if v["estimate"] is None else f"{v['estimate']:{fmt}} ± {v['ci95']:{fmt}}"


def _cell(v: float | None) -> str | float:
    return "" if v is None else v


# --------------------------------------------------------------------------------------------
# Assessing


def _strata(header: MapHeader, pixels: np.ndarray, samples: Samples) -> tuple[list[int], list[str]]:
    """The strata of the population, and notes on how they were found.

    Raises:
        MapError: the map's pixel counts are not those of the sample's design.
    """
    masks = header.mask_codes()
    present = [c for c in np.flatnonzero(pixels).tolist() if c != header.nodata]
    if samples.design is None:
        strata = sorted({c for c in present if c not in masks} | {c for c in samples.map_code.tolist() if c in masks})
        return strata, [f"{samples.path.name} has no sample_design table: the strata are taken to be the map's "
                        "codes (no data and masks left out, masks the points fall on kept)"]
    for c in sorted(set(samples.design) | {c for c in present if c not in masks}):
        if samples.design.get(c, 0) != pixels[c]:
            raise MapError(f"{header.path}: code {c} has {int(pixels[c]):,} pixels, the design of {samples.path} "
                           f"says {samples.design.get(c, 0):,}; the map was changed after sampling, or the sample "
                           "was drawn from another map: sample the map again")
    strata = sorted(samples.design)
    left_out = [header.by_code()[c].label for c in present if c not in strata]
    notes = [f"left out of the area assessed (masks not sampled): {', '.join(left_out)}"] if left_out else []
    return strata, notes


def _check_points(header: MapHeader, samples: Samples, strata: list[int]) -> None:
    """Every point on the map, on its map_code, in a stratum.

    Raises:
        DatasetError: a point off the map, on another code than its ``map_code``, or on no stratum.
    """
    _, _, here = codes_at(header, samples.x, samples.y)

    def refuse(bad: np.ndarray, what: str, advice: str) -> None:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{samples.path}: {int(bad.sum())} point(s) {what} (the first: feature "
                               f"{samples.fid[i]}, map_code {samples.map_code[i]}, map {here[i]}); {advice}")

    refuse(here < 0, "lie off the map", f"pass the map the sample was drawn from ({header.path} is not)")
    refuse(here != samples.map_code, "have a map_code other than the map's code under them",
           "the sample was drawn from another map, or map_code was edited: sample the map again")
    refuse(~np.isin(samples.map_code, strata), "lie on no stratum (no data, or a mask not sampled)",
           "delete them, or sample the map again")


def _check_references(header: MapHeader, samples: Samples, strata: list[int], pixels: np.ndarray) -> np.ndarray:
    """The labelled points, as a boolean mask.

    Raises:
        DatasetError: no point labelled; a label that is no class of the map's legend (or is a
            mask); a stratum with fewer than 2 labelled points (that is not a census).
    """
    labelled = samples.reference >= 0
    if not labelled.any():
        raise DatasetError(f"{samples.path}: no point has a reference label; open it in QGIS and give each point "
                           "its reference class (the reference field) first")
    by_code = header.by_code()
    allowed = {c for c, k in by_code.items() if k.name not in MASKS}
    wrong = labelled & ~np.isin(samples.reference, list(allowed))
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        codes = sorted(set(samples.reference[wrong].tolist()))
        masks = [c for c in codes if c in by_code]
        why = (f"{', '.join(by_code[c].label for c in masks)} {'is a mask' if len(masks) == 1 else 'are masks'}, not "
               "a class: label what the ground is, or leave the point empty" if masks else "not classes of the map")
        raise DatasetError(f"{samples.path}: reference codes {codes} of {int(wrong.sum())} point(s) are {why} "
                           f"(the first: feature {samples.fid[i]}); use the codes of the map's legend "
                           f"({', '.join(f'{c} {by_code[c].label}' for c in sorted(allowed))})")
    for c in strata:
        k = int((labelled & (samples.map_code == c)).sum())
        if k < min(2, pixels[c]):
            raise DatasetError(f"{samples.path}: stratum {by_code[c].label} (code {c}) has {k} labelled point"
                               f"{'' if k == 1 else 's'}; the variance needs at least 2 per stratum (or all its "
                               f"{int(pixels[c])} pixels): label more of its points, or sample the map again")
    return labelled


def assess(map_path: str | os.PathLike, samples_path: str | os.PathLike, *, progress: bool = False) -> AccuracyReport:
    """Accuracy and error-adjusted area of a map from a labelled stratified random sample.

    Args:
        map_path: the map the sample was drawn from (``s2lc classify`` or ``s2lc change``).
        samples_path: the GeoPackage ``s2lc sample`` wrote, its ``reference`` field filled.
        progress: show a progress bar on stderr while the map's pixels are counted.

    Returns:
        The :class:`AccuracyReport`.

    Raises:
        MapError: the map is not an s2lc map in a projected CRS, or is not the one sampled.
        DatasetError: the sample cannot be read, lacks its fields, has no labels, labels that
            are not classes of the map, points off the map or off their stratum, or a stratum
            with fewer than 2 labelled points.
    """
    header = open_map(map_path)
    samples = read_samples(samples_path, header.crs)
    pixels = count_map(header, progress)
    strata, notes = _strata(header, pixels, samples)
    _check_points(header, samples, strata)
    labelled = _check_references(header, samples, strata, pixels)
    unlabelled = int((~labelled).sum())
    if unlabelled:
        logger.warning("%s: %d of %d points have no reference label and are left out", samples.path, unlabelled,
                       len(labelled))
        notes.append(f"{unlabelled} of {len(labelled)} points have no reference label and were left out")
    codes = sorted(set(strata) | set(samples.reference[labelled].tolist()))
    counts = error_matrix(samples.map_code[labelled], samples.reference[labelled], np.array(codes))
    class_pixels = np.array([pixels[c] if c in strata else 0 for c in codes], np.int64)
    estimates = estimate(counts, class_pixels, header.pixel_area_m2)
    by_code = header.by_code()
    return AccuracyReport(header, samples.path, tuple(by_code[c] for c in codes), estimates, len(labelled),
                          unlabelled, tuple(notes))
