"""Stratified random samples of a class map, as a GeoPackage to label in QGIS.

``s2lc sample`` draws points for an accuracy assessment by good practice (Olofsson et al. 2014;
the design and estimators are :mod:`s2lc.assessment`): the strata are the codes the map holds
(the land-cover classes of a classification map, "unchanged" and the transitions of a change
map), no data (0) never one. Masks — cloud, snow or ice, "not compared" — are left out unless
``include_masks``: the population assessed is then the map's pixels in the other strata.

The map is read a strip of rows at a time, twice (once to count the pixels of each stratum, once
to find the pixels drawn), so memory stays bounded whatever its size. Points are pixel centres in
the map's CRS, in random order.

The GeoPackage (layer ``samples``, GeoPackage 1.2) holds per point ``map_code``, ``map_class``,
an empty ``reference`` (the code the analyst gives) and ``notes``; a QGIS default style whose form
offers the classes in a drop-down (:func:`s2lc.qgis.sample_points_qml`); and a table
``sample_design`` (code, name, label, pixels, area_ha, n, anticipated_users_accuracy) whose
``gpkg_contents`` description holds the map, the allocation and the seed as JSON.

This module opens files: the map (rasterio, by strips) and the GeoPackage (pyogrio, sqlite3).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from s2lc import __version__
from s2lc.assessment import (
    ANTICIPATED_CHANGE,
    ANTICIPATED_STABLE,
    MIN_PER_STRATUM,
    allocate,
    draw_ranks,
    locate_ranks,
)
from s2lc.change.core import _NOT_COMPARED_CLASS, _UNCHANGED_CLASS
from s2lc.errors import ArgumentError, DatasetError, MapError
from s2lc.files import atomic_path
from s2lc.legend import MASK_NAMES, LandCoverClass

__all__ = [
    "DESIGN_TABLE",
    "LAYER",
    "MapHeader",
    "SampleDesign",
    "Samples",
    "codes_at",
    "count_map",
    "draw_sample",
    "open_map",
    "plan_sample",
    "read_samples",
    "write_samples",
]

logger = logging.getLogger(__name__)

#: The GeoPackage layer of the points.
LAYER = "samples"
#: The GeoPackage table of the design: one row per stratum.
DESIGN_TABLE = "sample_design"
#: Legend names that are masks, not classes: never a stratum unless asked, never a reference label.
MASKS = (*MASK_NAMES, _NOT_COMPARED_CLASS.name)
#: Rows read at once: the maps' block height (512-pixel COG tiles), about 5.6 MB for a whole tile's width.
STRIP_ROWS = 512


# --------------------------------------------------------------------------------------------
# The map, by strips


@dataclass(frozen=True, eq=False)
class MapHeader:
    """An s2lc class map's grid and legend, read without its pixels."""

    path: Path
    kind: str  #: "classification" or "change"
    classes: tuple[LandCoverClass, ...]  #: the legend, in code order
    transform: Affine
    crs: CRS
    height: int
    width: int
    nodata: int = 0

    @property
    def pixel_area_m2(self) -> float:
        t = self.transform
        return abs(t.a * t.e - t.b * t.d)

    def by_code(self) -> dict[int, LandCoverClass]:
        return {c.code: c for c in self.classes}

    def mask_codes(self) -> set[int]:
        return {c.code for c in self.classes if c.name in MASKS}


