"""A Sentinel-2 scene to a land-cover map: read → cut → predict → assemble, then write.

The scene is processed in strips of patch rows: a reader thread decodes the next strip while
the model labels the current one, so memory stays bounded by a strip (about 1 024 rows) plus
the outputs, whatever the scene size. Patches follow :mod:`s2lc.tiling`; a patch with no valid
pixel is skipped, and one whose cloud and snow fraction (of its valid pixels) exceeds
``max_cloud`` is masked instead of being labelled: its cells are coded snow or ice where they hold
more snow than cloud, else cloud. Saturated and defective pixels are no data.

Map codes: 0 no-data, 1..n the model's classes, n + 1 cloud, n + 2 snow or ice (:mod:`s2lc.legend`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from s2lc import __version__
from s2lc.errors import ModelError
from s2lc.gdal import gdal_env
from s2lc.legend import Legend
from s2lc.mosaic import CellRows, Mosaic, expand_cells
from s2lc.naming import OUTPUT_SUFFIXES
from s2lc.suitability import check_input
from s2lc.tiling import Strip, TileGrid
from s2lc.writers import count_codes

if TYPE_CHECKING:
    from s2lc.checkpoint import LoadedModel
    from s2lc.product import Product

__all__ = ["Classification", "OUTPUT_SUFFIXES", "classify", "load_model", "output_files", "output_paths"]

logger = logging.getLogger(__name__)


def load_model(model: str | os.PathLike | None = None):
    """Load a checkpoint for inference (batch norm folded into the convolutions), the shipped
    EuroSAT model when ``model`` is None.

    Raises:
        CheckpointError: missing or invalid file.
    """
    from s2lc.checkpoint import load_checkpoint
    from s2lc.models import SHIPPED_MODEL

    return load_checkpoint(SHIPPED_MODEL if model is None else model, fuse=True)


def _true_colour(prod: "Product") -> np.ndarray | None:
    """The scene at the quicklook's size, (h', w', 4) RGBA, for beside the map and for
    ``<id>_truecolour.tif``; None without B04, B03 and B02."""
    from s2lc.writers import quicklook_step, true_colour_preview

    if not {"B04", "B03", "B02"} <= set(prod.bands_available):
        return None
    h, w = prod.grid.shape
    step = quicklook_step((h, w))  # as write_quicklook decimates the map
    rgb = prod.read_averaged(["B04", "B03", "B02"], (math.ceil(h / step), math.ceil(w / step)))
    return true_colour_preview(rgb, alpha=True)


def output_files(paths: dict[str, Path]) -> list[Path]:
    """Every file written for ``paths`` (see :func:`output_paths`), styles and GDAL sidecars included."""
    from s2lc.writers import with_sidecars

    return with_sidecars(paths.values())


def output_paths(out_dir: str | os.PathLike, product_id: str) -> dict[str, Path]:
    """Where :meth:`Classification.save` writes each output for ``product_id``."""
    out = Path(out_dir)
    return {k: out / f"{product_id}{suffix}" for k, suffix in OUTPUT_SUFFIXES.items()}


@dataclass
class Classification:
    """The result of :func:`classify`.

    Attributes:
        class_map: (h, w) uint8 codes on the product's 10 m grid (0 no-data, cloud = legend.cloud_code).
        transform, crs: the grid's georeferencing.
        legend: codes, names and colours.
        cell_map, cell_confidence: the same at cell resolution (one pixel per ``stride`` × ``stride``).
        stride: cell size in pixels.
        stats: areas per class (hectares), fractions, patch counts, timings.
        provenance: product, model and parameters, as written into every output.
        true_colour: (h', w', 4) uint8 RGBA: the scene in true colour at the quicklook's size
            (B04, B03, B02 averaged, each stretched between its 2nd and 98th percentiles; alpha
            0 where it has no data), or None where the product lacks those bands.
    """

    class_map: np.ndarray
    transform: Any
    crs: Any
    legend: Legend
    cell_map: np.ndarray
    cell_confidence: np.ndarray
    stride: int
    product_id: str
    stats: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    true_colour: np.ndarray | None = None  #: (h', w', 4) uint8 RGBA scene preview, or None

    def __repr__(self) -> str:
        h, w = self.class_map.shape
        p = self.stats.get("patches", {})
        return (f"<Classification {self.product_id} {w}x{h} stride={self.stride} {self.stats.get('status')}: "
                f"{p.get('classified')} patches classified, {p.get('cloud')} cloud>")

    @property
    def confidence(self) -> np.ndarray:
        """(h, w) float32 probability of the chosen class, NaN where no class was given.

        Expanded from :attr:`cell_confidence` on each access (a full tile is 480 MB), so
        hold on to the result rather than asking twice.
        """
        return self._confidence_rows()[0 : self.class_map.shape[0]]

    def _confidence_rows(self) -> "CellRows":
        return CellRows(self.cell_confidence, self.stride, self.class_map)

    @property
    def status(self) -> str:
        """``ok``, ``all cloud`` or ``no data``."""
        return self.stats["status"]

    def tags(self) -> dict[str, str]:
        """Provenance as GeoTIFF tags (``S2LC_*``)."""
        p = self.provenance
        return {
            "S2LC_PRODUCT_ID": p["product_id"],
            "S2LC_PRODUCT_LEVEL": p["level"],
            "S2LC_BASELINE": p["baseline"] or "",
            "S2LC_SENSING_TIME": p["sensing_time"] or "",
            "S2LC_OFFSET_APPLIED": json.dumps(p["offsets_applied"]),
            "S2LC_CLOUD_FRACTION": f"{p['cloud_fraction']:.6f}" if p["cloud_fraction"] is not None else "",
            "S2LC_CLOUD_SOURCE": p.get("cloud_source") or "",
            "S2LC_SNOW_SOURCE": p.get("snow_source") or "",
            **{f"S2LC_{k.upper()}_FRACTION": f"{p[f'{k}_fraction']:.6f}" if p.get(f"{k}_fraction") is not None else ""
               for k in ("snow", "saturated", "defective")},
            "S2LC_MODEL": p["model"]["name"],
            "S2LC_MODEL_SHA256": p["model"]["sha256"],
            "S2LC_PARAMETERS": json.dumps(p["parameters"]),
            "S2LC_AREA_HA": json.dumps(self.stats["area_ha"]),
            "S2LC_STATUS": self.status,
        }

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False, polygons: bool = True) -> dict[str, Path]:
        """Write the map, confidence, polygons, quicklook and summary JSON into ``out_dir``.

        All or nothing: the files are written into a hidden folder in ``out_dir`` and renamed
        into place once every one is written, so a failure leaves existing outputs as they
        were and adds none. Existing outputs are refused (before anything is written) unless
        ``overwrite``, which replaces the whole set: with ``polygons=False`` an older run's
        GeoPackage is removed, not left beside a map it does not describe.

        Returns:
            Output kind → path.

        Raises:
            OutputError: outputs exist, or the folder cannot be written.
        """
        from s2lc import writers
        from s2lc.files import make_folder, staged_outputs
        from s2lc.qgis import polygon_qml, polygon_sld

        out = make_folder(out_dir)
        paths = output_paths(out, self.product_id)
        # the polygons stay in the staged set when skipped: an older run's .gpkg is refused, or
        # removed with overwrite, rather than left beside a map it does not describe
        staged = output_files(paths)
        if not polygons:
            paths.pop("polygons")
        with staged_outputs(staged, overwrite) as stage:
            tags = self.tags()
            writers.write_class_map(stage(paths["map"]), self.class_map, self.transform, self.crs,
                                    self.legend.classes, tags)
            writers.write_confidence(stage(paths["confidence"]), self._confidence_rows(), self.transform, self.crs,
                                     tags)  # expanded row block by row block
            if polygons:
                writers.write_gpkg(stage(paths["polygons"]), self.polygons(), "landcover",
                                   polygon_qml(self.legend.classes), polygon_sld(self.legend.classes, "landcover"))
            writers.write_quicklook(stage(paths["quicklook"]), self.class_map, self.legend.classes,
                                    f"{self.product_id}\n{self.provenance['model']['name']}",
                                    true_colour=None if self.true_colour is None else self.true_colour[..., :3])
            if self.true_colour is not None:
                preview_tags = {k: tags.get(k, "") for k in ("S2LC_PRODUCT_ID", "S2LC_SENSING_TIME")}
                writers.write_true_colour(stage(paths["true_colour"]), self.true_colour, self._preview_transform(),
                                          self.crs, preview_tags)
            else:
                paths.pop("true_colour")
            summary = {"outputs": {k: p.name for k, p in paths.items()}, "provenance": self.provenance, "stats": self.stats}
            writers.write_json(stage(paths["summary"]), summary)
        return paths

    def _preview_transform(self):
        """The grid of :attr:`true_colour`: the map's extent in as many cells as the preview has pixels."""
        from affine import Affine

        (h, w), (ph, pw) = self.class_map.shape, self.true_colour.shape[:2]
        return self.transform @ Affine.scale(w / pw, h / ph)

    def polygons(self):
        """Polygons of adjacent cells of one class (code, name, hectares, mean confidence).

        Built from the cell-resolution map (one pixel per patch cell), clipped to the scene and
        cut back where a cell holds no-data pixels, so each class's polygons cover exactly its
        pixels in :attr:`class_map`.
        """
        import shapely
        from affine import Affine

        from s2lc import writers

        h, w = self.class_map.shape
        t = self.transform
        bounds = (t.c, t.f + h * t.e, t.c + w * t.a, t.f)
        cell_t = t @ Affine.scale(self.stride)
        gdf = writers.polygons(self.cell_map, cell_t, self.crs, self.legend.classes,
                               confidence=self.cell_confidence, bounds=bounds)
        holes = self._nodata_in_classed_cells()
        if not len(holes) or gdf.empty:
            return gdf
        geoms = gdf.geometry.values.copy()
        poly, hole = shapely.STRtree(holes).query(geoms, predicate="intersects")
        order = np.argsort(poly, kind="stable")
        starts = np.flatnonzero(np.diff(poly[order], prepend=-1))
        for i, near in zip(poly[order][starts], np.split(hole[order], starts[1:])):
            geoms[i] = shapely.difference(geoms[i], shapely.union_all(holes[near]))  # only the holes near it
        gdf = gdf.set_geometry(geoms)
        gdf["area_ha"] = shapely.area(geoms) / 10_000
        return gdf[~shapely.is_empty(geoms)].reset_index(drop=True)

    def _nodata_in_classed_cells(self) -> np.ndarray:
        """No-data pixels of cells that carry a code (cells are painted whole, the map per
        pixel), as an array of polygons (one per run of such pixels in a row of cells). Only
        the columns around such cells are traced."""
        import rasterio.features
        import shapely
        from affine import Affine

        s = self.stride
        w = self.class_map.shape[1]
        parts = []
        for r, codes in enumerate(self.cell_map):
            nodata = self.class_map[r * s : (r + 1) * s] == 0
            if not nodata.any():
                continue
            by_cell = np.zeros((nodata.shape[0], len(codes) * s), bool)
            by_cell[:, :w] = nodata
            hit = by_cell.reshape(nodata.shape[0], len(codes), s).any(axis=(0, 2)) & (codes != 0)
            if not hit.any():
                continue
            c0, c1 = np.flatnonzero(hit)[[0, -1]]
            x0, x1 = c0 * s, min((c1 + 1) * s, w)
            mask = nodata[:, x0:x1] & np.repeat(hit[c0 : c1 + 1], s)[: x1 - x0]
            t = self.transform @ Affine.translation(x0, r * s)
            parts += [shapely.geometry.shape(g) for g, _ in
                      rasterio.features.shapes(mask.view(np.uint8), mask=mask, transform=t)]
        return np.array(parts, dtype=object)


