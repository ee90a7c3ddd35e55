"""One error hierarchy for the library.

Every error s2lc raises on purpose derives from :class:`S2lcError`, and also from the builtin
exception that fits it, so callers can catch either. Messages are one line, name the file at
fault and say what to change.

A file or its contents that cannot be used raise the class of what it is (a product, a dataset,
a map …); a value that a function refuses whatever the files hold (an array of the wrong shape
or dtype, a number out of range, a name not on the list) raises :class:`ArgumentError`.
"""

__all__ = [
    "S2lcError",
    "ArgumentError",
    "ArgumentTypeError",
    "ProductError",
    "BandError",
    "DatasetError",
    "ModelError",
    "CheckpointError",
    "OutputError",
    "MapError",
    "LegendError",
    "DependencyError",
]


class S2lcError(Exception):
    """Base class of all s2lc errors."""


class _KeyMessage(KeyError):
    """A KeyError whose message reads as given (KeyError itself would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ArgumentError(S2lcError, ValueError):
    """A value that a function refuses: an array of the wrong shape, a number out of range, a name
    that is not one of the allowed ones. The calling code is what to change, not a file."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong type or dtype (a float array where a uint8 class map is needed)."""


class ProductError(S2lcError, ValueError):
    """A Sentinel-2 product or raster that cannot be read as one (missing, corrupt, malformed)."""


class BandError(ProductError, _KeyMessage):
    """A band that the product does not have or that does not exist at all."""


class DatasetError(S2lcError, ValueError):
    """A training or evaluation dataset that is empty, wrongly laid out or unreadable."""


class ModelError(S2lcError, ValueError):
    """A model that cannot be built or run as asked (unknown architecture, wrong bands, device)."""


class CheckpointError(ModelError):
    """A checkpoint whose contract is incomplete, or whose hash does not match its contents."""


class OutputError(S2lcError, OSError):
    """An output that cannot be written (folder unwritable, file exists and overwrite is false)."""


class MapError(S2lcError, ValueError):
    """A classification map that cannot be used as asked (not an s2lc map, grids or legends differ)."""


class LegendError(MapError, _KeyMessage):
    """A class code that the legend does not have."""


class DependencyError(S2lcError, ImportError):
    """An optional package that a feature needs is not installed; the message names the pip command.

    The command line treats it as a usage error (exit 2): nothing ran, the install is what to change.
    """
