"""What changed between two dates (:func:`compare`) or over a series (:func:`time_series`).

Both take ``<id>_landcover.tif`` paths or :class:`~s2lc.change.maps.DatedMap`: paths are read
by :func:`~s2lc.change.maps.load_map`, every map is checked and, if asked, aligned
(:mod:`s2lc.change.maps`), then compared with the pure functions of :mod:`s2lc.change.core`.

A result holds the arrays and what they mean: areas, transitions, gains and losses, the
summary, provenance tags, polygons. Nothing is written until its ``save``, which writes
through :mod:`s2lc.change.outputs`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from s2lc import __version__, writers
from s2lc.change.core import (
    _NOT_COMPARED_CLASS,
    _UNCHANGED_CLASS,
    FIRST_TRANSITION,
    Trajectory,
    _hectares,
    _matrix_counts,
    _pixel_area_m2,
    _split_legend,
    _transition_class,
    categories,
    compare_arrays,
    trajectory_arrays,
    trajectory_code,
    trajectory_histories,
    transition_classes,
)
from s2lc.change.evidence import DEFAULT_MIN_CONFIDENCE, FLIP, SPECTRAL, UNCERTAIN, Evidence, judge, status_classes
from s2lc.change.maps import (
    DatedMap,
    _as_map,
    _date_or_name,
    _labels,
    _nodata_as,
    _prepare,
    common_extent,
    order_by_time,
    same_acquisition,
    settings_difference,
)
from s2lc.change.outputs import trajectory_classes, write_pair, write_series
from s2lc.change.polygons import DEFAULT_MIN_AREA_HA, pair_polygons
from s2lc.errors import MapError
from s2lc.files import make_folder, staged_outputs
from s2lc.gdal import gdal_env
from s2lc.legend import LandCoverClass
from s2lc.naming import PAIR_SUFFIXES, SERIES_FILES

if TYPE_CHECKING:
    import geopandas
    from affine import Affine
    from rasterio.crs import CRS

__all__ = ["ChangeResult", "SeriesResult", "compare", "time_series"]

logger = logging.getLogger(__name__)

_AREA_NOTE = ("Areas are pixel counts times the pixel area. Classification errors bias them; for area "
              "estimates with confidence intervals use a reference sample (Olofsson et al. 2014).")
_FLICKER_NOTE = ("Flicker: a pixel that returned to a class it had left (A -> B -> A). It is mostly "
                 "classification noise, and it makes the sum of two-date changes overstate lasting change.")


# --------------------------------------------------------------------------------------------
# Two dates


@dataclass(eq=False)
class ChangeResult:
    """What changed between two maps: the result of :func:`compare`.

    Attributes:
        before, after: the maps; ``after`` is on ``before``'s grid (resampled if ``aligned``).
        codes: (h, w) uint8 change codes (:mod:`s2lc.change.core`).
        matrix: (k, k) int64 pixel counts, rows ``before``, columns ``after``, in the
            order of :attr:`categories`.
        aligned: whether ``after`` was resampled onto ``before``'s grid.
        model_mismatch: whether the maps come from different (or unknown) models.
        evidence: the thresholds (and the spectral magnitude) the change was judged by
            (:mod:`s2lc.change.evidence`); None: reported as mapped.

    ``codes`` and ``matrix`` are the comparison as mapped; :attr:`reported` is the change raster
    after judgement, and the totals, transitions, gains and losses count its confident changes.
    """

    before: DatedMap
    after: DatedMap
    codes: np.ndarray
    matrix: np.ndarray
    aligned: bool = False
    model_mismatch: bool = False
    evidence: Evidence | None = None
    min_area_ha: float = DEFAULT_MIN_AREA_HA  #: minimum mapping unit of the change polygons

    def __post_init__(self) -> None:
        confidence = (self.before.confidence, self.after.confidence)
        self.reported = self.codes if self.evidence is None else judge(self.codes, self.evidence, confidence)
        judged = self.reported != self.codes
        # the transitions set apart, by status: code -> pixel count of each transition code
        self._set_apart = {status: np.bincount(self.codes[judged & (self.reported == status)], minlength=256)
                           for status in (UNCERTAIN, FLIP)}
        self._status_counts = np.bincount(self.reported[judged].ravel(), minlength=256)

    @property
    def transform(self) -> Affine:
        return self.before.map.transform

    @property
    def crs(self) -> CRS:
        return self.before.map.crs

    @property
    def land(self) -> tuple[LandCoverClass, ...]:
        """The land-cover classes compared, in code order."""
        return _split_legend(self.before.map.classes)[0]

    @property
    def categories(self) -> list[str]:
        """Names of the matrix rows and columns: land-cover classes, ``Cloud`` (and ``SnowIce``
        where the legend has it), ``NoData``."""
        return categories(self.before.map.classes)

    @property
    def pixel_area_m2(self) -> float:
        return _pixel_area_m2(self.transform)

    def _ha(self, pixels: Any) -> Any:
        return _hectares(pixels, self.pixel_area_m2)

    @property
    def matrix_ha(self) -> np.ndarray:
        """:attr:`matrix` in hectares, float64."""
        return self._ha(self.matrix)

    @property
    def pixels(self) -> dict[str, int]:
        """Pixel totals: ``total``, ``compared`` (= ``unchanged`` + ``spectral`` + ``changed`` +
        ``uncertain`` + ``flip``), ``not_compared_cloud`` and ``no_data``. ``changed`` counts the
        confident transitions; ``uncertain`` those below the confidence threshold, ``flip``
        those without spectral change, ``spectral`` the unchanged pixels that changed spectrally."""
        px = _matrix_counts(self.matrix, len(self.land))
        statuses = {"uncertain": UNCERTAIN, "flip": FLIP, "spectral": SPECTRAL}
        out = {k: v for k, v in px.items()}
        for name, code in statuses.items():
            out[name] = int(self._status_counts[code])
        out["changed"] -= out["uncertain"] + out["flip"]
        out["unchanged"] -= out["spectral"]
        return out

    def matrix_of(self, status: str = "confident") -> np.ndarray:
        """The (k, k) matrix of the transitions of one status: ``confident`` (the reported
        changes, with the stable diagonal and the masks), ``uncertain`` or ``flip`` (only their
        transitions); the three add up to :attr:`matrix`."""
        parts = {"uncertain": self._set_apart[UNCERTAIN], "flip": self._set_apart[FLIP]}
        if status not in ("confident", *parts):
            raise MapError(f"status must be confident, uncertain or flip, got {status!r}")
        index = {c.code: i for i, c in enumerate(self.land)}
        pairs = transition_classes(self.land)
        out = np.zeros_like(self.matrix)
        for name, counts in parts.items():
            for code in np.flatnonzero(counts):
                a, b = pairs[int(code)]
                out_cell = (index[a.code], index[b.code])
                if status == name:
                    out[out_cell] += counts[code]
                elif status == "confident":
                    out[out_cell] -= counts[code]
        return self.matrix + out if status == "confident" else out

    @property
    def classes(self) -> tuple[LandCoverClass, ...]:
        """The legend of :attr:`reported`: unchanged, not compared, the confident transitions it
        holds, and the statuses it holds (:func:`s2lc.change.evidence.status_classes`)."""
        n = len(self.land)
        land = self.matrix_of("confident")[:n, :n]
        present = [_transition_class(code, a, b) for code, (a, b) in transition_classes(self.land).items()
                   if land[self.land.index(a), self.land.index(b)]]
        statuses = status_classes({int(c) for c in np.flatnonzero(self._status_counts)})
        return (_UNCHANGED_CLASS, _NOT_COMPARED_CLASS, *present, *statuses)

    def transitions(self) -> list[dict[str, Any]]:
        """The transitions mapped, largest confident first: code, from, to, label, pixels and
        area_ha (confident), and the pixels set apart as ``uncertain`` and ``flip``."""
        rows = []
        for code, (a, b) in transition_classes(self.land).items():
            mapped = int(self.matrix[self.land.index(a), self.land.index(b)])
            if mapped:
                apart = {"uncertain": int(self._set_apart[UNCERTAIN][code]), "flip": int(self._set_apart[FLIP][code])}
                count = mapped - apart["uncertain"] - apart["flip"]
                rows.append({"code": code, "from": a.name, "to": b.name, "label": f"{a.label} → {b.label}",
                             "pixels": count, "area_ha": self._ha(count), **{f"{k}_pixels": v for k, v in apart.items()}})
        return sorted(rows, key=lambda r: (-r["pixels"], r["code"]))

    def gains_losses(self) -> dict[str, dict[str, float]]:
        """Per land-cover class, hectares gained from and lost to other classes, and the net.

        Only confident changes count (land cover at both dates, transitions reported as change).
        """
        n = len(self.land)
        land = self.matrix_of("confident")[:n, :n]
        stay = np.diag(land)
        gain, loss = land.sum(axis=0) - stay, land.sum(axis=1) - stay
        ha = self._ha
        return {c.name: {"gain_ha": float(ha(g)), "loss_ha": float(ha(lo)), "net_ha": float(ha(g - lo))}
                for c, g, lo in zip(self.land, gain, loss)}

    def matrix_dict(self) -> dict[str, Any]:
        """The transition matrix of the reported (confident) change in pixels and hectares with
        row and column totals, and the transitions set apart (``uncertain_pixels``,
        ``flip_pixels``), for JSON. The three matrices add up to the matrix as mapped."""
        m, ha = self.matrix_of("confident"), self._ha
        return {
            "rows": "before", "columns": "after", "categories": self.categories,
            "pixel_area_m2": self.pixel_area_m2,
            "pixels": m, "area_ha": ha(m),
            "uncertain_pixels": self.matrix_of("uncertain"), "flip_pixels": self.matrix_of("flip"),
            "row_totals": {"pixels": m.sum(axis=1), "area_ha": ha(m.sum(axis=1))},
            "column_totals": {"pixels": m.sum(axis=0), "area_ha": ha(m.sum(axis=0))},
            "total": {"pixels": int(m.sum()), "area_ha": float(ha(m.sum()))},
        }

    def __repr__(self) -> str:
        px, ha = self.pixels, self._ha
        return (f"<ChangeResult {_date_or_name(self.before)} → {_date_or_name(self.after)}: "
                f"{ha(px['changed']):,.2f} ha changed of {ha(px['compared']):,.2f} ha compared>")

    def checks(self) -> dict[str, str]:
        """What was checked before comparing, and how it came out (the summary's ``checks``)."""
        settings = settings_difference(self.before, self.after)
        grid = ("aligned (nearest neighbour)" if self.aligned else
                "one lattice, cut to the intersection" if self.before.cut or self.after.cut else "same")
        return {"legend": "same", "grid": grid,
                "model": "different, allowed" if self.model_mismatch else "same",
                "settings": "different: " + "; ".join(settings) if settings else "same",
                "acquisition": "same" if same_acquisition(self.before, self.after) else "different"}

    def summary(self) -> dict[str, Any]:
        """Provenance of both maps, the checks, totals, transitions, gains and losses, codes."""
        px = self.pixels
        return {
            "before": self.before.provenance(),
            "after": self.after.provenance(),
            "checks": self.checks(),
            "pixel_area_m2": self.pixel_area_m2,
            "pixels": px,
            "area_ha": {k: self._ha(v) for k, v in px.items()},
            "changed_fraction": px["changed"] / px["compared"] if px["compared"] else None,
            "transitions": self.transitions(),
            "gains_losses": self.gains_losses(),
            "codes": {str(c.code): c.label for c in self.classes},
            "evidence": None if self.evidence is None else self.evidence.to_dict(),
            "min_area_ha": self.min_area_ha,
            "notes": [_AREA_NOTE],
            "s2lc_version": __version__,
        }

    def tags(self) -> dict[str, str]:
        """Provenance for the change raster (``S2LC_*`` tags)."""
        b, a = self.before, self.after
        return {
            "S2LC_BEFORE_PRODUCT_ID": b.product_id or "",
            "S2LC_BEFORE_SENSING_TIME": b.provenance()["sensing_time"] or "",
            "S2LC_AFTER_PRODUCT_ID": a.product_id or "",
            "S2LC_AFTER_SENSING_TIME": a.provenance()["sensing_time"] or "",
            "S2LC_MODEL": b.model or "",
            "S2LC_MODEL_SHA256": b.model_sha256 or "",
            "S2LC_MODEL_MISMATCH": json.dumps(self.model_mismatch),
            "S2LC_ALIGNED": json.dumps(self.aligned),
            "S2LC_CHECKS": json.dumps(self.checks(), ensure_ascii=False),
            "S2LC_BEFORE": json.dumps(b.provenance()),
            "S2LC_AFTER": json.dumps(a.provenance()),
        }

    def polygons(self) -> "geopandas.GeoDataFrame":
        """Polygons of the reported change, of its uncertain and flipped transitions and of its
        spectral changes, each at least :attr:`min_area_ha` (:func:`s2lc.change.polygons.pair_polygons`)."""
        return pair_polygons(self, self.min_area_ha)

    def polygon_classes(self) -> tuple[LandCoverClass, ...]:
        """The legend of the polygons' ``change_code``: the confident transitions, then the statuses."""
        return tuple(c for c in self.classes if c.code >= FIRST_TRANSITION)

    def output_paths(self, out_dir: str | os.PathLike, prefix: str | None = None) -> dict[str, Path]:
        """Where :meth:`save` writes each output: ``<out_dir>/<prefix><suffix>`` (:data:`~s2lc.naming.PAIR_SUFFIXES`);
        the prefix defaults to ``change_<before>_<after>``, dates from the maps' sensing times."""
        if prefix is None:
            prefix = "change_{}_{}".format(*_labels([self.before, self.after]))
        return {k: Path(out_dir) / f"{prefix}{suffix}" for k, suffix in PAIR_SUFFIXES.items()}

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False, *, prefix: str | None = None,
             progress: bool = False) -> dict[str, Path]:
        """Write the change raster, matrices, polygons, figure and summary into ``out_dir``
        (created if needed).

        Existing outputs are refused before anything is written, unless ``overwrite``. All or
        nothing: the files are renamed into place once every one is written, so a failure
        leaves existing outputs as they were and adds none.

        Returns:
            Output kind → path (:data:`~s2lc.naming.PAIR_SUFFIXES`).

        Raises:
            OutputError: outputs exist, or the folder cannot be created or written.
        """
        paths = self.output_paths(make_folder(out_dir), prefix)
        with staged_outputs(writers.with_sidecars(paths.values()), overwrite) as stage:
            write_pair(self, paths, stage, progress)
        return paths


