"""Many products at once: each product one task, in this process or on a Dask cluster.

:func:`classify_many` runs :func:`s2lc.classify.classify` and :meth:`~s2lc.classify.Classification.save`
for every product, writing ``<out_dir>/<product id>/``. With a ``dask.distributed`` client each
product is one task (``client.map``), and nothing but paths and options travels to the workers:
each reads its product and writes its outputs itself. Without one, the products run one after
another in this process. Either way:

* a product that fails is reported with its one-line error and does not stop the others;
* outputs stay atomic (:func:`s2lc.files.staged_outputs`); a task that starts removes what a
  task killed before it left in the product's folder (the hidden staging folders), so a task
  rerun on another worker after a worker died leaves nothing half-written;
* with ``skip_existing``, a product whose outputs all exist is skipped, so a rerun after a crash
  continues where it stopped.

Each worker process loads the model once (:func:`_cached_model`) and limits its torch threads to
its share of the cores, so that N workers share the machine instead of fighting over it. The
scheduler itself (LocalCluster, dask-jobqueue, Kubernetes) is Dask's.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s2lc.errors import ArgumentError, S2lcError
from s2lc.naming import OPTIONAL_OUTPUTS, OUTPUT_SUFFIXES

if TYPE_CHECKING:
    import pandas

__all__ = ["BATCH_SUMMARY", "change_many", "classify_many", "dask_client", "expand_inputs", "group_maps", "map_tile",
           "product_id", "start_client", "tile_of"]

logger = logging.getLogger(__name__)

#: The batch summary's file names in the output folder.
BATCH_SUMMARY = ("batch_summary.csv", "batch_summary.json")
_MODELS: dict[tuple[str, int, int] | None, Any] = {}  # per process: the model each task reuses
_GLOB_CHARS = frozenset("*?[")
#: The MGRS tile in a product id: ``…_T33UUU_…``.
_TILE_RE = re.compile(r"_(T\d{2}[A-Z]{3})(?:_|$)")
#: The group of maps whose product id names no tile.
UNTILED = "untiled"


def expand_inputs(items: Sequence[str | os.PathLike]) -> list[Path]:
    """Products from paths, globs (``data/*.SAFE``) and lists (``@products.txt``: one path or glob a
    line; blank lines and ``#`` comments skipped; relative paths from the list's folder).

    Raises:
        ArgumentError: a path that does not exist, a glob that matches nothing, a list that
            cannot be read, two inputs with one product id, or no input at all.
    """
    paths: list[Path] = []
    for item in map(str, items):
        if item.startswith("@"):
            listed = Path(item[1:])
            try:
                lines = listed.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ArgumentError(f"{listed}: cannot read the list of products ({exc.strerror})") from None
            entries = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
            paths += expand_inputs([e if Path(e).is_absolute() else str(listed.parent / e) for e in entries])
        elif _GLOB_CHARS & set(item):
            found = sorted(glob.glob(item))
            if not found:
                raise ArgumentError(f"{item}: matches no file or folder")
            paths += [Path(p) for p in found]
        else:
            path = Path(item)
            if not path.exists():
                raise ArgumentError(f"{path}: no such file or folder; check the path")
            paths.append(path)
    if not paths:
        raise ArgumentError("no products given")
    seen: dict[str, Path] = {}
    for path in paths:
        pid = product_id(path)
        if pid in seen:
            raise ArgumentError(f"{seen[pid]} and {path} are both product {pid}; give each product once")
        seen[pid] = path
    return paths


def product_id(path: str | os.PathLike) -> str:
    """The id a product's outputs are named after, from its path alone (as :attr:`s2lc.product.Product.id`
    gives it for products named as ESA names them): the ``.SAFE`` folder or zip without
    ``.SAFE``/``.zip``, a GeoTIFF's stem."""
    path = Path(path)
    if path.name.startswith("MTD_MSI"):
        path = path.parent
    name = path.name
    for suffix in (".zip", ".SAFE", ".tif", ".tiff"):
        if name.lower().endswith(suffix.lower()):
            name = name[: -len(suffix)]
    return name


def _cached_model(model: str | os.PathLike | None):
    """The model, loaded once per process (a changed file is loaded again)."""
    from s2lc.classify import load_model

    key = None
    if model is not None:
        st = Path(model).stat()
        key = (str(Path(model).resolve()), st.st_mtime_ns, st.st_size)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_model(model)
    return _MODELS[key]


def _expected(out: Path, pid: str, polygons: bool) -> list[Path]:
    kinds = [k for k in OUTPUT_SUFFIXES if (polygons or k != "polygons") and k not in OPTIONAL_OUTPUTS]
    return [out / f"{pid}{OUTPUT_SUFFIXES[k]}" for k in kinds]


def _clear_scratch(folder: Path) -> None:
    """Remove the hidden staging folders a killed task left (``.<name>.<random>.s2lc-tmp``)."""
    if folder.is_dir():
        for scratch in folder.glob(".*.s2lc-tmp"):
            shutil.rmtree(scratch, ignore_errors=True)


def _classify_task(product: str, out_dir: str, model: str | None, options: dict[str, Any], skip_existing: bool,
                   overwrite: bool, polygons: bool, threads: int | None) -> dict[str, Any]:
    """One product, start to end; never raises for the product's own errors."""
    from s2lc.classify import classify

    pid = product_id(product)
    out = Path(out_dir) / pid
    row: dict[str, Any] = {"product": product, "product_id": pid, "status": "", "seconds": 0.0, "outputs": {},
                           "error": None}
    expected = _expected(out, pid, polygons)
    if skip_existing and all(p.exists() for p in expected):
        return {**row, "status": "skipped", "outputs": {p.name: str(p) for p in expected}}
    if threads:  # this worker's share of the cores, for torch and for decoding
        import torch

        from s2lc import product as product_module

        torch.set_num_threads(threads)
        product_module.DECODE_THREADS = threads
    t0 = time.perf_counter()
    _clear_scratch(out)
    # some outputs but not all: a run killed while renaming them into place; this one replaces them
    partial = any(p.exists() for p in expected) and not all(p.exists() for p in expected)
    try:
        result = classify(product, _cached_model(model), **options)
        paths = result.save(out, overwrite=overwrite or partial, polygons=polygons)
        row.update(status="done", outputs={k: str(p) for k, p in paths.items()})
    except (S2lcError, OSError) as exc:
        row.update(status="failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    row["seconds"] = time.perf_counter() - t0
    return row


def start_client(cluster: str | None = None, scheduler: str | None = None):
    """A ``dask.distributed`` client: ``cluster="local"`` or ``"local:N"`` starts a LocalCluster of N
    worker processes (one thread each; N defaults to the cores); ``scheduler`` is the address
    (``tcp://host:8786``) or the scheduler file of a running cluster. None when neither is given.

    Raises:
        DependencyError: dask.distributed is not installed. ArgumentError: a bad ``cluster`` value.
    """
    if cluster is None and scheduler is None:
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        from s2lc.errors import DependencyError

        raise DependencyError("running on a cluster needs dask.distributed: pip install 's2lc[cluster]'") from None
    # Dask logs its life (workers, comms) at INFO, each module's logger set by Dask's config:
    # that is s2lc's -v, not its default
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in [n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("distributed", "bokeh", "tornado")]:
            logging.getLogger(name).setLevel(logging.WARNING)
    if scheduler is not None:
        if Path(scheduler).is_file():
            return Client(scheduler_file=scheduler)
        return Client(scheduler)
    name, _, n = cluster.partition(":")
    if name != "local" or (n and not n.isdigit()) or n == "0":
        raise ArgumentError(f"--cluster {cluster!r}: give local or local:N (N worker processes)")
    workers = int(n) if n else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"))


@contextmanager
def dask_client(cluster: str | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """:func:`start_client` as a context: the client (None without ``cluster`` or ``scheduler``),
    closed at the end, and the LocalCluster it started with it."""
    client = start_client(cluster, scheduler)
    try:
        yield client
    finally:
        if client is not None:
            started = client.cluster if cluster is not None else None
            client.close()
            if started is not None:
                started.close()


def classify_many(products: Sequence[str | os.PathLike], out_dir: str | os.PathLike, model: str | os.PathLike | None = None,
                  *, client=None, skip_existing: bool = False, overwrite: bool = False, polygons: bool = True,
                  progress: bool = False, **classify_options: Any) -> pandas.DataFrame:
    """Classify many products, each into ``<out_dir>/<product id>/``, and write the batch summary.

    Args:
        products: product paths (see :func:`expand_inputs` for globs and lists).
        out_dir: the output folder (created if needed).
        model: checkpoint; the shipped model when None.
        client: a ``dask.distributed.Client`` to run each product as a task on; None: one after
            another in this process.
        skip_existing: skip a product whose outputs all exist.
        overwrite, polygons: as :meth:`s2lc.classify.Classification.save`.
        progress: one bar over the products on stderr.
        classify_options: :func:`s2lc.classify.classify`'s (``stride``, ``device``, …).

    Raises:
        ArgumentError: two products of one product id (their outputs would share a folder).

    Returns:
        One row per product, in the order given: ``product``, ``product_id``, ``status``
        (``done``, ``skipped``, ``failed``), ``seconds``, ``outputs`` (kind → path) and ``error``
        (its one-line message, or None). Also written as :data:`BATCH_SUMMARY` in ``out_dir``.
    """
    import pandas as pd
    from tqdm import tqdm

    from s2lc.files import make_folder

    paths = [str(Path(p)) for p in products]
    ids: dict[str, str] = {}
    for p in paths:
        if product_id(p) in ids:
            raise ArgumentError(f"{ids[product_id(p)]} and {p} are both product {product_id(p)}; give each product once")
        ids[product_id(p)] = p
    out = make_folder(out_dir)
    args = (str(out), None if model is None else str(model), dict(classify_options), skip_existing, overwrite,
            polygons)
    rows: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(paths), desc="products", unit="product", disable=not progress)
    if client is None:
        for p in paths:
            rows[p] = _classify_task(p, *args, None)
            bar.update()
    else:
        rows = _run_on(client, paths, args, bar)
    bar.close()
    table = pd.DataFrame([rows[p] for p in paths], columns=["product", "product_id", "status", "seconds", "outputs",
                                                             "error"])
    _write_summary(out, table)
    return table


def _run_on(client, paths: list[str], args: tuple, bar) -> dict[str, dict[str, Any]]:
    """Each product a task on the cluster; a task lost with its workers is reported failed."""
    from distributed import as_completed

    logger.info("Dask dashboard: %s", client.dashboard_link)
    workers = client.scheduler_info().get("workers", {})
    threads = 1 if workers else None
    futures = {client.submit(_classify_task, p, *args, threads, pure=False, key=f"classify-{product_id(p)}-"
                             f"{time.time_ns()}"): p for p in paths}
    rows: dict[str, dict[str, Any]] = {}
    for future in as_completed(futures):
        p = futures[future]
        try:
            rows[p] = future.result()
        except Exception as exc:  # the task's own errors are caught inside it: this is the cluster failing it
            rows[p] = {"product": p, "product_id": product_id(p), "status": "failed", "seconds": 0.0, "outputs": {},
                       "error": f"the cluster lost the task: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"}
        bar.update()
    return rows


def _write_summary(out: Path, table: pandas.DataFrame, key: str = "products") -> None:
    from s2lc import writers

    csv_table = table.assign(outputs=[json.dumps(o) for o in table["outputs"]])
    # the summary of the latest run replaces an earlier run's
    writers.write_text(out / BATCH_SUMMARY[0], csv_table.to_csv(index=False), overwrite=True)
    writers.write_json(out / BATCH_SUMMARY[1], {key: table.to_dict(orient="records"),
                                                "counts": table["status"].value_counts().to_dict()}, overwrite=True)


def map_tile(path: str | os.PathLike) -> str:
    """The MGRS tile of a map written by ``s2lc classify`` (from its ``S2LC_PRODUCT_ID``), or
    :data:`UNTILED`."""
    import rasterio

    with rasterio.open(path) as src:
        return tile_of(src.tags().get("S2LC_PRODUCT_ID", ""))


def tile_of(product_id: str) -> str:
    """The MGRS tile in a product id (``T33UVP`` of ``S2A_MSIL1C_…_T33UVP_…``), or :data:`UNTILED`."""
    match = _TILE_RE.search(product_id)
    return match.group(1) if match else UNTILED


def group_maps(paths: Sequence[str | os.PathLike]) -> dict[str, list[Path]]:
    """Maps by tile (:func:`map_tile`), tiles in name order; a tile's maps in the order given
    (:func:`s2lc.change.time_series` orders them by date)."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(map_tile(path), []).append(Path(path))
    return dict(sorted(groups.items()))


def _change_task(tile: str, maps: list[str], out_dir: str, options: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """One tile's comparison (two maps) or series (more), start to end; never raises for its own errors."""
    from s2lc import change

    row: dict[str, Any] = {"tile": tile, "maps": len(maps), "status": "", "seconds": 0.0, "outputs": {}, "error": None}
    if len(maps) < 2:
        return {**row, "status": "skipped", "error": f"{maps[0]}: the only map of tile {tile}; nothing to compare"}
    t0 = time.perf_counter()
    out = Path(out_dir) / tile
    _clear_scratch(out)
    try:
        result = change.compare(*maps, **options) if len(maps) == 2 else change.time_series(maps, **options)
        row.update(status="done", outputs={k: str(p) for k, p in result.save(out, overwrite=overwrite).items()})
    except (S2lcError, OSError) as exc:
        row.update(status="failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    row["seconds"] = time.perf_counter() - t0
    return row


def change_many(groups: dict[str, Sequence[str | os.PathLike]], out_dir: str | os.PathLike, *, client=None,
                overwrite: bool = False, progress: bool = False, **change_options: Any) -> pandas.DataFrame:
    """Each tile's comparison or series as one task, into ``<out_dir>/<tile>/``, and the batch summary.

    Args:
        groups: tile → its maps (:func:`group_maps`).
        out_dir: the output folder (created if needed).
        client: a ``dask.distributed.Client``; None: one tile after another in this process.
        overwrite: as :meth:`s2lc.change.ChangeResult.save`.
        progress: one bar over the tiles.
        change_options: :func:`s2lc.change.compare`'s (``align``, ``min_confidence``, …).

    Returns:
        One row per tile: ``tile``, ``maps``, ``status`` (``done``, ``skipped``: one map only,
        ``failed``), ``seconds``, ``outputs``, ``error``; also :data:`BATCH_SUMMARY` in ``out_dir``.
    """
    import pandas as pd
    from tqdm import tqdm

    from s2lc.files import make_folder

    out = make_folder(out_dir)
    tasks = {tile: [str(p) for p in maps] for tile, maps in groups.items()}
    args = (str(out), dict(change_options), overwrite)
    rows: dict[str, dict[str, Any]] = {}
    with tqdm(total=len(tasks), desc="tiles", unit="tile", disable=not progress) as bar:
        if client is None:
            for tile, maps in tasks.items():
                rows[tile] = _change_task(tile, maps, *args)
                bar.update()
        else:
            from distributed import as_completed

            futures = {client.submit(_change_task, tile, maps, *args, pure=False): tile for tile, maps in tasks.items()}
            for future in as_completed(futures):
                tile = futures[future]
                try:
                    rows[tile] = future.result()
                except Exception as exc:  # the cluster lost the task
                    rows[tile] = {"tile": tile, "maps": len(tasks[tile]), "status": "failed", "seconds": 0.0,
                                  "outputs": {}, "error": f"the cluster lost the task: {exc}"}
                bar.update()
    table = pd.DataFrame([rows[t] for t in tasks], columns=["tile", "maps", "status", "seconds", "outputs", "error"])
    _write_summary(out, table, "tiles")
    return table

