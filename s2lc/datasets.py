"""Labelled patch datasets: EuroSAT RGB (JPEG) and EuroSAT MS (13-band GeoTIFF).

A dataset is a folder or a zip file laid out as ``[<top>/]<ClassName>/<file>.jpg|.tif``, as
EuroSAT is distributed; a zip is read in place, never extracted. Images are decoded once into
memory: the RGB set is 27 000 × 3 × 64 × 64 bytes (330 MB).

The split is deterministic, stratified and independent of the order in which files are listed:
within each class, files are ordered by the SHA-256 of their ``<ClassName>/<file name>`` and the
first 60 % go to training, the next 20 % to validation and the rest to test.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

import numpy as np

from s2lc.errors import DatasetError
from s2lc.files import file_sha256
from s2lc.legend import EUROSAT_CLASSES
from s2lc.sentinel2 import BAND_IDS, EUROSAT_MS_ORDER, EUROSAT_RGB_BANDS

__all__ = ["PatchDataset", "SPLITS", "load_dataset", "split_indices"]

logger = logging.getLogger(__name__)

SPLITS: dict[str, float] = {"train": 0.6, "val": 0.2, "test": 0.2}
_RGB_EXT = (".jpg", ".jpeg", ".png")
_MS_EXT = (".tif", ".tiff")


@dataclass
class PatchDataset:
    """Decoded patches with their labels.

    Attributes:
        images: (n, bands, h, w) uint8 for RGB, uint16 DN for MS (bands in ESA order).
        labels: (n,) int64 index into ``classes``.
        files: ``<ClassName>/<file name>`` of each patch, the key of the split.
        classes: class names, sorted (the dataset's folder names).
        bands: band ids of the image channels, e.g. ("B04", "B03", "B02").
        kind: "rgb" or "ms".
        source: where it was read from; sha256: of the zip file, when read from one.
    """

    images: np.ndarray
    labels: np.ndarray
    files: list[str]
    classes: tuple[str, ...]
    bands: tuple[str, ...]
    kind: str
    source: str
    sha256: str | None = None
    _splits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> np.ndarray:
        """Indices of the ``train``, ``val`` or ``test`` split."""
        if not self._splits:
            self._splits = split_indices(self.files, self.labels)
        return self._splits[name]


def split_indices(
    files: list[str], labels: np.ndarray, fractions: dict[str, float] = SPLITS
) -> dict[str, np.ndarray]:
    """Deterministic stratified split, independent of the order of ``files``.

    Args:
        files: ``<ClassName>/<file name>`` keys, one per patch.
        labels: (n,) class indices.
        fractions: split name → fraction, in assignment order; fractions sum to 1.

    Returns:
        Split name → sorted (k,) int64 indices into ``files``.
    """
    labels = np.asarray(labels)
    out: dict[str, list[int]] = {name: [] for name in fractions}
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        keyed = sorted(members, key=lambda i: hashlib.sha256(files[i].encode()).hexdigest())
        n = len(keyed)
        start = 0
        names = list(fractions)
        for k, name in enumerate(names):
            stop = n if k == len(names) - 1 else start + int(round(fractions[name] * n))
            out[name].extend(keyed[start:stop])
            start = stop
    return {name: np.array(sorted(idx), dtype=np.int64) for name, idx in out.items()}


def _members(path: Path) -> tuple[list[tuple[str, str]], zipfile.ZipFile | None]:
    """(key, location) of every image file, with the open zip when ``path`` is one."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder; give a EuroSAT folder or zip")
    entries: list[tuple[str, str]] = []
    archive = None
    if path.is_dir():
        for root, _, names in os.walk(path):
            for n in names:
                if n.lower().endswith(_RGB_EXT + _MS_EXT):
                    full = Path(root) / n
                    entries.append((str(full.relative_to(path).as_posix()), str(full)))
    else:
        try:
            archive = zipfile.ZipFile(path)
            names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetError(f"{path}: not a readable zip file ({exc}); re-download or unzip it") from exc
        entries = [(n, n) for n in names if n.lower().endswith(_RGB_EXT + _MS_EXT)]
    keyed = []
    for rel, loc in entries:
        parts = PurePosixPath(rel).parts
        if len(parts) < 2:
            continue  # an image not inside a class folder
        keyed.append((f"{parts[-2]}/{parts[-1]}", loc))
    keyed.sort()
    return keyed, archive