@dataclass
class _Block:
    """One strip of the scene as the model's input (the *read* stage's output).

    Attributes:
        strip: where it lies in the patch grid.
        x: (bands, h', w') model input padded to whole patches.
        valid: (h', w') bool, pixels holding usable data (not saturated or defective; False in the padding).
        cloud: (h', w') bool cloud among the valid pixels, or None where the product has no mask.
        snow: (h', w') bool snow or ice among the valid pixels (never under cloud), or None where not known.
        flagged: ``saturated`` and ``defective``, (h, w) bool over the strip's window (unpadded).
    """

    strip: Strip
    x: np.ndarray
    valid: np.ndarray
    cloud: np.ndarray | None
    snow: np.ndarray | None = None
    flagged: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Cut:
    """Which patches of a strip are labelled (the *cut* stage's output): (n_rows, cols) bool maps."""

    todo: np.ndarray
    empty: np.ndarray
    cloudy: np.ndarray  #: masked, more cloud than snow
    snowy: np.ndarray  #: masked, more snow than cloud
    valid_cells: np.ndarray  #: valid pixels per stride cell of the strip
    snowy_cells: np.ndarray  #: stride cells of the strip with more snow than cloud pixels


def _read(prod: "Product", contract, strip: Strip, timings: dict[str, float]) -> _Block:
    """Read stage: a strip's bands scaled to the model's input, its validity and clouds, padded."""
    from s2lc.patches import model_input, pad_block

    t0 = time.perf_counter()
    win = strip.window
    bands, saturated = prod.read_with_saturation(contract.bands, window=win)  # decoded side by side
    # NaN in the bands covers their NODATA
    masks = prod.read_masks(window=win, read_bands=contract.bands, saturated=saturated)
    x, valid = model_input(bands, contract, valid=masks.usable)
    del bands
    x, valid = pad_block(x, valid, strip.pad_bottom, strip.pad_right)
    timings["read"] += time.perf_counter() - t0
    flagged = {"saturated": masks.saturated, "defective": masks.defective}
    return _Block(strip, x, valid, _padded(masks.cloud, valid), _padded(masks.snow, valid), flagged)