@gdal_env()  # s2lc's GDAL configuration, as on the command line
def compare(
    before: str | os.PathLike | DatedMap,
    after: str | os.PathLike | DatedMap,
    *,
    align: bool = False,
    allow_model_mismatch: bool = False,
    min_confidence: float | None = DEFAULT_MIN_CONFIDENCE,
    min_area_ha: float = DEFAULT_MIN_AREA_HA,
) -> ChangeResult:
    """What changed from ``before`` to ``after``.

    The maps are compared in the order given; a warning says so if their sensing times are the
    other way round. A transition is reported as change only where both maps' confidence
    reaches ``min_confidence``; elsewhere it is uncertain (:mod:`s2lc.change.evidence`). To
    weigh the scenes' own bands as well, see :func:`s2lc.change.compare_scenes`.

    Args:
        before, after: ``<id>_landcover.tif`` paths from ``s2lc classify``, or :class:`DatedMap`.
        align: resample ``after`` onto ``before``'s grid (nearest neighbour) when they differ.
        allow_model_mismatch: compare maps from different models (with a warning).
        min_confidence: the probability both dates need for a transition to count; None, or a
            map without its confidence raster (with a warning), reports every transition.
        min_area_ha: the minimum mapping unit of the change polygons, hectares.

    Returns:
        A :class:`ChangeResult`; nothing is written until :meth:`ChangeResult.save`.

    Raises:
        MapError: a file is not an s2lc classification map, or the maps cannot be compared
            (:func:`check_comparable`); the message names the file and what to do.
    """
    b, a = _as_map(before), _as_map(after)
    if not align:  # with align, the second map is resampled onto the first's whole grid instead
        b, a = common_extent([b, a])
    tb, ta = b.sensing_time, a.sensing_time
    if tb and ta and ta < tb:
        logger.warning("%s (%s) was sensed before %s (%s): comparing in the order given", a.name, ta.date(),
                       b.name, tb.date())
    result = _compare_prepared(b, *_prepare(b, a, align, allow_model_mismatch), _evidence(b, a, min_confidence))
    result.min_area_ha = min_area_ha
    return result