def load_dataset(
    path: str | os.PathLike,
    classes: Iterable[str] | None = None,
    progress: bool = False,
) -> PatchDataset:
    """Read a EuroSAT-style dataset (folder or zip) into memory.

    Args:
        path: folder or zip laid out as ``[<top>/]<ClassName>/<image>``.
        classes: the class names expected (e.g. a model's); every one must have a folder.
        progress: show a tqdm bar on stderr.

    Raises:
        DatasetError: missing path, unreadable zip, no images, a missing class folder, an
            unreadable image or one whose size or band count differs from the others.
    """
    path = Path(path)
    entries, archive = _members(path)
    if not entries:
        raise DatasetError(
            f"{path}: no images found; expected <ClassName>/<image>.jpg or .tif inside (EuroSAT layout)"
        )
    found = sorted({k.split("/")[0] for k, _ in entries})
    expected = list(classes) if classes is not None else None
    if expected is None and len(set(found) & set(EUROSAT_CLASSES)) >= len(EUROSAT_CLASSES) - 2:
        expected = list(EUROSAT_CLASSES)  # looks like EuroSAT: all ten folders must be there
    if expected is not None:
        missing = [c for c in expected if c not in found]
        if missing:
            raise DatasetError(f"{path}: class folder(s) missing: {', '.join(missing)}")
        extra = [c for c in found if c not in expected]
        if extra:
            raise DatasetError(f"{path}: unexpected class folder(s) {', '.join(extra)}; expected {', '.join(expected)}")
        class_names = tuple(expected)
    else:
        class_names = tuple(found)
    if len(class_names) < 2:
        raise DatasetError(f"{path}: found {len(class_names)} class folder(s); need at least two")

    exts = {os.path.splitext(k)[1].lower() for k, _ in entries}
    kind = "ms" if exts <= set(_MS_EXT) else "rgb"
    if kind == "rgb" and exts & set(_MS_EXT):
        raise DatasetError(f"{path}: mixes JPEG and GeoTIFF images; use one kind per dataset")
    decode = _decode_rgb if kind == "rgb" else _decode_ms

    from tqdm import tqdm

    index = {c: i for i, c in enumerate(class_names)}
    images, labels, files = [], [], []
    for key, loc in tqdm(entries, desc="reading images", disable=not progress, unit="img"):
        try:
            data = archive.read(loc) if archive is not None else Path(loc).read_bytes()
            img = decode(data)
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"{path}: cannot read image {key} ({exc}); remove or replace it") from exc
        if images and img.shape != images[0].shape:
            raise DatasetError(
                f"{path}: image {key} has shape {img.shape}, others {images[0].shape}; all patches must match"
            )
        images.append(img)
        labels.append(index[key.split("/")[0]])
        files.append(key)
    sha = file_sha256(path) if archive is not None else None
    if archive is not None:
        archive.close()
    bands = EUROSAT_RGB_BANDS if kind == "rgb" else BAND_IDS
    return PatchDataset(
        images=np.stack(images),
        labels=np.array(labels, dtype=np.int64),
        files=files,
        classes=class_names,
        bands=tuple(bands),
        kind=kind,
        source=str(path),
        sha256=sha,
    )


def _decode_rgb(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


_MS_TO_ESA = [EUROSAT_MS_ORDER.index(b) for b in BAND_IDS]


def _decode_ms(data: bytes) -> np.ndarray:
    """A EuroSAT MS GeoTIFF (13 bands, B8A last) as (13, h, w) uint16 in ESA band order."""
    from rasterio.io import MemoryFile

    with MemoryFile(data) as mem, mem.open() as src:
        arr = src.read()
    if arr.shape[0] != len(EUROSAT_MS_ORDER):
        raise DatasetError(f"has {arr.shape[0]} bands; EuroSAT MS images have 13")
    return arr[_MS_TO_ESA].astype(np.uint16)