def _padded(mask: np.ndarray | None, valid: np.ndarray) -> np.ndarray | None:
    """A mask of the strip's window on the padded block, and only where ``valid``."""
    if mask is None:
        return None
    out = np.zeros_like(valid)
    out[: mask.shape[0], : mask.shape[1]] = mask
    return out & valid


def _read_ahead(prod: "Product", contract, strips: list[Strip], timings: dict[str, float]) -> Iterator[_Block]:
    """The strips in order, the next one read on a thread while the caller works on the current one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_read, prod, contract, strips[0], timings)
        for i in range(len(strips)):
            block = pending.result()
            if i + 1 < len(strips):
                pending = pool.submit(_read, prod, contract, strips[i + 1], timings)
            yield block


def _cut(block: _Block, grid: TileGrid, max_cloud: float) -> _Cut:
    """Cut stage: a patch without valid pixels is empty, one over ``max_cloud`` of them cloud or
    snow is masked (cloudy or snowy, by which it holds more of), the rest are labelled."""
    from s2lc.patches import cell_counts, patch_counts

    m, nr, nc = grid.cells_per_patch, block.strip.n_rows, grid.cols
    valid_cells = cell_counts(block.valid, grid.stride)
    n_valid = patch_counts(valid_cells, m, nr, nc)
    cloud_cells = cell_counts(block.cloud, grid.stride) if block.cloud is not None else np.zeros_like(valid_cells)
    snow_cells = cell_counts(block.snow, grid.stride) if block.snow is not None else np.zeros_like(valid_cells)
    n_cloud, n_snow = patch_counts(cloud_cells, m, nr, nc), patch_counts(snow_cells, m, nr, nc)
    empty = n_valid == 0
    masked = ~empty & (n_cloud + n_snow > max_cloud * n_valid)
    snowy = masked & (n_snow > n_cloud)
    return _Cut(~empty & ~masked, empty, masked & ~snowy, snowy, valid_cells, snow_cells > cloud_cells)


def _predict(loaded, block: _Block, grid: TileGrid, todo: np.ndarray, options: dict[str, Any],
             timings: dict[str, float]) -> np.ndarray:
    """Predict stage: (n_rows, cols, classes) probabilities, zero where ``todo`` is False."""
    import torch

    from s2lc.inference import predict_proba
    from s2lc.patches import gather

    n_classes = len(loaded.contract.classes)
    probs = np.zeros(todo.shape + (n_classes,), np.float32)
    rows, cols = np.nonzero(todo)
    batch = options["batch_size"]
    # one batch copied out at a time: at stride 8 a strip holds 64 x its pixels in patches
    for start in range(0, len(rows), batch):
        r, c = rows[start : start + batch], cols[start : start + batch]
        sel = gather(block.x, grid, r, c)
        t0 = time.perf_counter()
        probs[r, c] = predict_proba(loaded.model, torch.from_numpy(sel), loaded.contract.divisor,
                                    temperature=loaded.contract.temperature, **options)
        timings["model"] += time.perf_counter() - t0
    return probs


class _Assembly:
    """Assemble stage: strips' probabilities into the cell map, their validity into the pixel map,
    and the patch and cloud tallies."""

    def __init__(self, grid: TileGrid, n_classes: int):
        self.grid = grid
        self.mosaic = Mosaic(grid, n_classes)
        self.valid_bits: list[np.ndarray] = []  # packed per-pixel validity, strip by strip (1 bit a pixel)
        self.pixels = dict.fromkeys(("cloud", "snow", "saturated", "defective"), 0)
        self.has_cloud_mask: bool | None = None
        self.has_snow_mask: bool | None = None
        self.patches = {"total": len(grid), "classified": 0, "cloud": 0, "snow": 0, "no_data": 0}

    def add(self, block: _Block, cut: _Cut, probs: np.ndarray) -> None:
        strip, stride = block.strip, self.grid.stride
        last = strip.first_row + strip.n_rows == self.grid.rows
        own_h = int(strip.window.height) if last else strip.n_rows * stride  # rows this strip owns
        self.valid_bits.append(np.packbits(block.valid[:own_h, : int(strip.window.width)], axis=1))
        self.has_cloud_mask = block.cloud is not None
        self.has_snow_mask = block.snow is not None
        for name, mask in (("cloud", block.cloud), ("snow", block.snow), *block.flagged.items()):
            if mask is not None:
                self.pixels[name] += int(mask[:own_h].sum())
        own_cells = -(-own_h // stride)
        first = strip.first_row
        self.mosaic.valid[first : first + own_cells, : cut.valid_cells.shape[1]] = cut.valid_cells[:own_cells]
        self.mosaic.snowy[first : first + own_cells, : cut.snowy_cells.shape[1]] = cut.snowy_cells[:own_cells]
        self.patches["classified"] += int(cut.todo.sum())
        self.patches["cloud"] += int(cut.cloudy.sum())
        self.patches["snow"] += int(cut.snowy.sum())
        self.patches["no_data"] += int(cut.empty.sum())
        self.mosaic.add(first, probs, cut.todo)

    def finish(self, legend: Legend, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(class map on the pixel grid, cell codes, cell confidence)."""
        cell_codes, cell_conf = self.mosaic.finish(legend.cloud_code, legend.snow_code)
        h, w = shape
        class_map = expand_cells(cell_codes, self.grid.stride, h, w)
        row = 0
        for bits in self.valid_bits:  # no data → 0, strip by strip (a whole-tile mask is 120 MB)
            valid = np.unpackbits(bits, axis=1, count=w).view(bool)
            np.putmask(class_map[row : row + len(valid)], ~valid, 0)
            row += len(valid)
        return class_map, cell_codes, cell_conf


