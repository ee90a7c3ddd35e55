"""s2lc: Sentinel-2 scenes to land-cover maps, and what changed between dates."""

__version__ = "0.1.0"

__all__ = ["__version__"]
