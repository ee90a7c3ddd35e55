"""Self-describing, safely loadable model checkpoints.

A checkpoint is a safetensors file (no pickle, nothing executes on load) whose header
metadata holds the model's *contract* as JSON and the SHA-256 of its tensors:

- ``arch``: registered architecture; ``bands``: input bands in order (e.g. B04, B03, B02);
- ``scaling``: how Sentinel-2 DN (pre-04.00 convention) become network input:
  ``clip((DN - src_min) / (src_max - src_min) * (dst_max - dst_min) + dst_min, dst_min, dst_max)``,
  rounded when ``round`` is set, with ``nodata`` for missing pixels, then divided by ``divisor``.
  For EuroSAT RGB this is L1C DN 0–2750 → 1–255 (as the dataset's JPEGs were made), ÷ 255;
- ``mean``/``std``: normalisation of that 0–1 input (applied inside the network);
- ``classes`` and ``codes``: class names and their map codes (1..n); ``patch_size``; ``level`` the data was L1C or L2A;
- ``input_size``: the size the network resizes each patch to, inside the model (absent: none);
- ``training``, ``metrics``, ``s2lc_version``, ``name``;
- ``temperature``: the probabilities are ``softmax(logits / temperature)``, fitted on the validation
  split (:mod:`s2lc.calibration`; ``s2lc train`` and ``s2lc calibrate`` set it); a checkpoint written
  before it existed reads as 1.0 (the raw softmax). ``calibration`` records how it was fitted.

Loading recomputes the tensors' hash: a mismatch or a missing field is a :class:`CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2lc import __version__
from s2lc.calibration import check_temperature
from s2lc.errors import ArgumentError, CheckpointError
from s2lc.models import PatchClassifier, build_model, fuse_for_inference

__all__ = [
    "LoadedModel",
    "ModelContract",
    "RGB_SCALING",
    "MS_SCALING",
    "load_checkpoint",
    "rewrite_contract",
    "save_checkpoint",
    "tensors_sha256",
]

#: EuroSAT RGB: L1C DN 0–2750 → 1–255 (gdal_translate -scale 0 2750 1 255), 0 = no data.
RGB_SCALING = {
    "src_min": 0.0, "src_max": 2750.0, "dst_min": 1.0, "dst_max": 255.0, "round": True, "nodata": 0.0, "divisor": 255.0
}
#: EuroSAT MS: DN as they are (reflectance × 10 000), ÷ 10 000.
MS_SCALING = {
    "src_min": 0.0, "src_max": 10000.0, "dst_min": 0.0, "dst_max": 10000.0, "round": False, "nodata": 0.0, "divisor": 10000.0
}

_META_KEY = "s2lc_contract"
_HASH_KEY = "s2lc_tensors_sha256"
_REQUIRED = ("arch", "bands", "classes", "scaling", "mean", "std", "patch_size", "level", "s2lc_version")


@dataclass
class ModelContract:
    """What a model expects and what it was trained on."""

    arch: str
    bands: list[str]
    classes: list[str]
    scaling: dict[str, Any]
    mean: list[float]
    std: list[float]
    patch_size: int = 64
    input_size: int | None = None  #: the network resizes patches to this size (None: patch_size as it is)
    level: str = "L1C"
    name: str = ""
    units: str = "Sentinel-2 DN in the pre-04.00 convention (reflectance x 10000, offset removed)"
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    s2lc_version: str = __version__
    codes: list[int] = field(default_factory=list)  #: map code of each class (1..n; 0 is no data, n + 1 cloud)
    temperature: float = 1.0  #: probabilities are softmax(logits / temperature) (1.0: not calibrated)
    calibration: dict[str, Any] = field(default_factory=dict)  #: how the temperature was fitted (split, n, NLL, ECE)

    def __post_init__(self) -> None:
        if not self.codes:
            self.codes = list(range(1, len(self.classes) + 1))
        if len(self.codes) != len(self.classes):
            raise CheckpointError(f"contract has {len(self.codes)} codes for {len(self.classes)} classes")
        try:
            self.temperature = check_temperature(self.temperature)
        except ArgumentError as exc:
            raise CheckpointError(f"{exc}; refit it with s2lc calibrate") from None

    def to_dst(self, dn: np.ndarray) -> np.ndarray:
        """Scale DN (any shape, NaN = no data) to the dataset's stored values (uint8 for RGB).

        Returns:
            float32 array of the same shape; no-data pixels get ``scaling["nodata"]``.
        """
        s = self.scaling
        x = (dn.astype(np.float32) - s["src_min"]) * np.float32(
            (s["dst_max"] - s["dst_min"]) / (s["src_max"] - s["src_min"])
        ) + np.float32(s["dst_min"])
        np.clip(x, s["dst_min"], s["dst_max"], out=x)
        if s.get("round"):
            np.rint(x, out=x)
        x[np.isnan(dn)] = s["nodata"]
        return x

    @property
    def divisor(self) -> float:
        return float(self.scaling["divisor"])


@dataclass
class LoadedModel:
    """A checkpoint loaded for inference: the network (eval mode, CPU), its contract, its file hash."""

    model: PatchClassifier
    contract: ModelContract
    path: Path
    sha256: str


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors``, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike, model: PatchClassifier, contract: ModelContract, dtype: torch.dtype = torch.float16
) -> str:
    """Write ``model`` and ``contract`` to a safetensors file, atomically.

    Floating-point tensors are stored as ``dtype`` (float16 halves the file; inference upcasts).

    Returns:
        The SHA-256 of the written file.
    """
    from safetensors.torch import save_file

    from s2lc.files import file_sha256

    state = {
        k: (v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    from s2lc.files import atomic_path

    path = Path(path)
    meta = {_META_KEY: json.dumps(asdict(contract)), _HASH_KEY: tensors_sha256(state)}
    with atomic_path(path, overwrite=True) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return file_sha256(path)


def rewrite_contract(src: str | os.PathLike, dst: str | os.PathLike, contract: ModelContract,
                     overwrite: bool = False) -> str:
    """Write ``src``'s tensors, byte for byte, with ``contract`` to ``dst``, atomically (a new
    temperature on the same weights; ``dst`` may be ``src`` with ``overwrite``).

    Returns:
        The SHA-256 of the written file.

    Raises:
        CheckpointError: ``src`` is not a valid checkpoint (as :func:`read_contract`, and its tensor hash).
        OutputError: ``dst`` exists and ``overwrite`` is false, or cannot be written.
    """
    from safetensors.torch import save_file

    from s2lc.files import atomic_path, file_sha256

    _, stored_hash, tensors = read_contract(src)
    _check_hash(Path(src), tensors, stored_hash)
    meta = {_META_KEY: json.dumps(asdict(contract)), _HASH_KEY: stored_hash}
    with atomic_path(dst, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return file_sha256(dst)


def _check_hash(path: Path, tensors: dict[str, torch.Tensor], stored_hash: str) -> None:
    actual = tensors_sha256(tensors)
    if actual != stored_hash:
        raise CheckpointError(
            f"{path}: tensor sha256 {actual[:16]}… differs from the recorded {stored_hash[:16]}…; "
            "the file is corrupt or was altered"
        )


def read_contract(path: str | os.PathLike) -> tuple[ModelContract, str, dict[str, torch.Tensor]]:
    """Contract, stored tensor hash and tensors of a checkpoint, checked for completeness."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable s2lc checkpoint (safetensors): {exc}") from exc
    if _META_KEY not in meta or _HASH_KEY not in meta:
        raise CheckpointError(f"{path}: safetensors file without an s2lc contract; not an s2lc checkpoint")
    try:
        raw = json.loads(meta[_META_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: contract is not valid JSON ({exc})") from exc
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise CheckpointError(f"{path}: contract lacks field(s) {', '.join(missing)}")
    known = set(ModelContract.__dataclass_fields__)
    try:
        contract = ModelContract(**{k: v for k, v in raw.items() if k in known})
    except (CheckpointError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid contract: {exc}") from exc
    return contract, meta[_HASH_KEY], tensors


def load_checkpoint(path: str | os.PathLike, fuse: bool = False) -> LoadedModel:
    """Load a checkpoint for inference, verifying its tensors' SHA-256 and its contract.

    With ``fuse``, batch norm is folded into the convolutions
    (:func:`s2lc.models.fuse_for_inference`): faster, but the model can no longer be trained.

    Raises:
        CheckpointError: missing file, not a checkpoint, missing contract field, hash mismatch,
            or weights that do not fit the declared architecture.
    """
    from s2lc.files import file_sha256

    path = Path(path)
    contract, stored_hash, tensors = read_contract(path)
    _check_hash(path, tensors, stored_hash)
    try:
        model = build_model(contract.arch, len(contract.bands), len(contract.classes), contract.mean, contract.std,
                            contract.input_size)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    except Exception as exc:
        raise CheckpointError(f"{path}: weights do not fit architecture {contract.arch!r}: {exc}") from exc
    model.eval()
    if fuse:
        model = fuse_for_inference(model)
    return LoadedModel(model, contract, path, file_sha256(path))
