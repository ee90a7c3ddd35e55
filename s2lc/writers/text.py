"""Text and JSON outputs (tables, reports, QGIS styles, summaries), each written atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from s2lc.files import atomic_path


def write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Write UTF-8 text (a CSV table, a report) atomically.

    Raises:
        OutputError: as :func:`atomic_path`.
    """
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_qml(path: str | os.PathLike, qml: str, overwrite: bool = False) -> Path:
    """Write a QGIS style file (text from :mod:`s2lc.qgis`) atomically."""
    return write_text(path, qml, overwrite)


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays, paths, tuples; NaN and infinities → null."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, np.ndarray)):
        return [_jsonable(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically.

    numpy scalars and arrays, paths and tuples are converted; NaN and infinities become null.

    Raises:
        OutputError: as :func:`atomic_path`.
        TypeError: ``obj`` holds something JSON cannot represent.
    """
    text = json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_text(path, text, overwrite)


