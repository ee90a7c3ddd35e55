"""s2lc: Sentinel-2 scenes to land-cover maps, and what changed between dates."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

__all__ = ["__version__"]

# s2lc decodes JPEG 2000 (GDAL worker threads) while the network runs (torch's OpenMP threads).
# OpenMP workers that spin while they wait starve the decoder on a small machine, and each side
# then runs several times slower; passive waiting lets them share the cores. OpenMP reads this
# once, when torch loads: it only takes effect if s2lc is imported first, and a value the user
# set wins.
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
