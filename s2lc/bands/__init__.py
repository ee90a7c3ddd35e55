"""Which spectral bands carry the classes: one model per band set, trained and scored alike.

This is the band evaluation of EuroSAT's paper (Helber et al., "EuroSAT: A Novel Dataset and
Deep Learning Benchmark for Land Use and Land Cover Classification", IEEE JSTARS 12(7), 2019),
run on any EuroSAT-style multispectral dataset (:func:`s2lc.datasets.load_dataset`).

Band sets and channels: a set is one band or three. A single band is repeated on the network's
three input channels, as the paper did; a three-band set maps band 1, 2, 3 to channels 1, 2, 3,
so an ImageNet network starts from its R, G, B filters (B04/B03/B02 is true colour). Every model
is the same network, initialised the same way and trained for the same number of epochs with
the training recipe of :mod:`s2lc.training` (no epoch is chosen on held-out data).

Evaluation: the full EuroSAT MS (27 000 patches) uses s2lc's fixed split
(:func:`s2lc.datasets.split_indices`): trained on its training and validation parts (80 %),
scored on its test part (20 %), as the paper's 80/20 split. Smaller data use stratified K-fold
cross-validation (:func:`stratified_folds`), the same folds for every set, and pool the
out-of-fold predictions, so every patch is predicted once by a model that did not see it.

Confidence intervals (95 %): accuracy, Wilson's score interval for a binomial proportion over
the scored patches (:func:`wilson_interval`); macro F1, a percentile bootstrap over the scored
patches (:func:`bootstrap_macro_f1`, seeded). Every set is also compared with the best one on the
same patches (:func:`mcnemar_exact`): overlapping intervals do not mean "no difference".
The statistics live in :mod:`s2lc.bands.statistics`.

Results are kept per set in ``<out>/sets/<name>.json``; a set whose file is there is not trained
again. The table (``bands.csv``, ``bands.json``) and the chart (``bands.png``) are written at the
end, from every finished set.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from s2lc.bands.statistics import (
    bootstrap_macro_f1,
    macro_f1,
    mcnemar_exact,
    stratified_folds,
    wilson_interval,
)
from s2lc.datasets import PatchDataset, load_dataset
from s2lc.errors import ArgumentError, DatasetError, ModelError, OutputError
from s2lc.evaluation import classification_report
from s2lc.legend import EUROSAT_CLASSES
from s2lc.sentinel2 import BAND_IDS, EUROSAT_RGB_BANDS, band

__all__ = [
    "BandsConfig",
    "COMPOSITES",
    "EUROSAT_MS_SIZE",
    "SINGLE",
    "bootstrap_macro_f1",
    "channel_indices",
    "evaluate_bands",
    "macro_f1",
    "mcnemar_exact",
    "parse_band_sets",
    "plot_bands",
    "stratified_folds",
    "wilson_interval",
]

logger = logging.getLogger(__name__)

#: ``--sets`` word for every band on its own, one set each.
SINGLE = "single"
#: The band combinations of the EuroSAT paper (its table of band combinations): true colour,
#: colour-infrared, and short-wave infrared; channel order as listed.
COMPOSITES: dict[str, tuple[str, ...]] = {
    "rgb": EUROSAT_RGB_BANDS,
    "cir": ("B08", "B04", "B03"),
    "swir": ("B12", "B11", "B8A"),
}
#: Patches in the full EuroSAT dataset: the size at which the fixed split is used instead of folds.
EUROSAT_MS_SIZE = 27_000
_BAND_ID = re.compile(r"[Bb]\d[\dAa]")  #: what looks like a band id (checked against Sentinel-2's)
_SETS_DIR = "sets"
_OUTPUTS = ("bands.json", "bands.csv", "bands.png")


@dataclass(frozen=True)
class BandsConfig:
    """How every band set's model is trained and scored (recorded with each result)."""

    arch: str = "efficientnet_lite0"
    pretrained: str | None = "imagenet"  #: "imagenet", a local weights file, or None (from scratch)
    epochs: int = 7
    folds: int | None = None  #: K-fold cross-validation; None: the fixed split for the full EuroSAT, else 5
    seed: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    device: str = "auto"
    precision: str = "auto"
    bootstrap: int = 2000  #: bootstrap resamples for the macro F1 interval


# --------------------------------------------------------------------------------------------
# Band sets


def _set_name(bands: Sequence[str]) -> str:
    return bands[0] if len(bands) == 1 else "-".join(bands)


