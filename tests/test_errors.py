"""One error hierarchy: every error s2lc raises on purpose is an S2lcError and the builtin that fits."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import s2lc
from s2lc import errors
from s2lc.errors import (
    ArgumentError,
    ArgumentTypeError,
    BandError,
    LegendError,
    ProductError,
    S2lcError,
)
from s2lc.legend import default_legend
from s2lc.sentinel2 import band, baseline_tuple

PACKAGE = Path(s2lc.__file__).parent
BUILTINS = {"ValueError", "TypeError", "KeyError", "IndexError", "LookupError", "RuntimeError", "OSError",
            "IOError", "FileNotFoundError", "ImportError", "NotImplementedError", "Exception"}
#: Builtin raises left on purpose: (file, exception) -> why.
LEFT = {
    ("mosaic.py", "IndexError"): "CellRows is only sliced by the writers' own row loop; not user input",
}


def _builtin_raises(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        call = node.exc if isinstance(node, ast.Raise) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in BUILTINS:
            found.append((node.lineno, call.func.id))
    return found


def test_the_library_raises_no_bare_builtin_error():
    bare = [f"{path.relative_to(PACKAGE)}:{line} {name}"
            for path in sorted(PACKAGE.rglob("*.py"))
            for line, name in _builtin_raises(path) if (path.relative_to(PACKAGE).as_posix(), name) not in LEFT]
    assert bare == []


def test_every_error_class_is_an_s2lc_error_and_a_builtin():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, S2lcError)
        if cls is not S2lcError:
            assert any(issubclass(cls, b) for b in (ValueError, KeyError, OSError, ImportError)), name
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ArgumentError)


def test_lookup_errors_are_key_errors_whose_message_reads_as_written():
    with pytest.raises(BandError) as band_error:
        band("B13")
    with pytest.raises(LegendError) as legend_error:
        default_legend().by_code(99)
    for exc in (band_error.value, legend_error.value):
        assert isinstance(exc, KeyError) and not str(exc).startswith("'")
    assert str(legend_error.value) == "no class with code 99 in the legend"


def test_a_malformed_baseline_is_a_product_error():
    with pytest.raises(ProductError, match="not of the form NN.NN"):
        baseline_tuple("4.0")


def test_arrays_of_the_wrong_dtype_are_argument_type_errors():
    from s2lc.writers import count_codes

    with pytest.raises(ArgumentTypeError, match="uint8"):
        count_codes(np.zeros((2, 2), np.int16))