def open_map(path: str | os.PathLike) -> MapHeader:
    """The grid and legend of a map written by ``s2lc classify`` or ``s2lc change``.

    Raises:
        MapError: the file is not a raster, not an s2lc class map, or not in a projected CRS in
            metres (areas and pixel centres need one).
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    from s2lc.writers.rasters import MAP_KINDS, _legend_from_json

    path = Path(path)
    what = "pass a map that `s2lc classify` or `s2lc change` wrote"
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise MapError(f"{path}: cannot be read as a raster; {what}") from exc
    with src:
        tags = src.tags()
        if src.count != 1 or src.dtypes[0] != "uint8" or tags.get("S2LC_KIND") not in MAP_KINDS or "S2LC_LEGEND" not in tags:
            raise MapError(f"{path}: not an s2lc class map (no S2LC_KIND and S2LC_LEGEND tags on a uint8 band); {what}")
        try:
            classes = tuple(sorted(_legend_from_json(tags["S2LC_LEGEND"]), key=lambda c: c.code))
        except (ValueError, KeyError, TypeError) as exc:
            raise MapError(f"{path}: its S2LC_LEGEND tag is malformed; {what}") from exc
        crs = src.crs
        if crs is None or not crs.is_projected or (crs.linear_units or "").lower() not in ("metre", "meter"):
            raise MapError(f"{path}: areas need a projected CRS in metres, got "
                           f"{crs.to_string() if crs else 'none'}; reproject the map")
        return MapHeader(path, tags["S2LC_KIND"], classes, src.transform, crs, src.height, src.width,
                         int(src.nodata) if src.nodata is not None else 0)


def _strips(header: MapHeader, progress: bool = False, what: str = "reading") -> Iterator[tuple[int, np.ndarray]]:
    """(first row, (rows, w) uint8 codes) for each strip of :data:`STRIP_ROWS` rows, in order."""
    import rasterio
    from rasterio.windows import Window
    from tqdm import tqdm

    with rasterio.open(header.path) as src, tqdm(total=header.height, desc=f"{what} {header.path.name}", unit="row",
                                                  disable=not progress) as bar:
        for row in range(0, header.height, STRIP_ROWS):
            rows = min(STRIP_ROWS, header.height - row)
            yield row, src.read(1, window=Window(0, row, header.width, rows))
            bar.update(rows)


def count_map(header: MapHeader, progress: bool = False) -> np.ndarray:
    """Pixels per code, (256,) int64, counted strip by strip.

    Raises:
        MapError: the map holds codes that are not in its legend.
    """
    counts = np.zeros(256, np.int64)
    for _, strip in _strips(header, progress, "counting"):
        counts += np.bincount(strip.ravel(), minlength=256)
    unknown = sorted(set(np.flatnonzero(counts).tolist()) - set(header.by_code()) - {header.nodata})
    if unknown:
        raise MapError(f"{header.path}: holds codes {unknown} that are not in its legend; write the map again")
    return counts


def codes_at(header: MapHeader, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixel under each point, and its code.

    Args:
        header: the map.
        x, y: (n,) coordinates in the map's CRS.

    Returns:
        ``(rows, cols, codes)``: (n,) int64 each; ``codes`` is −1 for a point off the map.
    """
    import rasterio

    cols, rows = ~header.transform @ (np.asarray(x, np.float64), np.asarray(y, np.float64))
    rows, cols = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    inside = (rows >= 0) & (rows < header.height) & (cols >= 0) & (cols < header.width)
    codes = np.full(len(rows), -1, np.int64)
    if inside.any():
        with rasterio.open(header.path) as src:
            centres = zip(*(header.transform @ (cols[inside] + 0.5, rows[inside] + 0.5)))
            codes[inside] = [int(v[0]) for v in src.sample(centres, indexes=1)]
    return rows, cols, codes


# --------------------------------------------------------------------------------------------
# The design


@dataclass(frozen=True, eq=False)
class SampleDesign:
    """How many points each stratum gets, and how they were drawn."""

    map: MapHeader
    codes: np.ndarray  #: (q,) int64 stratum codes, in code order
    pixels: np.ndarray  #: (q,) int64 pixels of each stratum
    counts: np.ndarray  #: (q,) int64 points of each stratum
    allocation: str  #: "proportional", "equal", "neyman" or "counts"
    seed: int
    include_masks: bool = False
    minimum: int | None = None  #: points per stratum at least (not for counts)
    anticipated: np.ndarray | None = None  #: (q,) anticipated user's accuracies (Neyman)
    excluded: dict[int, int] = field(default_factory=dict)  #: mask codes left out → their pixels

    def rows(self) -> list[dict[str, Any]]:
        """One dict per stratum: code, name, label, pixels, area_ha, n, anticipated_users_accuracy."""
        by_code, area = self.map.by_code(), self.map.pixel_area_m2
        return [{"code": int(c), "name": by_code[c].name, "label": by_code[c].label, "pixels": int(N),
                 "area_ha": float(N) * area / 10_000, "n": int(k),
                 "anticipated_users_accuracy": None if self.anticipated is None else float(self.anticipated[i])}
                for i, (c, N, k) in enumerate(zip(self.codes.tolist(), self.pixels, self.counts))]

    def to_dict(self) -> dict[str, Any]:
        """The design as JSON-ready values (what ``s2lc sample --json`` prints)."""
        by_code = self.map.by_code()
        return {
            "map": str(self.map.path), "map_kind": self.map.kind, "crs": self.map.crs.to_string(),
            "allocation": self.allocation, "seed": self.seed, "n": int(self.counts.sum()),
            "minimum_per_stratum": self.minimum, "include_masks": self.include_masks,
            "excluded_masks": [{"code": c, "name": by_code[c].name, "label": by_code[c].label, "pixels": N}
                               for c, N in self.excluded.items()],
            "strata": self.rows(), "s2lc_version": __version__,
        }