def _check_product(prod: "Product", loaded) -> dict[str, float]:
    """Refuse a product without the model's bands; warn of a level, pixel size or bit depth the
    model did not see (:mod:`s2lc.suitability`). Returns each band's resolution in the files read."""
    contract = loaded.contract
    name = contract.name or loaded.path.name
    missing = [b for b in contract.bands if b not in prod.bands_available]
    if missing:
        raise ModelError(
            f"{prod.path}: lacks band(s) {', '.join(missing)} that model {name} needs "
            f"({', '.join(contract.bands)}); use a product with them or another model"
        )
    if prod.level != contract.level and prod.level in ("L1C", "L2A"):
        logger.warning(
            "model %s was trained on %s data but %s is %s: expect a domain shift (%s reflectance differs)",
            name, contract.level, prod.id, prod.level,
            "bottom-of-atmosphere" if prod.level == "L2A" else "top-of-atmosphere",
        )
    source_res = {b: prod.native_resolution(b) for b in contract.bands}
    for note in check_input(contract.bands, {b: prod.pixel_size(b) for b in contract.bands},
                            {b: prod.dtype(b) for b in contract.bands}, name, finer=not prod.warped_from):
        logger.warning("%s: %s", prod.id, note.text)
    return source_res


def _strip_rows(prod: "Product", bands: list[str], stride: int) -> int:
    """Whole pieces of the band files (JPEG 2000 tiles) near 1 024 rows, a multiple of ``stride``."""
    unit = math.lcm(prod.block_rows(bands), stride)
    return unit * max(1, round(1024 / unit)) if unit <= 4096 else 1024


