"""One error hierarchy for the library.

Every error s2lc raises on purpose derives from :class:`S2lcError`, and also from the builtin
exception that fits it, so callers can catch either. Messages are one line, name the file at
fault and say what to change.
"""

__all__ = [
    "S2lcError",
    "ProductError",
    "BandError",
    "DatasetError",
    "ModelError",
    "CheckpointError",
    "OutputError",
    "MapError",
    "DependencyError",
]


class S2lcError(Exception):
    """Base class of all s2lc errors."""


class ProductError(S2lcError, ValueError):
    """A Sentinel-2 product or raster that cannot be read as one (missing, corrupt, malformed)."""


class BandError(ProductError, KeyError):
    """A band that the product does not have or that does not exist at all."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetError(S2lcError, ValueError):
    """A training or evaluation dataset that is empty, wrongly laid out or unreadable."""


class ModelError(S2lcError, ValueError):
    """A model that cannot be built or run as asked (unknown architecture, wrong bands, device)."""


class CheckpointError(ModelError):
    """A checkpoint whose contract is incomplete, or whose hash does not match its contents."""


class OutputError(S2lcError, OSError):
    """An output that cannot be written (folder unwritable, file exists without --overwrite)."""


class MapError(S2lcError, ValueError):
    """A classification map that cannot be used as asked (not an s2lc map, grids or legends differ)."""


class DependencyError(S2lcError, ImportError):
    """An optional package that a feature needs is not installed; the message names the pip command.

    The command line treats it as a usage error (exit 2): nothing ran, the install is what to change.
    """