def _anticipated_defaults(header: MapHeader, codes: np.ndarray, given: Mapping[int, float] | None) -> np.ndarray:
    """Anticipated user's accuracies: ``given`` where it says, else :data:`ANTICIPATED_STABLE` for
    land-cover classes and "unchanged", :data:`ANTICIPATED_CHANGE` for the other codes of a change map."""
    by_code, given = header.by_code(), dict(given or {})
    unknown = sorted(set(given) - set(codes.tolist()))
    if unknown:
        raise ArgumentError(f"anticipated accuracies given for codes {unknown}, which are not strata of "
                            f"{header.path} (strata: {codes.tolist()})")

    def default(code: int) -> float:
        stable = header.kind == "classification" or by_code[code].name == _UNCHANGED_CLASS.name
        return ANTICIPATED_STABLE if stable else ANTICIPATED_CHANGE

    return np.array([given.get(c, default(c)) for c in codes.tolist()], np.float64)


def plan_sample(header: MapHeader, pixel_counts: np.ndarray, *, n: int | None = None,
                allocation: str = "proportional", counts: Mapping[int, int] | None = None,
                anticipated: Mapping[int, float] | None = None, minimum: int = MIN_PER_STRATUM,
                include_masks: bool = False, seed: int | None = None) -> SampleDesign:
    """The strata of a map and the points each gets: ``n`` shared by ``allocation``
    (:func:`s2lc.assessment.allocate`), or ``counts`` per code.

    Args:
        header: the map.
        pixel_counts: (256,) pixels per code (:func:`count_map`).
        n: points in all; or give ``counts``.
        allocation: "proportional", "equal" or "neyman".
        counts: code → points, for every stratum (at least 2, or all its pixels).
        anticipated: code → anticipated user's accuracy, for Neyman (defaults: 0.9 for stable
            classes, 0.7 for change classes).
        minimum: points per stratum at least, with ``n``.
        include_masks: make cloud, snow or ice and "not compared" strata too.
        seed: the random seed; None draws one (recorded in the design).

    Raises:
        ArgumentError: neither or both of ``n`` and ``counts``; counts that miss a stratum, name
            a code that is not one, or are below 2 or above the stratum's pixels; as
            :func:`s2lc.assessment.allocate`.
        MapError: the map holds no pixel to sample.
    """
    if (n is None) == (counts is None):
        raise ArgumentError("give either n (with an allocation) or counts per code")
    masks = header.mask_codes()
    present = [c for c in np.flatnonzero(pixel_counts).tolist() if c != header.nodata]
    codes = np.array([c for c in present if include_masks or c not in masks], np.int64)
    excluded = {c: int(pixel_counts[c]) for c in present if c not in codes}
    if not len(codes):
        raise MapError(f"{header.path}: holds no pixel to sample (only no data or masks); pass another map"
                       + ("" if include_masks else ", or sample the masks too"))
    pixels = pixel_counts[codes].astype(np.int64)
    seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
    if counts is not None:
        got = np.array([int(counts.get(c, -1)) for c in codes.tolist()], np.int64)
        missing, extra = codes[got < 0].tolist(), sorted(set(counts) - set(codes.tolist()))
        if missing or extra:
            raise ArgumentError(f"counts must give every stratum of {header.path} a number of points: "
                                + (f"missing {missing}" if missing else f"codes {extra} are not strata")
                                + f" (strata: {codes.tolist()})")
        low = np.minimum(2, pixels)
        wrong = [(c, k, N) for c, k, N, lo in zip(codes.tolist(), got, pixels, low) if k < lo or k > N]
        if wrong:
            c, k, N = wrong[0]
            raise ArgumentError(f"{header.path}: code {c}: {k} points for a stratum of {N} pixels; each stratum needs "
                                "at least 2 points (the variance needs 2) and at most its pixels")
        return SampleDesign(header, codes, pixels, got, "counts", seed, include_masks, excluded=excluded)
    ua = _anticipated_defaults(header, codes, anticipated) if allocation == "neyman" else None
    try:
        got = allocate(pixels, n, allocation, anticipated=ua, minimum=minimum)
    except ArgumentError as exc:
        raise ArgumentError(f"{header.path}: {exc}") from exc
    return SampleDesign(header, codes, pixels, got, allocation, seed, include_masks, minimum, ua, excluded)


