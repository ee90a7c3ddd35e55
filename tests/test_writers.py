"""Output writers: every file is written to tmp_path, reopened and checked.

What GDAL itself reports is read through GDAL's C API (``GDALInfo``, the library behind
``gdalinfo``), loaded with ctypes from the GDAL that rasterio uses; those checks skip where that
library cannot be found.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import json
import math
import os
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from matplotlib.image import imread
from rasterio.crs import CRS
from rasterio.transform import from_origin

from s2lc import writers
from s2lc.errors import ArgumentError, MapError, OutputError
from s2lc.legend import LandCoverClass, default_legend
from s2lc.qgis import polygon_qml, polygon_sld

LEGEND = default_legend()
CLASSES = LEGEND.classes
CRS_UTM = "EPSG:32633"
TRANSFORM = from_origin(500_000, 5_600_000, 10, 10)
FOREST, ANNUAL_CROP, SEA, CLOUD = 2, 1, 10, 11


# ---- GDAL's own view --------------------------------------------------------------------------


def _load_gdal() -> ctypes.CDLL | None:
    libs = os.path.join(os.path.dirname(rasterio.__file__), os.pardir, "rasterio.libs", "libgdal*")
    for candidate in [*glob.glob(libs), ctypes.util.find_library("gdal")]:
        if candidate:
            lib = ctypes.CDLL(candidate)
            lib.GDALAllRegister()
            lib.GDALOpenEx.restype = ctypes.c_void_p
            lib.GDALOpenEx.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_void_p]
            lib.GDALInfoOptionsNew.restype = ctypes.c_void_p
            lib.GDALInfoOptionsNew.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
            lib.GDALInfoOptionsFree.argtypes = [ctypes.c_void_p]
            lib.GDALInfo.restype = ctypes.c_void_p
            lib.GDALInfo.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.GDALClose.argtypes = [ctypes.c_void_p]
            lib.VSIFree.argtypes = [ctypes.c_void_p]
            return lib
    return None


GDAL = _load_gdal()
needs_gdal = pytest.mark.skipif(GDAL is None, reason="GDAL's C library not found for ctypes")


def gdalinfo(path: Path, *args: str) -> str:
    """What ``gdalinfo ARGS PATH`` prints, from the GDAL that rasterio uses."""
    ds = GDAL.GDALOpenEx(str(path).encode(), 0x02, None, None, None)  # GDAL_OF_RASTER
    assert ds, f"GDAL cannot open {path}"
    argv = (ctypes.c_char_p * (len(args) + 1))(*[a.encode() for a in args], None)
    options = GDAL.GDALInfoOptionsNew(argv, None)
    try:
        text = GDAL.GDALInfo(ds, options)
        try:
            return ctypes.string_at(text).decode("utf-8")
        finally:
            GDAL.VSIFree(text)
    finally:
        GDAL.GDALInfoOptionsFree(options)
        GDAL.GDALClose(ds)


# ---- fixtures ---------------------------------------------------------------------------------


def class_map() -> np.ndarray:
    """1300 × 1200: forest top-left, annual crop at the bottom, cloud top-right, a lake, no-data."""
    data = np.zeros((1300, 1200), np.uint8)
    data[:640, :640] = FOREST
    data[640:, :] = ANNUAL_CROP
    data[:200, 900:] = CLOUD
    data[100:110, 100:110] = SEA
    return data


def _no_scratch(folder: Path) -> None:
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "a temporary file was left"


# ---- class map --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written_map(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("map") / "T33UUU_classes.tif"
    writers.write_class_map(path, class_map(), TRANSFORM, CRS_UTM, CLASSES,
                            tags={"PRODUCT_ID": "S2A_MSIL2A_X", "AREA_HA": {"Forest": 1.5}})
    return path


def test_class_map_grid_dtype_nodata_and_tags(written_map):
    with rasterio.open(written_map) as src:
        assert src.crs == CRS.from_string(CRS_UTM)
        assert src.transform == TRANSFORM
        assert (src.count, src.dtypes[0], src.nodata) == (1, "uint8", 0)
        np.testing.assert_array_equal(src.read(1), class_map())
        tags = src.tags()
        assert tags["PRODUCT_ID"] == "S2A_MSIL2A_X"
        assert json.loads(tags["AREA_HA"]) == {"Forest": 1.5}
        assert tags["S2LC_KIND"] == "classification"
        assert json.loads(tags["S2LC_LEGEND"])[1] == {"code": 2, "name": "Forest", "label": "Forest",
                                                       "color": [27, 120, 55]}
        assert src.tags(1)["CLASS_10"] == "Sea or lake"
        assert src.descriptions == ("land cover class",)


def test_class_map_colour_table_survives_in_overviews(written_map):
    with rasterio.open(written_map) as src:
        assert src.colorinterp[0] == rasterio.enums.ColorInterp.palette
        cmap = src.colormap(1)
        assert cmap[0][3] == 0, "no-data must be transparent"
        for c in CLASSES:
            assert cmap[c.code] == (*c.color, 255)
        assert src.overviews(1) == [2, 4]
    with rasterio.open(written_map, overview_level=1) as ovr:
        assert ovr.shape == (325, 300)
        assert ovr.colormap(1)[FOREST] == (27, 120, 55, 255)
        assert set(np.unique(ovr.read(1))) <= {0, ANNUAL_CROP, FOREST, SEA, CLOUD}
        assert ovr.read(1)[0, 0] == FOREST


def test_class_map_is_a_valid_cog(written_map):
    with rasterio.open(written_map) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.profile["tiled"] and src.block_shapes == [(512, 512)]
        assert src.compression == rasterio.enums.Compression.deflate


@needs_gdal
def test_gdal_reports_class_names_and_attribute_table(written_map):
    info = json.loads(gdalinfo(written_map, "-json"))
    assert info["files"] == [str(written_map), f"{written_map}.aux.xml"]
    band = info["bands"][0]
    assert band["categories"] == ["No data", *[c.label for c in CLASSES]]
    assert band["colorTable"]["entries"][FOREST] == [27, 120, 55, 255]
    assert [o["size"] for o in band["overviews"]] == [[600, 650], [300, 325]]
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    # The raster attribute table, as GDAL parsed it and prints it back.
    text = gdalinfo(written_map, "-noct")
    rat = ET.fromstring(text[text.index("<GDALRasterAttributeTable"):text.index("</GDALRasterAttributeTable>")
                             + len("</GDALRasterAttributeTable>")])
    assert [f.findtext("Name") for f in rat.iter("FieldDefn")] == [
        "value", "class_name", "label", "red", "green", "blue", "alpha"]
    rows = [[f.text for f in row.iter("F")] for row in rat.iter("Row")]
    assert rows[1] == ["2", "Forest", "Forest", "27", "120", "55", "255"]
    assert len(rows) == len(CLASSES)


def test_class_map_qml_is_a_paletted_style(written_map):
    qml = written_map.with_suffix(".qml")
    root = ET.parse(qml).getroot()
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = {int(e.get("value")): (e.get("color"), e.get("label")) for e in renderer.iter("paletteEntry")}
    assert entries == {c.code: ("#{:02x}{:02x}{:02x}".format(*c.color), c.label) for c in CLASSES}


def test_class_map_refuses_codes_outside_the_legend(tmp_path):
    data = class_map()
    data[0, 0] = 42
    with pytest.raises(MapError, match=r"codes \[42\] that are not in its legend"):
        writers.write_class_map(tmp_path / "m.tif", data, TRANSFORM, CRS_UTM, CLASSES)
    assert list(tmp_path.iterdir()) == []


def test_class_map_refuses_when_a_sidecar_exists(tmp_path):
    assert writers.sidecars(tmp_path / "m.tif") == (tmp_path / "m.qml", tmp_path / "m.tif.aux.xml")
    (tmp_path / "m.qml").write_text("mine")
    with pytest.raises(OutputError, match=r"m\.qml already exists"):
        writers.write_class_map(tmp_path / "m.tif", class_map(), TRANSFORM, CRS_UTM, CLASSES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.qml"]
    assert (tmp_path / "m.qml").read_text() == "mine"


def test_class_map_failure_mid_write_leaves_no_file(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers.rasters, "class_qml", broken)  # fails after the GeoTIFF was written
    with pytest.raises(RuntimeError, match="disk full"):
        writers.write_class_map(tmp_path / "m.tif", class_map(), TRANSFORM, CRS_UTM, CLASSES)
    assert list(tmp_path.iterdir()) == []


def test_class_map_overwrite_replaces_all_three_files(tmp_path, written_map):
    path = tmp_path / "m.tif"
    writers.write_class_map(path, class_map(), TRANSFORM, CRS_UTM, CLASSES)
    small = np.full((20, 30), FOREST, np.uint8)
    writers.write_class_map(path, small, TRANSFORM, CRS_UTM, CLASSES[:2], overwrite=True)
    assert writers.read_class_map(path).classes == CLASSES[:2]
    assert len(list(ET.parse(tmp_path / "m.qml").getroot().iter("paletteEntry"))) == 2
    assert "Herbaceous" not in (tmp_path / "m.tif.aux.xml").read_text()


def test_reserved_tags_and_bad_options_are_refused(tmp_path):
    with pytest.raises(ArgumentError, match="S2LC_KIND"):
        writers.write_class_map(tmp_path / "m.tif", class_map(), TRANSFORM, CRS_UTM, CLASSES,
                                tags={"S2LC_KIND": "x"})
    with pytest.raises(ArgumentError, match="nearest or mode"):
        writers.write_class_map(tmp_path / "m.tif", class_map(), TRANSFORM, CRS_UTM, CLASSES,
                                overview_resampling=rasterio.enums.Resampling.average)
    with pytest.raises(ArgumentError, match="kind must be one of"):
        writers.write_class_map(tmp_path / "m.tif", class_map(), TRANSFORM, CRS_UTM, CLASSES, kind="other")
    assert list(tmp_path.iterdir()) == []


# ---- reading maps back ------------------------------------------------------------------------


def test_read_class_map_returns_what_was_written(written_map):
    m = writers.read_class_map(written_map)
    np.testing.assert_array_equal(m.data, class_map())
    assert m.transform == TRANSFORM and m.crs == CRS.from_string(CRS_UTM)
    assert m.classes == CLASSES and m.legend == LEGEND
    assert (m.kind, m.nodata, m.tags["PRODUCT_ID"]) == ("classification", 0, "S2A_MSIL2A_X")


def test_read_class_map_header_alone(written_map):
    m = writers.read_class_map(written_map, pixels=False)
    assert m.data.size == 0 and m.shape == class_map().shape and m.classes == CLASSES
    assert m.transform == TRANSFORM and m.tags["PRODUCT_ID"] == "S2A_MSIL2A_X"
    assert writers.read_class_map(written_map).shape == class_map().shape
    with pytest.raises(MapError, match="not an s2lc change map"):
        writers.read_class_map(written_map, "change", pixels=False)


def test_true_colour_is_an_rgba_cog_and_refuses_other_arrays(tmp_path):
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0], rgba[:20, :, 3] = 200, 255  # the lower half has no data
    path = writers.write_true_colour(tmp_path / "tc.tif", rgba, TRANSFORM, CRS_UTM, {"S2LC_PRODUCT_ID": "X"})
    with rasterio.open(path) as src:
        assert src.count == 4 and src.colorinterp[3] == rasterio.enums.ColorInterp.alpha
        assert src.tags()["S2LC_KIND"] == "true colour" and src.tags()["S2LC_PRODUCT_ID"] == "X"
        assert src.dataset_mask()[:20].all() and not src.dataset_mask()[20:].any()
        np.testing.assert_array_equal(src.read(1), rgba[..., 0])
    with pytest.raises(OutputError, match="already exist"):
        writers.write_true_colour(path, rgba, TRANSFORM, CRS_UTM)
    with pytest.raises(ArgumentError, match=r"must be \(h, w, 4\) uint8, not \(40, 60, 3\)"):
        writers.write_true_colour(tmp_path / "rgb.tif", rgba[..., :3], TRANSFORM, CRS_UTM)
    assert not (tmp_path / "rgb.tif").exists()


def test_read_class_map_needs_no_sidecar(tmp_path, written_map):
    alone = tmp_path / "copy.tif"
    alone.write_bytes(written_map.read_bytes())
    assert writers.read_class_map(alone).classes == CLASSES


def test_change_map_round_trip_with_arrow_labels(tmp_path):
    classes = (LandCoverClass(1, "Unchanged", "Unchanged", (220, 220, 220)),
               LandCoverClass(14, "Forest->Residential", "Forest → Residential", (227, 26, 28)))
    data = np.array([[0, 1, 1], [1, 14, 14]], np.uint8)
    path = writers.write_class_map(tmp_path / "change.tif", data, TRANSFORM, CRS_UTM, classes, kind="change")
    m = writers.read_class_map(path, kind="change")
    assert m.classes == classes and m.kind == "change"
    with pytest.raises(MapError, match=r"not an s2lc classification map: .*change\.tif \(it is a change map\)"):
        writers.read_class_map(path)
    assert writers.read_class_map(path, kind=None).kind == "change"
    if GDAL is not None:
        categories = json.loads(gdalinfo(path, "-json"))["bands"][0]["categories"]
        assert categories[14] == "Forest → Residential" and categories[2] == ""


def test_read_class_map_refuses_rasters_that_are_not_ours(tmp_path):
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs=CRS_UTM, transform=TRANSFORM) as dst:
        dst.write(np.ones((1, 4, 4), np.uint8))
    with pytest.raises(MapError, match=r"^not an s2lc classification map: .*plain\.tif$"):
        writers.read_class_map(plain)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(MapError, match="not an s2lc classification map: .*notes.tif"):
        writers.read_class_map(text)


# ---- confidence -------------------------------------------------------------------------------


def confidence_map() -> np.ndarray:
    conf = np.linspace(0, 1, 1300 * 1200, dtype=np.float32).reshape(1300, 1200)
    conf[class_map() == 0] = np.nan
    return conf


def test_confidence_round_trip(tmp_path):
    path = writers.write_confidence(tmp_path / "conf.tif", confidence_map(), TRANSFORM, CRS_UTM,
                                    tags={"MODEL_SHA256": "abc"})
    with rasterio.open(path) as src:
        assert (src.dtypes[0], src.crs, src.transform) == ("float32", CRS.from_string(CRS_UTM), TRANSFORM)
        assert math.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(1), confidence_map())
        assert src.tags()["S2LC_KIND"] == "confidence" and src.tags()["MODEL_SHA256"] == "abc"
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.overviews(1) == [2, 4]
    with rasterio.open(path, overview_level=0) as ovr:  # half resolution
        values = ovr.read(1)
        assert np.isnan(values[150, 400]) and not np.isnan(values[0, 0])  # no-data stays no-data
        assert np.nanmin(values) >= 0 and np.nanmax(values) <= 1
    with pytest.raises(MapError, match="not an s2lc classification map"):
        writers.read_class_map(path)


def test_confidence_qml_is_a_ramp_over_0_1(tmp_path):
    writers.write_confidence(tmp_path / "conf.tif", confidence_map(), TRANSFORM, CRS_UTM)
    renderer = ET.parse(tmp_path / "conf.qml").getroot().find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor"
    shader = renderer.find("rastershader/colorrampshader")
    values = [float(i.get("value")) for i in shader.iter("item")]
    assert values[0] == 0 and values[-1] == 1 and values == sorted(values)


def test_confidence_refuses_values_outside_0_1(tmp_path):
    conf = confidence_map()
    conf[5, 5] = 1.5
    with pytest.raises(ArgumentError, match=r"\[0, 1\]"):
        writers.write_confidence(tmp_path / "conf.tif", conf, TRANSFORM, CRS_UTM)
    assert list(tmp_path.iterdir()) == []


def test_all_nan_confidence_is_written(tmp_path):
    conf = np.full((8, 8), np.nan, np.float32)
    with rasterio.open(writers.write_confidence(tmp_path / "c.tif", conf, TRANSFORM, CRS_UTM)) as src:
        assert np.isnan(src.read(1)).all()


# ---- polygons ---------------------------------------------------------------------------------

# 10 m pixels: one pixel is 100 m² = 0.01 ha.
HAND = np.array([
    [2, 2, 0, 1],
    [2, 2, 0, 1],
    [1, 2, 0, 1],
    [1, 1, 2, 1],
    [1, 1, 1, 1],
], np.uint8)


def test_polygons_dissolve_adjacent_pixels_and_measure_hectares():
    conf = np.full(HAND.shape, 0.5, np.float32)
    conf[0, 0] = 0.9
    conf[1, 1] = np.nan
    gdf = writers.polygons(HAND, TRANSFORM, CRS_UTM, CLASSES, confidence=conf)
    assert list(gdf.columns) == ["class_code", "class_name", "area_ha", "mean_confidence", "geometry"]
    assert gdf.crs == CRS_UTM
    assert gdf["class_code"].dtype == np.int32
    rows = sorted(zip(gdf.class_code, gdf.class_name, gdf.area_ha, gdf.mean_confidence.round(6)))
    assert rows == [
        (1, "AnnualCrop", 11 * 100 / 10_000, 0.5),  # the U around the lone forest pixel
        (2, "Forest", 1 * 100 / 10_000, 0.5),  # touches the other forest only at a corner
        (2, "Forest", 5 * 100 / 10_000, round((0.9 + 0.5 * 3) / 4, 6)),  # the NaN pixel is ignored
    ]
    assert 0 not in set(gdf.class_code)
    assert gdf.geometry.union_all().area == 17 * 100  # the no-data pixels are not covered


def test_polygons_extra_columns_several_confidences_and_clipping():
    before = np.full(HAND.shape, 0.25, np.float32)
    after = np.full(HAND.shape, np.nan, np.float32)
    gdf = writers.polygons(HAND, TRANSFORM, CRS_UTM, CLASSES,
                           confidence={"confidence_before": before, "confidence_after": after},
                           extra_codes={"from_class": {1: "Forest"}},
                           bounds=(500_000, 5_600_000 - 20, 500_040, 5_600_000))  # the top two rows
    assert list(gdf.columns) == ["class_code", "class_name", "from_class", "area_ha", "confidence_before",
                                 "confidence_after", "geometry"]
    rows = sorted(zip(gdf.class_code, gdf.from_class.fillna("-"), gdf.area_ha))
    assert rows == [(1, "Forest", 2 * 100 / 10_000), (2, "-", 4 * 100 / 10_000)]
    assert (gdf.confidence_before == 0.25).all() and gdf.confidence_after.isna().all()


def test_polygons_of_an_empty_map_is_an_empty_frame():
    gdf = writers.polygons(np.zeros((3, 3), np.uint8), TRANSFORM, CRS_UTM, CLASSES,
                           confidence=np.zeros((3, 3), np.float32))
    assert len(gdf) == 0 and "mean_confidence" in gdf.columns and gdf.crs == CRS_UTM


def test_polygons_need_metres():
    with pytest.raises(MapError, match="projected CRS in metres"):
        writers.polygons(HAND, Affine(0.001, 0, 15, 0, -0.001, 50), "EPSG:4326", CLASSES)


# ---- GeoPackage -------------------------------------------------------------------------------


def _write_hand_gpkg(path: Path, data: np.ndarray = HAND) -> Path:
    gdf = writers.polygons(data, TRANSFORM, CRS_UTM, CLASSES, confidence=np.full(data.shape, 0.5, np.float32))
    return writers.write_gpkg(path, gdf, "classes", polygon_qml(CLASSES), polygon_sld(CLASSES, "classes"))


def test_gpkg_layer_schema_and_content(tmp_path):
    path = _write_hand_gpkg(tmp_path / "p.gpkg")
    info = pyogrio.read_info(path, layer="classes")
    assert info["geometry_type"] == "MultiPolygon" and info["crs"] == CRS_UTM and info["features"] == 3
    assert list(info["fields"]) == ["class_code", "class_name", "area_ha", "mean_confidence"]
    assert list(info["ogr_types"]) == ["OFTInteger", "OFTString", "OFTReal", "OFTReal"]
    back = pyogrio.read_dataframe(path, layer="classes")
    assert sorted(back.area_ha) == [0.01, 0.05, 0.11]
    assert [tuple(r) for r in pyogrio.list_layers(path)] == [("classes", "MultiPolygon"), ("layer_styles", None)]
    _no_scratch(tmp_path)


def test_gpkg_is_version_1_2_with_a_default_qgis_style(tmp_path):
    path = _write_hand_gpkg(tmp_path / "p.gpkg")
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10200
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert con.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'"
                           ).fetchone() == ("attributes",)
        columns = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
        assert columns == ["id", "f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column",
                           "styleName", "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui",
                           "update_time"]
        rows = con.execute("SELECT f_table_schema, f_table_name, f_geometry_column, useAsDefault, styleQML, "
                           "styleSLD, update_time FROM layer_styles").fetchall()
    finally:
        con.close()
    assert len(rows) == 1
    schema, table, geom, default, qml, sld, updated = rows[0]
    assert (schema, table, geom, default) == ("", "classes", "geom", 1)
    assert qml == polygon_qml(CLASSES) and sld == polygon_sld(CLASSES, "classes")
    assert updated.endswith("Z")
    # GDAL reads the style table as an ordinary attribute layer, as QGIS does.
    styles = pyogrio.read_dataframe(path, layer="layer_styles")
    assert styles.loc[0, "f_table_name"] == "classes" and styles.loc[0, "useAsDefault"] == 1


def test_gpkg_with_no_polygons_is_still_a_valid_layer(tmp_path):
    path = _write_hand_gpkg(tmp_path / "empty.gpkg", np.zeros((4, 4), np.uint8))
    info = pyogrio.read_info(path, layer="classes")
    assert info["features"] == 0 and info["geometry_type"] == "MultiPolygon"
    assert "mean_confidence" in list(info["fields"])


def test_gpkg_refuses_existing_file_untouched(tmp_path):
    path = tmp_path / "p.gpkg"
    path.write_bytes(b"old")
    with pytest.raises(OutputError, match="use overwrite=True"):
        _write_hand_gpkg(path)
    assert path.read_bytes() == b"old"
    _no_scratch(tmp_path)


# ---- JSON and quicklook -----------------------------------------------------------------------


def test_write_json_converts_numpy_and_nan(tmp_path):
    path = writers.write_json(tmp_path / "s.json",
                              {"area": np.float32(1.5), "count": np.int64(3), "grid": np.arange(3),
                               "cloud": float("nan"), "out": tmp_path, "pair": (1, 2)})
    assert json.loads(path.read_text()) == {"area": 1.5, "count": 3, "grid": [0, 1, 2], "cloud": None,
                                            "out": str(tmp_path), "pair": [1, 2]}
    with pytest.raises(OutputError, match="already exists"):
        writers.write_json(path, {})
    with pytest.raises(TypeError):
        writers.write_json(tmp_path / "bad.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_quicklook_draws_class_colours_within_size(tmp_path):
    data = np.zeros((3000, 2000), np.uint8)
    data[:1500] = FOREST
    data[1500:, :1000] = SEA
    path = writers.write_quicklook(tmp_path / "q.png", data, CLASSES, "T33UUU 2024-05-01", max_size=300)
    image = imread(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.shape[0] < 300 + 100  # the map (≤ 300 px) plus title and margins
    pixels = {tuple(p) for p in (image[..., :3] * 255).round().astype(int).reshape(-1, 3)}
    assert (27, 120, 55) in pixels and (8, 48, 107) in pixels
    assert (230, 199, 0) not in pixels, "annual crop is absent from the map and from the legend"


def test_quicklook_draws_the_scene_beside_the_map(tmp_path):
    data = np.full((200, 300), FOREST, np.uint8)
    scene = np.zeros((100, 150, 3), np.uint8)  # any size: drawn at the map's
    scene[:, :75] = (250, 20, 20)
    scene[:, 75:] = (20, 20, 250)
    plain = imread(writers.write_quicklook(tmp_path / "plain.png", data, CLASSES, "map only"))
    both = imread(writers.write_quicklook(tmp_path / "both.png", data, CLASSES, "scene and map", true_colour=scene))
    assert both.shape[0] == plain.shape[0] and both.shape[1] >= plain.shape[1] + 300  # a panel as wide as the map
    rgb = (both[..., :3] * 255).round().astype(int)
    red, blue, forest = ((rgb == c).all(axis=-1) for c in ((250, 20, 20), (20, 20, 250), (27, 120, 55)))
    assert red.sum() > 0.4 * 150 * 200 and blue.sum() > 0.4 * 150 * 200  # each half of the scene's panel

    def cols(m):
        return np.nonzero(m.any(axis=0))[0]

    assert cols(red).max() < cols(blue).min() and cols(blue).max() < cols(forest).min()  # scene left, then the map


def test_quicklook_legend_is_never_cut_off(tmp_path):
    """A label as long as a series' "Flicker: changed 2 times, back to an earlier class" widens the
    legend instead of running off the image: the right margin stays white."""
    long = LandCoverClass(7, "Flicker", "Flicker: changed 2 times, back to an earlier class and more", (200, 40, 150))
    data = np.full((100, 150), long.code, np.uint8)
    image = imread(writers.write_quicklook(tmp_path / "q.png", data, (long,), "series"))
    ink = (image[..., :3] < 0.5).all(axis=-1)  # dark text
    assert ink[:, : image.shape[1] // 2].any() and not ink[:, -8:].any()
    small = imread(writers.write_quicklook(tmp_path / "t.png", data[:20, :20], (long,), "S2A_MSIL1C_" + "X" * 80))
    assert not (small[..., :3] < 0.5).all(axis=-1)[:, -8:].any()  # nor the title
    data[:50] = 0
    default, named = (imread(writers.write_quicklook(tmp_path / f"{i}.png", data, (long,), "series", **kw))
                      for i, kw in enumerate(({}, {"nodata_label": "Land cover at fewer than two dates"})))
    assert default.shape != named.shape or not np.array_equal(default, named)  # the legend names no data as asked


def test_true_colour_preview_stretches_each_band_and_whitens_no_data():
    rgb = np.stack([np.linspace(1000, 2000, 100), np.linspace(0, 500, 100), np.full(100, 700.0)]).reshape(3, 10, 10)
    rgb[:, 0, 0] = np.nan
    out = writers.true_colour_preview(rgb.astype(np.float32))
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert out[..., 0].reshape(-1)[1:].min() == 0 and out[..., 0].max() == 255  # 2nd-98th percentiles to 0-255
    assert np.array_equal(out[..., 0], out[..., 1]) or np.abs(out[..., 0].astype(int) - out[..., 1]).max() <= 1


def test_quicklook_tells_no_data_from_cloud(tmp_path):
    """No-data is hatched and has a legend entry; cloud keeps its own colour."""
    legend = default_legend()
    data = np.zeros((200, 200), np.uint8)
    data[:, 100:] = legend.cloud_code
    path = writers.write_quicklook(tmp_path / "q.png", data, legend.classes, "half cloud, half no data")
    image = (imread(path)[..., :3] * 255).round().astype(int)
    n = len(image.reshape(-1, 3))
    share = {tuple(c): k / n for c, k in zip(*np.unique(image.reshape(-1, 3), axis=0, return_counts=True))}
    assert share.get((240, 240, 240), 0) > 0.05  # the cloud half
    greys = [c for c in share if c[0] == c[1] == c[2] and 60 < c[0] < 230]
    assert sum(share[c] for c in greys) > 0.01, "no hatching where there is no data"
    data[:] = legend.cloud_code
    only_cloud = (imread(writers.write_quicklook(tmp_path / "c.png", data, legend.classes, "cloud"))[..., :3] * 255)
    assert len(np.unique(only_cloud.round().astype(int).reshape(-1, 3), axis=0)) < len(share), \
        "the no-data legend entry and hatching appear only when there is no data"


def test_class_map_is_written_without_gdal_complaints(tmp_path, caplog):
    """The colour table goes in before the pixels: libtiff refuses to change the photometric tag later."""
    caplog.set_level("DEBUG")
    writers.write_class_map(tmp_path / "m.tif", class_map(), TRANSFORM, CRS_UTM, CLASSES)
    gdal = [r.getMessage() for r in caplog.records if r.name.startswith("rasterio")]
    assert not [m for m in gdal if "error" in m.lower() or "cannot" in m.lower()], gdal