def parse_band_sets(values: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Band sets from ``--sets`` values: set name → band ids in channel order.

    Each value is either a comma-separated list of band ids, which make one set (``B08,B04,B03``;
    ``B04`` alone), or a comma-separated list of words (``single``, ``rgb``, ``cir``, ``swir``)
    and sets written with ``+`` (``rgb,B08+B11+B04``).

    Raises:
        ArgumentError: an unknown word or band, a set of other than one or three bands, a band
            twice in a set, words mixed with bare band ids, or no set at all.
    """
    sets: dict[str, tuple[str, ...]] = {}
    for value in values:
        tokens = [t.strip() for t in value.split(",") if t.strip()]
        bare = [t for t in tokens if _BAND_ID.fullmatch(t)]
        if bare and len(bare) < len(tokens):
            raise ArgumentError(f"--sets {value!r} mixes set names and bare bands; join the bands of one set with + "
                                f"({'+'.join(bare)}) or give them in a --sets of their own")
        if len(bare) > 1:
            tokens = ["+".join(tokens)]  # a list of bands is one set
        for token in tokens:
            word = token.lower()
            if word == SINGLE:
                groups = [(b,) for b in BAND_IDS]
            elif word in COMPOSITES:
                sets[word] = COMPOSITES[word]
                continue
            else:
                groups = [tuple(_band_id(b, token) for b in token.split("+"))]
            for bands in groups:
                if len(bands) not in (1, 3) or len(set(bands)) != len(bands):
                    raise ArgumentError(f"band set {token!r} has {len(bands)} band(s), {len(set(bands))} different; "
                                        "a set is one band (repeated on the three channels) or three different bands")
                sets[_set_name(bands)] = bands
    if not sets:
        raise ArgumentError(f"no band set given; use {SINGLE}, {', '.join(COMPOSITES)} or bands such as B08,B04,B03")
    return sets


def _band_id(text: str, token: str) -> str:
    if not _BAND_ID.fullmatch(text.strip()):
        raise ArgumentError(f"band set {token!r}: {text!r} is neither a band nor one of {SINGLE}, {', '.join(COMPOSITES)}")
    try:
        return band(text.strip()).id
    except KeyError:
        raise ArgumentError(f"band set {token!r}: {text!r} is not a Sentinel-2 band; use one of "
                            f"{', '.join(BAND_IDS)}") from None


def channel_indices(dataset_bands: Sequence[str], name: str, bands: Sequence[str], source: str = "dataset") -> list[int]:
    """Indices into the dataset's bands of the network's three channels for set ``name``.

    A single band fills all three channels; three bands map to channels 1, 2, 3 in order.

    Raises:
        DatasetError: the dataset lacks a band of the set (the message names the set and the band).
    """
    for b in bands:
        if b not in dataset_bands:
            raise DatasetError(f"{source}: band set {name} needs {b}, which the dataset lacks (it has "
                               f"{', '.join(dataset_bands)}); leave the set out or use data with {b}")
    idx = [list(dataset_bands).index(b) for b in bands]
    return idx * 3 if len(idx) == 1 else idx


# --------------------------------------------------------------------------------------------
# Evaluation plan


def _plan(ds: PatchDataset, folds: int | None, seed: int) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """How the sets are scored: a description and the (train, test) index pairs."""
    full = len(ds) == EUROSAT_MS_SIZE and set(ds.classes) == set(EUROSAT_CLASSES)
    if folds is None and full:
        train = np.sort(np.concatenate([ds.split("train"), ds.split("val")]))
        return "fixed split: train on s2lc's train+val (80 %), score on its test split (20 %)", [(train, ds.split("test"))]
    k = folds or 5
    try:
        fold = stratified_folds(ds.files, ds.labels, k, seed)
    except DatasetError as exc:
        raise DatasetError(f"{ds.source}: {exc}") from None
    return (f"stratified {k}-fold cross-validation (seed {seed}), out-of-fold predictions pooled",
            [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)])


# --------------------------------------------------------------------------------------------
# Training one set


def _train_config(config: BandsConfig, seed: int):
    from s2lc.training import TrainConfig

    return TrainConfig(arch=config.arch, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                       weight_decay=config.weight_decay, cutmix=0.0, seed=seed, pretrained=config.pretrained,
                       precision=config.precision, device=config.device, optimizer="adamw")


def _fit_predict(images: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, channel_bands: list[str],
                 n_classes: int, divisor: float, config: BandsConfig, seed: int, bar) -> np.ndarray:
    """Train one network on ``images[train]`` ((n, 3, h, w), the set's channels) for the configured
    epochs and return its (len(test),) predicted classes."""
    import torch

    from s2lc.inference import predict_proba, resolve_device
    from s2lc.models import build_model, load_pretrained
    from s2lc.training import _Data, _epoch, _Run

    tc = _train_config(config, seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = resolve_device(config.device)
    train_x = torch.from_numpy(images[train])
    sample = train_x.float() / divisor
    mean = sample.mean(dim=(0, 2, 3)).tolist()
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    model = build_model(config.arch, 3, n_classes, mean, std)
    if config.pretrained:
        load_pretrained(model, config.arch, config.pretrained, bands=channel_bands)
    model = model.to(device).to(memory_format=torch.channels_last)
    run = _Run.create(tc, model, math.ceil(len(train) / config.batch_size), gen, device)
    data = _Data(train_x, torch.from_numpy(labels[train]), images[:0], labels[:0], None, None, torch.ones(3),
                 divisor, False, n_classes)
    for epoch in range(config.epochs):
        _epoch(run, data, epoch, progress=False)
        bar.update(1)
    prob = predict_proba(run.model, images[test], divisor, batch_size=256, device=device, precision=config.precision)
    return prob.argmax(1)


def _score(name: str, bands: tuple[str, ...], y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str],
           config: BandsConfig) -> dict[str, Any]:
    """A set's figures: accuracy and macro F1 with their 95 % intervals, and the per-class report."""
    report = classification_report(y_true, y_pred, classes)
    correct = int((y_true == y_pred).sum())
    acc_ci = wilson_interval(correct, len(y_true))
    f1_ci = bootstrap_macro_f1(y_true, y_pred, len(classes), config.bootstrap, config.seed)
    return {"set": name, "bands": list(bands), "n": len(y_true), "accuracy": report["accuracy"],
            "accuracy_ci95": list(acc_ci), "macro_f1": report["macro_f1"], "macro_f1_ci95": list(f1_ci),
            "per_class": report["per_class"], "confusion_matrix": report["confusion_matrix"]}


def _run_set(ds: PatchDataset, name: str, bands: tuple[str, ...], plan, divisor: float, config: BandsConfig,
             progress: bool) -> dict[str, Any]:
    """Train and score one set over every (train, test) pair of the plan."""
    from tqdm import tqdm

    channels = channel_indices(ds.bands, name, bands, ds.source)
    images = ds.images[:, channels]
    pred = np.full(len(ds), -1, dtype=np.int64)
    t0 = time.perf_counter()
    per_fold = []
    with tqdm(total=len(plan) * config.epochs, desc=f"{name}: epochs", unit="epoch", leave=False,
              disable=not progress) as bar:
        for f, (train, test) in enumerate(plan):
            bar.set_postfix_str(f"fold {f + 1}/{len(plan)}")
            pred[test] = _fit_predict(images, ds.labels, train, test, [ds.bands[c] for c in channels],
                                      len(ds.classes), divisor, config, config.seed + f, bar)
            per_fold.append(float((pred[test] == ds.labels[test]).mean()))
    scored = np.flatnonzero(pred >= 0)
    result = _score(name, bands, ds.labels[scored], pred[scored], ds.classes, config)
    result.update(channels=[ds.bands[c] for c in channels], fold_accuracy=per_fold,
                  seconds=round(time.perf_counter() - t0, 1), predictions=pred.tolist())
    logger.info("%s: accuracy %.4f [%.4f, %.4f], macro F1 %.4f (%.0f s)", name, result["accuracy"],
                *result["accuracy_ci95"], result["macro_f1"], result["seconds"])
    return result


# --------------------------------------------------------------------------------------------
# The run: sets in turn, resumable, then the table and the chart


def _fingerprint(ds: PatchDataset) -> str:
    """SHA-256 of the patches' ``<Class>/<file>`` keys and labels: the same data, the same folds."""
    h = hashlib.sha256()
    for key, label in zip(ds.files, ds.labels.tolist()):
        h.update(f"{key}\t{label}\n".encode())
    return h.hexdigest()


def _identity(config: BandsConfig, ds: PatchDataset, evaluation: str) -> dict[str, Any]:
    """What a finished set must have been made with to be kept on resume (the device is not part of it)."""
    settings = {k: v for k, v in asdict(config).items() if k != "device"}
    return {"settings": settings, "dataset": {"n": len(ds), "classes": list(ds.classes), "sha256": _fingerprint(ds)},
            "evaluation": evaluation}


def _finished(path: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result at ``path`` when it was made the same way, None when there is none.

    Raises:
        OutputError: it was made with other settings or other data, or cannot be read.
    """
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path}: unreadable ({exc}); delete it to evaluate the set again") from exc
    was = stored.get("made_with", {})
    if was != identity:
        diff = [f"{k} was {was.get('settings', {}).get(k)!r}" for k, v in identity["settings"].items()
                if was.get("settings", {}).get(k) != v]
        if was.get("dataset") != identity["dataset"]:
            diff.append("the data differ")
        if was.get("evaluation") != identity["evaluation"]:
            diff.append(f"evaluation was {was.get('evaluation')!r}")
        raise OutputError(f"{path}: made with other settings ({'; '.join(diff) or 'unknown'}); use the same "
                          "settings to resume, or another output folder")
    return stored


def _write_json(path: Path, data: Any) -> None:
    from s2lc.files import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


_COLUMNS = ("rank", "set", "bands", "accuracy", "accuracy_ci95_low", "accuracy_ci95_high", "macro_f1",
            "macro_f1_ci95_low", "macro_f1_ci95_high", "n", "only_best_right", "only_this_right", "vs_best_p", "seconds")


def _vs_best(best: dict[str, Any], other: dict[str, Any], labels: np.ndarray) -> dict[str, Any]:
    """``other`` against ``best`` on the patches both predicted: how many only one of them gets
    right, and the exact McNemar p-value of the difference."""
    a, b = np.asarray(best["predictions"]), np.asarray(other["predictions"])
    both = (a >= 0) & (b >= 0)
    only_best = int(((a == labels) & (b != labels) & both).sum())
    only_this = int(((b == labels) & (a != labels) & both).sum())
    return {"only_best_right": only_best, "only_this_right": only_this, "vs_best_p": mcnemar_exact(only_best, only_this)}


def _rows(results: list[dict[str, Any]], labels: np.ndarray) -> list[dict[str, Any]]:
    """The table's rows, best accuracy first (ties: macro F1, then set name), each compared with the first."""
    ordered = sorted(results, key=lambda r: (-r["accuracy"], -r["macro_f1"], r["set"]))
    return [{"rank": i + 1, "set": r["set"], "bands": "+".join(r["bands"]), "accuracy": round(r["accuracy"], 4),
             "accuracy_ci95_low": round(r["accuracy_ci95"][0], 4), "accuracy_ci95_high": round(r["accuracy_ci95"][1], 4),
             "macro_f1": round(r["macro_f1"], 4), "macro_f1_ci95_low": round(r["macro_f1_ci95"][0], 4),
             "macro_f1_ci95_high": round(r["macro_f1_ci95"][1], 4), "n": r["n"], **_vs_best(ordered[0], r, labels),
             "seconds": r["seconds"]}
            for i, r in enumerate(ordered)]


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def plot_bands(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Accuracy per set as horizontal bars, best at the top, each with its 95 % interval, and the
    macro F1 as a dot."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    y = np.arange(len(rows))
    acc = np.array([r["accuracy"] for r in rows]) * 100
    low = np.array([r["accuracy_ci95_low"] for r in rows]) * 100
    high = np.array([r["accuracy_ci95_high"] for r in rows]) * 100
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.27 * len(rows)))
    ax.barh(y, acc, color="#4c72b0", height=0.65, label="accuracy")
    ax.errorbar(acc, y, xerr=[acc - low, high - acc], fmt="none", ecolor="#222222", capsize=2.5, lw=1,
                label="95 % CI (Wilson)")
    ax.scatter([r["macro_f1"] * 100 for r in rows], y, marker="D", s=14, color="#dd8452", zorder=3, label="macro F1")
    ax.set_yticks(y, [r["set"] for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _write_outputs(out: Path, results: list[dict[str, Any]], labels: np.ndarray, meta: dict[str, Any]) -> dict[str, Path]:
    """``bands.json``, ``bands.csv`` and ``bands.png``, all or nothing."""
    from s2lc.files import staged_outputs

    paths = {name: out / name for name in _OUTPUTS}
    rows = _rows(results, labels)
    by_set = {r["set"]: r for r in results}
    table = [{**row, "channels": by_set[row["set"]]["channels"], "fold_accuracy": by_set[row["set"]]["fold_accuracy"],
              "per_class": by_set[row["set"]]["per_class"]} for row in rows]
    with staged_outputs(list(paths.values()), overwrite=True) as stage:
        stage(paths["bands.json"]).write_text(json.dumps({**meta, "sets": table}, indent=1))
        stage(paths["bands.csv"]).write_text(_csv(rows))
        plot_bands(rows, stage(paths["bands.png"]), f"{meta['dataset']}: {meta['n']} patches, {meta['evaluation_short']}")
    return paths


def evaluate_bands(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    sets: dict[str, tuple[str, ...]],
    config: BandsConfig = BandsConfig(),
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train and score one network per band set; write the table and chart into ``out_dir``.

    Every set's result is kept in ``<out_dir>/sets/<name>.json`` as soon as it is done (with its
    out-of-fold predictions); a set found there, made with the same settings and data, is not
    trained again. Then ``bands.json``, ``bands.csv`` and ``bands.png`` are written from every
    set asked for.

    Args:
        data: a EuroSAT-style folder or zip of multispectral patches (13-band GeoTIFFs, B8A last
            in the file, as EuroSAT MS), or any dataset :func:`s2lc.datasets.load_dataset` reads.
        out_dir: the output folder (created once the data and the sets are known to fit).
        sets: set name → band ids, as :func:`parse_band_sets` returns them.
        config: network, initialisation, epochs, folds and seed.
        progress: tqdm bars on stderr: one over the sets, one over the epochs of the current set.

    Returns:
        One dict per set, best accuracy first: the rows of ``bands.csv``.

    Raises:
        DatasetError: the data cannot be read, lack a band a set names, or have a class smaller
            than the number of folds.
        DependencyError: the ImageNet weights' package is not installed.
        ModelError: an unknown architecture, or one without ImageNet weights.
        OutputError: ``out_dir`` holds sets made with other settings, or cannot be written.
    """
    from tqdm import tqdm

    from s2lc.checkpoint import MS_SCALING, RGB_SCALING
    from s2lc.files import make_folder
    from s2lc.models import require_imagenet_weights
    from s2lc.options import Arch, choose

    choose(Arch, config.arch, ModelError)
    if config.pretrained:
        require_imagenet_weights(config.arch, config.pretrained)  # before the data is read
    if config.epochs < 1:
        raise ArgumentError(f"epochs must be at least 1, got {config.epochs}")
    ds = load_dataset(data, progress=progress)
    for name, bands in sets.items():  # every set checked before anything is trained or written
        channel_indices(ds.bands, name, bands, str(data))
    evaluation, plan = _plan(ds, config.folds, config.seed)
    # the folds used, not the option: a run without --folds resumes one that gave the default
    config = replace(config, folds=len(plan) if len(plan) > 1 else None)
    out = Path(out_dir)
    identity = _identity(config, ds, evaluation)
    set_dir = out / _SETS_DIR
    results = {name: _finished(set_dir / f"{name}.json", identity) for name in sets}
    make_folder(set_dir, "choose a writable output folder")
    divisor = float((RGB_SCALING if ds.kind == "rgb" else MS_SCALING)["divisor"])
    todo = [name for name in sets if results[name] is None]
    if len(todo) < len(sets):
        logger.info("%d of %d sets already finished in %s: not trained again", len(sets) - len(todo), len(sets), out)
    for name in tqdm(todo, desc="band sets", unit="set", disable=not progress):
        result = _run_set(ds, name, sets[name], plan, divisor, config, progress)
        results[name] = {**result, "made_with": identity}
        _write_json(set_dir / f"{name}.json", results[name])
    meta = {"dataset": Path(ds.source).name, "n": len(ds), "classes": list(ds.classes),
            "class_counts": np.bincount(ds.labels, minlength=len(ds.classes)).tolist(), "evaluation": evaluation,
            "evaluation_short": (f"{len(plan)}-fold CV" if len(plan) > 1 else "fixed split"),
            "confidence_intervals": {"accuracy": "95 % Wilson score interval over the scored patches",
                                     "macro_f1": f"95 % percentile bootstrap over patches ({config.bootstrap} "
                                                 f"resamples, seed {config.seed})",
                                     "vs_best_p": "exact McNemar test against the first set, on the same patches"},
            "settings": asdict(config)}
    _write_outputs(out, list(results.values()), ds.labels, meta)
    return _rows(list(results.values()), ds.labels)