def _draw_pixels(design: SampleDesign, progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, stratum index) of the points, in random order."""
    rng = np.random.default_rng(design.seed)
    ranks = draw_ranks(design.pixels, design.counts, rng)
    seen = np.zeros(len(design.codes), np.int64)
    found = []
    for row0, strip in _strips(design.map, progress, "sampling"):
        r, c, s = locate_ranks(strip, design.codes, seen, ranks)
        found.append((r + row0, c, s))
    rows, cols, strata = (np.concatenate(parts) for parts in zip(*found))
    if not np.array_equal(seen, design.pixels):
        raise MapError(f"{design.map.path}: changed while it was read; sample it again")
    order = rng.permutation(len(rows))
    return rows[order], cols[order], strata[order]


# --------------------------------------------------------------------------------------------
# The GeoPackage


def write_samples(path: str | os.PathLike, design: SampleDesign, rows: np.ndarray, cols: np.ndarray,
                  strata: np.ndarray, overwrite: bool = False) -> Path:
    """Write the points as a GeoPackage 1.2 layer :data:`LAYER`, with its QGIS style and form and
    the :data:`DESIGN_TABLE`.

    Args:
        path: the ``.gpkg``.
        design: the design the points were drawn by.
        rows, cols: (n,) pixel of each point; strata: (n,) its index in ``design.codes``.
        overwrite: replace an existing file.

    Raises:
        OutputError: as :func:`s2lc.files.atomic_path`.
    """
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    from s2lc.qgis import sample_points_qml
    from s2lc.writers.vectors import _GPKG_VERSION, _add_default_style

    path = Path(path)
    header, by_code = design.map, design.map.by_code()
    x, y = header.transform @ (cols + 0.5, rows + 0.5)
    codes = design.codes[strata]
    gdf = gpd.GeoDataFrame({
        "map_code": codes.astype(np.int32),
        "map_class": [by_code[c].name for c in codes.tolist()],
        "reference": pd.array([None] * len(codes), dtype="Int32"),
        "notes": pd.Series([None] * len(codes), dtype=object),
    }, geometry=gpd.points_from_xy(x, y), crs=header.crs.to_wkt())
    labels = [c for c in header.classes if c.name not in MASKS]
    qml = sample_points_qml(labels, aliases={"reference": "Reference class", "notes": "Notes"})
    with atomic_path(path, overwrite) as tmp:
        pyogrio.write_dataframe(gdf, tmp, layer=LAYER, driver="GPKG", geometry_type="Point",
                                dataset_options={"VERSION": _GPKG_VERSION},
                                layer_options={"DESCRIPTION": f"stratified random sample of {header.path.name}"})
        _add_default_style(tmp, LAYER, qml, None)
        _add_design(tmp, design)
    logger.info("wrote %d points to %s (layer %s)", len(codes), path, LAYER)
    return path


def _add_design(path: Path, design: SampleDesign) -> None:
    about = {k: v for k, v in design.to_dict().items() if k != "strata"}
    with closing(sqlite3.connect(path)) as con, con:
        con.execute(f"CREATE TABLE {DESIGN_TABLE} (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "
                    "code INTEGER NOT NULL UNIQUE, name TEXT, label TEXT, "
                    "pixels INTEGER, area_ha REAL, n INTEGER, anticipated_users_accuracy REAL)")
        con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                    "VALUES (?, 'attributes', ?, ?)", (DESIGN_TABLE, DESIGN_TABLE, json.dumps(about)))
        con.executemany(f"INSERT INTO {DESIGN_TABLE} (code, name, label, pixels, area_ha, n, anticipated_users_accuracy) "
                        "VALUES (:code, :name, :label, :pixels, :area_ha, :n, :anticipated_users_accuracy)", design.rows())


def draw_sample(map_path: str | os.PathLike, out: str | os.PathLike, *, n: int | None = None,
                allocation: str = "proportional", counts: Mapping[int, int] | None = None,
                anticipated: Mapping[int, float] | None = None, minimum: int = MIN_PER_STRATUM,
                include_masks: bool = False, seed: int | None = None, overwrite: bool = False,
                progress: bool = False) -> SampleDesign:
    """Draw a stratified random sample of a map's pixels and write it as a GeoPackage to label.

    Arguments as :func:`plan_sample`; ``out`` is the ``.gpkg`` to write, ``overwrite`` replaces
    it, ``progress`` shows bars on stderr.

    Returns:
        The design (its ``seed`` is the one used, drawn when ``seed`` is None).

    Raises:
        MapError: as :func:`open_map` and :func:`count_map`.
        ArgumentError: as :func:`plan_sample`.
        OutputError: ``out`` exists (without ``overwrite``) or cannot be written.
    """
    from s2lc.files import check_outputs

    check_outputs([out], overwrite)
    header = open_map(map_path)
    design = plan_sample(header, count_map(header, progress), n=n, allocation=allocation, counts=counts,
                         anticipated=anticipated, minimum=minimum, include_masks=include_masks, seed=seed)
    if design.excluded:
        names = ", ".join(f"{header.by_code()[c].label} ({N:,} px)" for c, N in design.excluded.items())
        logger.info("masks left out of the sample (and of the area assessed): %s", names)
    rows, cols, strata = _draw_pixels(design, progress)
    write_samples(out, design, rows, cols, strata, overwrite)
    return design


@dataclass(frozen=True, eq=False)
class Samples:
    """Sample points read back from a GeoPackage."""

    path: Path
    fid: np.ndarray  #: (n,) int64 feature ids
    x: np.ndarray  #: (n,) float64, in the map's CRS
    y: np.ndarray
    map_code: np.ndarray  #: (n,) int64
    reference: np.ndarray  #: (n,) int64, −1 where not labelled
    design: dict[int, int] | None  #: stratum code → pixels, from the design table; None without one


def read_samples(path: str | os.PathLike, crs: CRS) -> Samples:
    """Read the points of a sample GeoPackage, in ``crs``.

    The layer is :data:`LAYER`, else the only point layer. It must have integer fields
    ``map_code`` and ``reference``; an empty ``reference`` (NULL) is a point not labelled yet.

    Raises:
        DatasetError: the file is not a GeoPackage (or vector file) that can be read; it has no
            point layer, or no ``map_code`` or ``reference`` field; a value that is not a whole
            number.
    """
    import pandas as pd
    import pyogrio
    from pyogrio.errors import DataSourceError

    path = Path(path)
    what = "pass the GeoPackage that `s2lc sample` wrote"
    try:
        layers = pyogrio.list_layers(path)
    except DataSourceError as exc:
        raise DatasetError(f"{path}: cannot be read as a GeoPackage; {what}") from exc
    names = [str(name) for name, _ in layers]
    points = [str(name) for name, kind in layers if kind and "Point" in str(kind)]
    layer = LAYER if LAYER in names else points[0] if len(points) == 1 else None
    if layer is None:
        raise DatasetError(f"{path}: has no layer {LAYER!r} and {len(points) or 'no'} point layers; {what}")
    gdf = pyogrio.read_dataframe(path, layer=layer, fid_as_index=True)
    missing = [f for f in ("map_code", "reference") if f not in gdf.columns]
    if missing:
        raise DatasetError(f"{path}: layer {layer} has no {' or '.join(missing)} field (it has "
                           f"{', '.join(map(str, gdf.columns.drop('geometry'))) or 'none'}); {what}")
    if not len(gdf):
        raise DatasetError(f"{path}: layer {layer} holds no points; {what}")
    if gdf.geometry.isna().any() or set(gdf.geom_type.dropna()) != {"Point"}:
        raise DatasetError(f"{path}: layer {layer} holds features that are not points; {what}")
    if gdf.crs is None:
        logger.warning("%s has no CRS; its points are taken to be in the map's, %s", path, crs.to_string())
    elif CRS.from_user_input(gdf.crs) != crs:
        gdf = gdf.to_crs(crs.to_wkt())
    values = {}
    for name in ("map_code", "reference"):
        v = pd.to_numeric(gdf[name], errors="coerce")
        bad = gdf.index[(v.isna() & gdf[name].notna()) | (v.notna() & (v != v.round()))]
        if len(bad):
            raise DatasetError(f"{path}: {name} of feature {bad[0]} is {gdf[name][bad[0]]!r}, not a class code "
                               f"({len(bad)} such); give the class's integer code")
        values[name] = v.fillna(-1).astype(np.int64).to_numpy()
    if (values["map_code"] < 0).any():
        raise DatasetError(f"{path}: feature {gdf.index[values['map_code'] < 0][0]} has no map_code; {what}")
    return Samples(path, gdf.index.to_numpy(np.int64), gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy(),
                   values["map_code"], values["reference"], _read_design(path, names))


def _read_design(path: Path, layers: list[str]) -> dict[int, int] | None:
    if DESIGN_TABLE not in layers:
        return None
    import pyogrio

    table = pyogrio.read_dataframe(path, layer=DESIGN_TABLE, read_geometry=False)
    if not {"code", "pixels"} <= set(table.columns):
        raise DatasetError(f"{path}: its {DESIGN_TABLE} table has no code or pixels column; sample the map again")
    return {int(c): int(N) for c, N in zip(table["code"], table["pixels"])}