def _evidence(b: DatedMap, a: DatedMap, min_confidence: float | None, **spectral: Any) -> Evidence | None:
    """The judgement of a comparison: gated on confidence where both maps have it."""
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        raise MapError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    missing = [m.name for m in (b, a) if m.confidence is None]
    if min_confidence is not None and missing:
        logger.warning("%s has no confidence raster (<id>_confidence.tif beside it): transitions are not gated "
                       "on confidence", " and ".join(missing))
        min_confidence = None
    if min_confidence is None and not spectral:
        return None
    return Evidence(min_confidence, **spectral)


def _compare_prepared(b: DatedMap, a: DatedMap, aligned: bool, evidence: Evidence | None = None) -> ChangeResult:
    mismatch = b.model_sha256 is None or b.model_sha256 != a.model_sha256
    codes, matrix = compare_arrays(b.map.data, _nodata_as(a.map, b.map.nodata), b.map.classes,
                                   nodata=b.map.nodata, labels=(b.name, a.name))
    result = ChangeResult(b, a, codes, matrix, aligned=aligned, model_mismatch=mismatch, evidence=evidence)
    px = result.pixels
    if not px["compared"]:
        logger.warning("%s and %s share no pixel with land cover at both dates (cloud or no data): nothing "
                       "to compare", b.name, a.name)
    return result


