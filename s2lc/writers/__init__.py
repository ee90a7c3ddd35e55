"""Output writers: the only s2lc functions that open output files.

Everything else hands them arrays plus ``(transform, crs)``. Every write is atomic: the file is
written into a private temporary folder beside its destination, then renamed onto it, so an
interrupted run leaves nothing half-written, and an existing output is refused unless the caller
passes ``overwrite=True`` (:mod:`s2lc.files`).

What each raster carries (see ``docs/outputs.md``):

* a Cloud-Optimized GeoTIFF (GDAL's COG driver: tiled 512×512, DEFLATE, internal overviews);
* for class maps, a colour table (no-data transparent), the legend as JSON in the ``S2LC_LEGEND``
  tag and one ``CLASS_<code>`` band tag per class — all inside the TIFF — plus a GDAL PAM sidecar
  ``<file>.tif.aux.xml`` with the GDAL category names and a thematic raster attribute table.
  GeoTIFF cannot hold category names or a RAT itself: GDAL's GTiff driver keeps them in PAM
  whatever writes them, and QGIS labels a paletted layer with those category names;
* ``S2LC_KIND`` (classification, change or confidence), ``S2LC_VERSION`` and the caller's
  provenance tags in the default metadata namespace;
* a QGIS style ``<file minus .tif>.qml``, which QGIS applies as the layer's default style.
"""

from s2lc.files import check_outputs, staged_outputs  # documented as writers.* (docs/outputs.md)
from s2lc.qgis import class_qml
from s2lc.writers.quicklook import quicklook_step, true_colour_preview, write_quicklook
from s2lc.writers.rasters import (
    MAP_KINDS,
    ClassMap,
    RowSource,
    count_codes,
    read_class_map,
    sidecars,
    with_sidecars,
    write_class_map,
    write_confidence,
    write_true_colour,
)
from s2lc.writers.text import write_json, write_qml, write_text
from s2lc.writers.vectors import polygons, write_gpkg

__all__ = [
    "MAP_KINDS",
    "ClassMap",
    "RowSource",
    "check_outputs",
    "class_qml",
    "count_codes",
    "polygons",
    "quicklook_step",
    "read_class_map",
    "sidecars",
    "staged_outputs",
    "true_colour_preview",
    "with_sidecars",
    "write_class_map",
    "write_confidence",
    "write_gpkg",
    "write_json",
    "write_qml",
    "write_quicklook",
    "write_true_colour",
    "write_text",
]
