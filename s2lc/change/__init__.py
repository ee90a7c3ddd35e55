"""What changed between land-cover maps of one place: two dates, or a time series.

The inputs are classification maps written by ``s2lc classify`` (``<id>_landcover.tif``, with
the ``<id>_confidence.tif`` beside it when there is one). Before anything is compared,
:func:`check_comparable` refuses maps that would show something other than land change: other
legends, other models (their difference mixes algorithm change with land change), other grids
(unless ``align``), maps that do not overlap.

The modules, by what they touch:

* :mod:`s2lc.change.core` — pure numpy, no files: the change and trajectory codes (described
  there), :func:`transition_code`, :func:`compare_arrays`, :func:`trajectory_arrays`,
  :func:`trajectory_histories`.
* :mod:`s2lc.change.maps` — reads maps (:func:`load_map`), checks them
  (:func:`check_comparable`) and puts them on one grid (:func:`align_to`).
* :mod:`s2lc.change.results` — :func:`compare` and :func:`time_series`, and the
  :class:`ChangeResult` and :class:`SeriesResult` they return; nothing is written until ``save``.
* :mod:`s2lc.change.outputs` — what ``save`` writes, through :mod:`s2lc.writers`: rasters,
  matrices, polygons, figures and summaries.

Output file names are :mod:`s2lc.naming`'s.
"""

from s2lc.change.core import (
    CLOUD_NAME,
    FIRST_TRANSITION,
    FLICKER,
    MAX_CLASSES,
    MAX_DATES,
    NODATA,
    NOT_COMPARED,
    UNCHANGED,
    Trajectory,
    categories,
    compare_arrays,
    trajectory_arrays,
    trajectory_code,
    trajectory_histories,
    transition_classes,
    transition_code,
)
from s2lc.change.evidence import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_MAGNITUDE,
    FLIP,
    SPECTRAL,
    UNCERTAIN,
    CellStatistics,
    Evidence,
    change_magnitude,
    judge,
)
from s2lc.change.maps import (
    DatedMap,
    align_to,
    check_comparable,
    common_extent,
    load_map,
    on_one_lattice,
    order_by_time,
    same_acquisition,
    settings_difference,
)
from s2lc.change.outputs import trajectory_classes
from s2lc.change.polygons import DEFAULT_MIN_AREA_HA
from s2lc.change.results import ChangeResult, SeriesResult, compare, time_series
from s2lc.change.scenes import SceneChange, compare_scenes, is_map
from s2lc.naming import PAIR_SUFFIXES, SERIES_FILES

# Every module's public names, and the file names and trajectory legend of the outputs.
__all__ = [
    "align_to",
    "categories",
    "CellStatistics",
    "change_magnitude",
    "ChangeResult",
    "check_comparable",
    "CLOUD_NAME",
    "common_extent",
    "compare",
    "compare_arrays",
    "compare_scenes",
    "DEFAULT_MIN_AREA_HA",
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_MIN_MAGNITUDE",
    "Evidence",
    "FLIP",
    "is_map",
    "judge",
    "SceneChange",
    "SPECTRAL",
    "UNCERTAIN",
    "DatedMap",
    "FIRST_TRANSITION",
    "FLICKER",
    "load_map",
    "MAX_CLASSES",
    "MAX_DATES",
    "NODATA",
    "NOT_COMPARED",
    "on_one_lattice",
    "order_by_time",
    "PAIR_SUFFIXES",
    "same_acquisition",
    "SERIES_FILES",
    "SeriesResult",
    "settings_difference",
    "time_series",
    "Trajectory",
    "trajectory_arrays",
    "trajectory_classes",
    "trajectory_code",
    "trajectory_histories",
    "transition_classes",
    "transition_code",
    "UNCHANGED",
]