def _stats(class_map: np.ndarray, prod: "Product", legend: Legend, assembly: _Assembly) -> dict[str, Any]:
    """Areas per class, fractions and patch counts of a finished map."""
    g = prod.grid
    px_area = abs(g.transform.a * g.transform.e)
    counts = count_codes(class_map)
    n_px = class_map.size
    n_valid_px = n_px - int(counts[0])
    status = "ok" if assembly.patches["classified"] else ("no data" if n_valid_px == 0 else "all cloud")
    px = assembly.pixels
    has = {"cloud": assembly.has_cloud_mask, "snow": assembly.has_snow_mask, "saturated": True, "defective": True}
    # of the pixels with data, flagged ones included (they are no data in the map)
    n_data = n_valid_px + px["saturated"] + px["defective"]
    return {
        "status": status,
        "pixels": n_px,
        "pixel_area_m2": px_area,
        "nodata_fraction": counts[0] / n_px,
        **{f"{k}_fraction": (px[k] / n_data) if (has[k] and n_data) else None for k in has},
        "map_cloud_fraction": counts[legend.cloud_code] / n_px,
        "map_snow_fraction": counts[legend.snow_code] / n_px,
        "area_ha": {c.name: float(counts[c.code] * px_area / 1e4) for c in legend.classes},
        "patches": dict(assembly.patches),
    }


