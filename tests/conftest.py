"""Shared fixtures: synthetic Sentinel-2 products (written once per session) and the real ones.

``make_synthetic(**kwargs)`` returns the path of :func:`s2lc.testing.make_product` for those
arguments, written once per session; the named fixtures are the common cases. Tests that change
a product copy it first (:func:`copy_product`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from s2lc.testing import make_product
from s2lc.yardsticks import SHARED_DATA, T33UUU

# As the command line does (s2lc.cli.main): torch's OpenMP threads wait passively, leaving the cores
# to GDAL's decoding threads and to other work on the machine (spinning, they slow the suite several
# times on two busy cores). OpenMP reads this when torch loads, which the tests do after this file;
# importing s2lc no longer sets it. A value set in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: The real products: the T33UUU L1C crop ships with s2lc (s2lc.demo); the L2A is in ../shared/data/s2
#: (absent in a fresh clone: its tests skip).
REAL_DATA = SHARED_DATA / "s2"
REAL_L1C = T33UUU
REAL_L2A = REAL_DATA / "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"
#: The swath-edge strip of the named synthetic fixtures, in 10 m columns (not a multiple of 6 on purpose).
NODATA_COLS = 40


def copy_product(product: Path, destination: Path) -> Path:
    """A copy of a synthetic product (folder or zip) inside ``destination``, to damage."""
    target = destination / product.name
    if product.is_dir():
        shutil.copytree(product, target)
    else:
        shutil.copy2(product, target)
    return target


@pytest.fixture(scope="session")
def make_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_synthetic(level=..., baseline=..., ...)`` -> product path, cached per session by arguments
    (``scene`` arrays are not cached)."""
    cache: dict[tuple, Path] = {}

    def make(**kwargs) -> Path:
        key = tuple(sorted(kwargs.items())) if "scene" not in kwargs else None
        if key is not None and key in cache:
            return cache[key]
        path = make_product(tmp_path_factory.mktemp("product"), **kwargs)
        if key is not None:
            cache[key] = path
        return path

    return make


#: The named synthetic products (session fixtures): name -> make_product arguments, all with the
#: swath edge of NODATA_COLS columns and the default seed, so that the same ground recurs.
PRODUCTS: dict[str, dict] = {
    "l1c_old": dict(level="L1C", baseline="02.09"),  # no offset, MSK_CLOUDS_B00.gml, GML footprints
    "l1c_new": dict(level="L1C", baseline="04.00"),  # DN + 1000, MSK_CLASSI_B00.jp2, raster footprints
    "l1c_new_zip": dict(level="L1C", baseline="04.00", zipped=True),
    "l2a_new": dict(level="L2A", baseline="04.00"),  # R10m, R20m, R60m, SCL
    "l2a_old": dict(level="L2A", baseline="02.11"),
    "l2a_r60m": dict(level="L2A", baseline="05.10", only_r60m=True),  # like the cut-down real product
}


def _named_product(name: str):
    def product(make_synthetic) -> Path:
        return make_synthetic(nodata_cols=NODATA_COLS, **PRODUCTS[name])

    product.__doc__ = f"Synthetic product {PRODUCTS[name]}, {NODATA_COLS} no-data columns on the left."
    return pytest.fixture(scope="session", name=name)(product)


for _name in PRODUCTS:
    globals()[_name] = _named_product(_name)


@pytest.fixture(scope="session")
def real_l1c() -> Path:
    if not REAL_L1C.is_dir():
        pytest.skip(f"real product absent: {REAL_L1C}")
    return REAL_L1C


@pytest.fixture(scope="session")
def real_l2a() -> Path:
    if not REAL_L2A.is_dir():
        pytest.skip(f"real product absent: {REAL_L2A}")
    return REAL_L2A