# --------------------------------------------------------------------------------------------
# Time series


def _pair_totals(p: ChangeResult) -> dict[str, Any]:
    px = p.pixels
    return {"before": p.before.provenance()["sensing_time"], "after": p.after.provenance()["sensing_time"],
            "changed_ha": p._ha(px["changed"]), "compared_ha": p._ha(px["compared"]),
            "changed_fraction": px["changed"] / px["compared"] if px["compared"] else None}


@dataclass(eq=False)
class SeriesResult:
    """What changed over a series of dates: the result of :func:`time_series`.

    Attributes:
        maps: the maps in time order, all on the first one's grid.
        pairs: the change between each date and the next.
        overall: the change from the first date to the last.
        trajectory: per pixel, changes counted over all dates and the flicker flag.
        aligned: for each map, whether it was resampled onto the first one's grid.
    """

    maps: tuple[DatedMap, ...]
    pairs: tuple[ChangeResult, ...]
    overall: ChangeResult
    trajectory: Trajectory
    aligned: tuple[bool, ...] = ()

    def __repr__(self) -> str:
        return (f"<SeriesResult {len(self.maps)} dates {_date_or_name(self.maps[0])} … {_date_or_name(self.maps[-1])}, "
                f"{len(self.pairs)} pairs>")

    @property
    def labels(self) -> list[str]:
        """Short names of the dates, used in output file names."""
        return _labels(self.maps)

    @property
    def land(self) -> tuple[LandCoverClass, ...]:
        return self.overall.land

    def trajectory_classes(self) -> tuple[LandCoverClass, ...]:
        return trajectory_classes(self.trajectory.codes)

    def trajectory_polygons(self) -> "geopandas.GeoDataFrame":
        """Patches of pixels that changed at least once and share one history.

        Returns:
            A GeoDataFrame in the maps' CRS with columns ``trajectory_code`` (the code of the
            pixels' change count and flicker flag), ``history`` (``Forest → Pasture → Forest``),
            ``first_class``, ``last_class``, ``n_changes``, ``flicker``, ``area_ha``.
        """
        import geopandas as gpd
        import rasterio.features
        import shapely

        first = self.maps[0].map
        stack = np.stack([m.map.data for m in self.maps])
        ids, histories = trajectory_histories(stack, self.trajectory.n_changes > 0, first.classes,
                                              nodata=first.nodata)
        shapes = list(rasterio.features.shapes(ids, mask=ids > 0, connectivity=4, transform=first.transform))
        geoms = [shapely.geometry.shape(g) for g, _ in shapes]
        hist = [histories[int(v) - 1] for _, v in shapes]
        n_changes = [len(hh) - 1 for hh in hist]
        flicker = [len({c.code for c in hh}) < len(hh) for hh in hist]
        columns = {
            "trajectory_code": np.array([trajectory_code(k, f) for k, f in zip(n_changes, flicker)], np.int32),
            "history": [" → ".join(c.label for c in hh) for hh in hist],
            "first_class": [hh[0].name for hh in hist],
            "last_class": [hh[-1].name for hh in hist],
            "n_changes": np.array(n_changes, np.int32),
            "flicker": np.array(flicker, bool),
            "area_ha": np.array([g.area / 10_000 for g in geoms], np.float64),
        }
        return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=first.crs.to_string()))

    def summary(self) -> dict[str, Any]:
        """Dates, each pair's totals, the first→last change, the trajectory and the flicker."""
        ha = self.overall._ha  # every map is on the first one's grid
        traj = self.trajectory
        counts = np.bincount(traj.codes.ravel(), minlength=256)
        pair_changed = sum(p.pixels["changed"] for p in self.pairs)
        overall_changed = self.overall.pixels["changed"]
        observed = int((traj.n_observed >= 2).sum())
        changed = int((traj.n_changes > 0).sum())
        flicker = int(traj.flicker.sum())
        return {
            "dates": [m.provenance() for m in self.maps],
            "aligned": list(self.aligned),
            "settings": {m.name: "; ".join(diff) for m in self.maps[1:]
                         if (diff := settings_difference(self.maps[0], m))} or "same",
            "pairs": [_pair_totals(p) for p in self.pairs],
            "first_to_last": {"changed_ha": ha(overall_changed), "compared_ha": ha(self.overall.pixels["compared"])},
            "trajectory": {
                "observed_twice_or_more_ha": ha(observed),
                "changed_at_least_once_ha": ha(changed),
                "flicker_ha": ha(flicker),
                "flicker_fraction_of_changed": flicker / changed if changed else None,
                "area_ha_by_code": {str(c.code): ha(int(counts[c.code])) for c in self.trajectory_classes()},
                "codes": {str(c.code): c.label for c in self.trajectory_classes()},
            },
            "sum_of_consecutive_changes_ha": ha(pair_changed),
            "overstatement": pair_changed / overall_changed if overall_changed else None,
            "notes": [_FLICKER_NOTE, _AREA_NOTE],
            "s2lc_version": __version__,
        }

    def _pair_prefixes(self) -> list[tuple[ChangeResult, str]]:
        labels = self.labels
        out = [(p, f"change_{labels[i]}_{labels[i + 1]}") for i, p in enumerate(self.pairs)]
        if len(self.pairs) > 1:  # with two dates, first to last is the one pair
            out.append((self.overall, f"change_{labels[0]}_{labels[-1]}"))
        return out

    def output_paths(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Where :meth:`save` writes: ``<prefix>:<kind>`` for every pair (consecutive, then
        first→last), and the series files (:data:`~s2lc.naming.SERIES_FILES`)."""
        out = Path(out_dir)
        paths = {f"{prefix}:{kind}": p for result, prefix in self._pair_prefixes()
                 for kind, p in result.output_paths(out, prefix).items()}
        labels = self.labels
        paths.update({k: out / name.format(first=labels[0], last=labels[-1]) for k, name in SERIES_FILES.items()})
        return paths

    def tags(self) -> dict[str, str]:
        first = self.maps[0]
        return {
            "S2LC_DATES": json.dumps([m.provenance()["sensing_time"] for m in self.maps]),
            "S2LC_PRODUCT_IDS": json.dumps([m.product_id for m in self.maps]),
            "S2LC_MODEL": first.model or "",
            "S2LC_MODEL_SHA256": first.model_sha256 or "",
            "S2LC_ALIGNED": json.dumps(list(self.aligned)),
        }

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False, *, progress: bool = False) -> dict[str, Path]:
        """Write every pair's outputs, the first→last change, and the trajectory into ``out_dir``
        (created if needed).

        Existing outputs are refused before anything is written, unless ``overwrite``. All or
        nothing, as :meth:`ChangeResult.save`.

        Returns:
            :meth:`output_paths`.

        Raises:
            OutputError: outputs exist, or the folder cannot be created or written.
        """
        from tqdm import tqdm

        paths = self.output_paths(make_folder(out_dir))
        with staged_outputs(writers.with_sidecars(paths.values()), overwrite) as stage:
            for result, prefix in tqdm(self._pair_prefixes(), desc="writing changes", unit="pair",
                                       disable=not progress):
                write_pair(result, result.output_paths(out_dir, prefix), stage, False)
            write_series(self, paths, stage)
        return paths


@gdal_env()  # s2lc's GDAL configuration, as on the command line
def time_series(
    maps: Sequence[str | os.PathLike | DatedMap],
    *,
    align: bool = False,
    allow_model_mismatch: bool = False,
    progress: bool = False,
    min_confidence: float | None = DEFAULT_MIN_CONFIDENCE,
    min_area_ha: float = DEFAULT_MIN_AREA_HA,
) -> SeriesResult:
    """What changed over a series of maps of one place, ordered by their sensing times.

    Every map is checked against the earliest (:func:`check_comparable`) and, with ``align``,
    resampled onto its grid. Then each date is compared with the next, the first with the
    last, and each pixel's changes are counted over all dates (:func:`trajectory_arrays`).

    Args:
        maps: two or more ``<id>_landcover.tif`` paths or :class:`DatedMap`, in any order.
        align: resample maps on other grids onto the earliest map's grid.
        allow_model_mismatch: accept maps from different models (with a warning).
        progress: a progress bar on stderr.
        min_confidence, min_area_ha: as :func:`compare`, for each pair; the trajectory counts the
            classes as mapped.

    Returns:
        A :class:`SeriesResult`; nothing is written until :meth:`SeriesResult.save`.

    Raises:
        MapError: fewer than two maps; a map that is not an s2lc classification; a map without
            a sensing time among maps with one, or two maps of one time (:func:`order_by_time`);
            maps that cannot be compared.
    """
    from tqdm import tqdm

    if len(maps) < 2:
        raise MapError(f"a series needs at least two maps, got {len(maps)}")
    loaded = [_as_map(m) for m in tqdm(maps, desc="reading maps", unit="map", disable=not progress)]
    ordered = order_by_time(loaded)
    if not align:
        ordered = common_extent(ordered)
    ref = ordered[0]
    prepared = [(ref, False)] + [_prepare(ref, m, align, allow_model_mismatch) for m in ordered[1:]]
    series = [m for m, _ in prepared]
    aligned = tuple(flag for _, flag in prepared)
    pairs = tuple(_compare_prepared(x, y, aligned[i] or aligned[i + 1], _evidence(x, y, min_confidence))
                  for i, (x, y) in enumerate(tqdm(list(zip(series, series[1:])), desc="comparing", unit="pair",
                                                  disable=not progress)))
    overall = pairs[0] if len(series) == 2 else _compare_prepared(
        series[0], series[-1], aligned[-1], _evidence(series[0], series[-1], min_confidence))
    for pair in {id(p): p for p in (*pairs, overall)}.values():
        pair.min_area_ha = min_area_ha
    stack = np.stack([_nodata_as(m.map, ref.map.nodata) for m in series])
    traj = trajectory_arrays(stack, ref.map.classes, nodata=ref.map.nodata)
    return SeriesResult(tuple(series), pairs, overall, traj, aligned)