def _provenance(prod: "Product", loaded, legend: Legend, stats: dict[str, Any], cloud_mask: bool | None,
                source_res: dict[str, float], parameters: dict[str, Any]) -> dict[str, Any]:
    """Product, model and parameters of a map, as written into every output."""
    contract = loaded.contract
    sensing = prod.sensing_time
    return {
        "product_id": prod.id,
        "product_path": str(prod.path),
        "level": prod.level,
        "baseline": prod.baseline,
        "tile": prod.tile,
        "sensing_time": sensing.isoformat() if isinstance(sensing, datetime) else sensing,
        "offsets_applied": {b: prod.offsets.get(b, 0.0) for b in contract.bands},
        "band_resolution_m": source_res,  # of the files read (resampled to the 10 m grid)
        "warped_from": prod.warped_from,  # a GeoTIFF not in metres, warped to UTM at 10 m on read
        "cloud_fraction": stats["cloud_fraction"],
        "cloud_mask": cloud_mask,
        "cloud_source": prod.cloud_source,  # the product's mask layer, or "s2cloudless" where s2lc detected them
        "snow_source": prod.snow_source,  # "SCL", "NDSI" or None
        **{f"{k}_fraction": stats[f"{k}_fraction"] for k in ("snow", "saturated", "defective")},
        "model": {
            "name": contract.name or loaded.path.stem,
            "file": loaded.path.name,
            "sha256": loaded.sha256,
            "arch": contract.arch,
            "bands": list(contract.bands),
            "level": contract.level,
        },
        "s2lc_version": __version__,
        "parameters": parameters,
        "legend": {str(c.code): c.name for c in legend.classes},
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _load(model, device: str, precision: str, max_cloud: float, stride: int):
    """The model for inference, its device and autocast dtype, once the parameters are known to be usable."""
    from s2lc.checkpoint import LoadedModel
    from s2lc.inference import resolve_device, resolve_precision

    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)  # validates the name early
    if not 0 <= max_cloud <= 1:
        raise ModelError(f"max_cloud must be between 0 and 1, got {max_cloud}")
    patch = int(loaded.contract.patch_size)
    if stride <= 0 or patch % stride:
        raise ModelError(f"stride {stride} must divide the model's patch size {patch} (e.g. 64, 32, 16)")
    return loaded, dev, dtype


def _label(prod: "Product", loaded, grid: TileGrid, rows_per_strip: int, max_cloud: float, options: dict[str, Any],
           timings: dict[str, float], progress: bool) -> _Assembly:
    """Every strip through read, cut and predict into one :class:`_Assembly`."""
    from tqdm import tqdm

    assembly = _Assembly(grid, len(loaded.contract.classes))
    strips = list(grid.strips(rows_per_strip))
    with tqdm(total=len(grid), desc=f"classifying {prod.id}", unit="patch", disable=not progress) as bar:
        for block in _read_ahead(prod, loaded.contract, strips, timings):
            cut = _cut(block, grid, max_cloud)
            assembly.add(block, cut, _predict(loaded, block, grid, cut.todo, options, timings))
            bar.update(block.strip.n_rows * grid.cols)
    return assembly


