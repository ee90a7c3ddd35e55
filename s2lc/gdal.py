"""GDAL's configuration for everything s2lc reads and writes, declared once.

:func:`gdal_env` enters it where work starts: the command line for the whole command, and the
Python API itself (:func:`s2lc.classify.classify`, :func:`s2lc.change.compare`,
:func:`s2lc.change.time_series`, each upload the server decodes, each read of a
:class:`s2lc.product.Product`, each whole-raster write or read of :mod:`s2lc.writers`), so GDAL
runs the same from Python and from the command line. Nothing is set at import. The writers
change one option (:data:`WHOLE_RASTER_CACHEMAX`); the rest holds everywhere.

rasterio keeps its environment per thread: a thread that reads (classify's read-ahead, the
server's workers) enters it itself; inside a block that already has it, entering again costs
nothing and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["GDAL_OPTIONS", "WHOLE_RASTER_CACHEMAX", "gdal_env"]

#: GDAL configuration options: one decoding thread per read, and a bounded block cache (GDAL's
#: default is 5 % of RAM).
#:
#: ``GDAL_NUM_THREADS`` is 1 because GDAL 3.10's JPEG 2000 driver loses the errors of its worker
#: threads: with more, a tile that fails to decode (a file damaged inside) comes back as zeros or
#: garbage and no error reaches rasterio; on the calling thread the same read raises. s2lc decodes
#: the bands of a product side by side on threads of its own instead (:class:`s2lc.product.Product`),
#: which keeps the cores busy.
#:
#: rasterio hands an integer ``GDAL_CACHEMAX`` to ``GDALSetCacheMax64``, which counts bytes: 256
#: here is 256 bytes, next to no block cache (the times and memory in docs/ were measured so);
#: megabytes would be ``256 * 2**20``.
GDAL_OPTIONS: dict[str, int | str] = {"GDAL_NUM_THREADS": 1, "GDAL_CACHEMAX": 256}
#: ``GDAL_CACHEMAX`` while :mod:`s2lc.writers` writes or reads a whole raster (bytes, as above).
WHOLE_RASTER_CACHEMAX = 64


@contextmanager
def gdal_env(**overrides: int | str) -> Iterator[None]:
    """Run the block under :data:`GDAL_OPTIONS`, updated with ``overrides``, in this thread.

    A block that already runs under those options (an outer ``gdal_env`` in the same thread)
    is left as it is.
    """
    import rasterio
    from rasterio.env import getenv, hasenv

    options = {**GDAL_OPTIONS, **overrides}
    if hasenv() and options.items() <= getenv().items():
        yield
        return
    with rasterio.Env(**options):
        yield
