"""The names of the files s2lc writes, declared once.

``s2lc classify`` names its outputs ``<product id><suffix>`` (:data:`OUTPUT_SUFFIXES`), and
``s2lc change`` relies on the same names: it finds a map's confidence raster beside it
(``<id>_confidence.tif`` next to ``<id>_landcover.tif``) and takes the id out of a map's file
name for its own outputs (:data:`PAIR_SUFFIXES`, :data:`SERIES_FILES`).

Constants only; nothing here opens a file.
"""

from __future__ import annotations

__all__ = ["ACCURACY_SUFFIXES", "OPTIONAL_OUTPUTS", "OUTPUT_SUFFIXES", "PAIR_SUFFIXES", "SERIES_FILES"]

#: ``s2lc classify`` output kind → file-name suffix appended to the product id.
OUTPUT_SUFFIXES = {
    "map": "_landcover.tif",
    "confidence": "_confidence.tif",
    "polygons": "_landcover.gpkg",
    "quicklook": "_quicklook.png",
    "summary": "_landcover.json",
    "true_colour": "_truecolour.tif",  # written when the product has B04, B03 and B02
}
#: Outputs of ``s2lc classify`` that a product may lack (``--skip-existing`` does not wait for them).
OPTIONAL_OUTPUTS = ("true_colour",)

#: ``s2lc change`` output kind → file-name suffix after the prefix (``change_<before>_<after>``).
PAIR_SUFFIXES = {
    "map": ".tif",
    "matrix_pixels": "_matrix_pixels.csv",
    "matrix_ha": "_matrix_ha.csv",
    "matrix": "_matrix.json",
    "polygons": ".gpkg",
    "figure": ".png",
    "summary": ".json",
}

#: ``s2lc change`` series output kind → file name after ``<out_dir>/``, formatted with the first and last labels.
SERIES_FILES = {
    "trajectory": "trajectory_{first}_{last}.tif",
    "trajectory_polygons": "trajectory_{first}_{last}.gpkg",
    "trajectory_quicklook": "trajectory_{first}_{last}.png",
    "summary": "series_{first}_{last}.json",
}

#: ``s2lc assess -o`` output kind → file-name suffix after the sample GeoPackage's stem.
ACCURACY_SUFFIXES = {
    "summary": "_accuracy.json",
    "table": "_accuracy.csv",
    "matrix": "_error_matrix.csv",
    "figure": "_areas.png",
}