@gdal_env()  # s2lc's GDAL configuration, as on the command line (the read-ahead thread enters it itself)
def classify(
    product: "str | os.PathLike | Product",
    model: "str | os.PathLike | LoadedModel | None" = None,
    *,
    device: str = "auto",
    batch_size: int = 256,
    stride: int = 64,
    max_cloud: float = 0.5,
    precision: str = "auto",
    tta: bool = False,
    bands: dict[str, int] | None = None,
    clouds: str = "auto",
    strip_rows: int | None = None,
    progress: bool = False,
) -> Classification:
    """Classify a Sentinel-2 product (or a multi-band GeoTIFF) into a land-cover map.

    The scene goes through named stages, strip by strip: *read* (bands scaled to the model's
    input, validity and clouds, :mod:`s2lc.patches`), *cut* (which patches to label), *predict*,
    and *assemble* (the cell mosaic into the map); :meth:`Classification.save` *writes*.

    Args:
        product: ``.SAFE`` folder, zipped ``.SAFE`` or GeoTIFF, or a product already opened with
            :func:`s2lc.product.open_product` (then ``bands`` and ``clouds`` are ignored and it stays open).
        model: checkpoint path, or one already loaded with :func:`load_model`; the shipped
            EuroSAT model when None.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: patches per inference batch.
        stride: pixels between patch origins; 64 (no overlap) or a divisor of the patch size for
            overlapping patches whose probabilities are averaged.
        max_cloud: a patch whose cloud fraction exceeds this is marked cloud, not classified.
        precision: ``auto`` (fp16 on CUDA, bf16 on CPUs that support it natively), ``fp32``, ``bf16``, ``fp16``.
        tta: average each patch's probabilities over its 8 flips/rotations (test-time
            augmentation): more accurate, 8 × the model's time.
        bands: band id → 1-based index, for a GeoTIFF whose descriptions don't name its bands.
        clouds: where the cloud mask comes from: ``auto`` (the product's own; for a Level-1C product
            without one, s2cloudless's detection when installed), ``product``, ``s2cloudless``,
            ``none`` (:class:`s2lc.options.Clouds`).
        strip_rows: pixel rows read at a time (bounds memory: 45 MB of float32 a band across a whole
            tile for 1 024 rows); None: a multiple of the band files' internal tile height (and of
            ``stride``) near 1 024 rows, so that at stride 64 the strips of 10 m bands start and end
            on JPEG 2000 tile boundaries and no tile is decoded twice (overlapping strides and the
            cubic reach of 20/60 m bands still read a few rows of the next tile).
        progress: tqdm bar with ETA on stderr.

    Returns:
        A :class:`Classification`.

    Raises:
        ProductError: unreadable product. ModelError: the product lacks a band the model needs,
            a bad stride or device. CheckpointError: invalid model file.
    """
    import torch

    from s2lc.product import Product, open_product

    t_start = time.perf_counter()
    loaded, dev, dtype = _load(model, device, precision, max_cloud, stride)
    contract = loaded.contract
    patch = int(contract.patch_size)
    legend = Legend.from_names(contract.classes)
    timings = {"read": 0.0, "model": 0.0}
    options = {"batch_size": batch_size, "device": dev, "precision": precision, "tta": tta}

    # an open Product is used as it is (and left open); a path is opened and closed here
    opened = nullcontext(product) if isinstance(product, Product) else open_product(product, bands=bands, clouds=clouds)
    with opened as prod:
        source_res = _check_product(prod, loaded)
        grid = TileGrid(prod.grid.height, prod.grid.width, patch, stride)
        rows = strip_rows or _strip_rows(prod, list(contract.bands), stride)
        assembly = _label(prod, loaded, grid, max(1, rows // stride), max_cloud, options, timings, progress)
        class_map, cell_codes, cell_conf = assembly.finish(legend, prod.grid.shape)
        stats = _stats(class_map, prod, legend, assembly)
        stats["seconds"] = {**timings, "total": time.perf_counter() - t_start}
        precision_used = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        parameters = {"stride": stride, "max_cloud": max_cloud, "batch_size": batch_size, "device": str(dev),
                      "precision": precision, "precision_used": precision_used, "tta": tta, "patch_size": patch}
        provenance = _provenance(prod, loaded, legend, stats, assembly.has_cloud_mask, source_res, parameters)
        if stats["status"] != "ok":
            logger.warning("%s: no clear land to classify (%s): %.0f %% no data, %.0f %% cloud; the map says so",
                           prod.id, stats["status"], 100 * stats["nodata_fraction"], 100 * stats["map_cloud_fraction"])
        return Classification(class_map, prod.grid.transform, prod.grid.crs, legend, cell_codes, cell_conf, stride,
                              prod.id, stats, provenance, _true_colour(prod))
