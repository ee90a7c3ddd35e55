"""The inputs users bring: GeoTIFFs in a geographic CRS, dated by their tags or by --date, and
checked for fitness (pixel size, bit depth) the same way by classify and serve."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.warp import Resampling, calculate_default_transform, reproject

from s2lc import change
from s2lc.classify import classify
from s2lc.cli.main import cli
from s2lc.errors import ProductError
from s2lc.product import open_product
from s2lc.suitability import check_input, pixel_size_m
from s2lc.writers import read_class_map

from toymodel import brightness_model

UTM = "EPSG:32632"
ORIGIN = Affine(10, 0, 500000, 0, -10, 6000000)  # 9° E, 54° N
SIZE = 192
DARK, BRIGHT = 300, 2500
RGB = ("B04", "B03", "B02")


def write_tif(path, data, crs=UTM, transform=ORIGIN, nodata=0, tags=None, descriptions=RGB):
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype,
                   crs=crs, transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
        if tags:
            dst.update_tags(**tags)
    return path


def halves() -> np.ndarray:
    """B04/B03/B02 DN: dark (water to the toy model) left of column 128, bright right of it."""
    dn = np.full((3, SIZE, SIZE), DARK, np.uint16)
    dn[:, :, 128:] = BRIGHT
    return dn


def to_geographic(path, data, tags=None):
    """``data`` on the UTM grid, warped to EPSG:4326 at about the same pixel count, as an archive exports it."""
    t, w, h = calculate_default_transform(UTM, "EPSG:4326", SIZE, SIZE, *rasterio.transform.array_bounds(SIZE, SIZE, ORIGIN))
    out = np.zeros((data.shape[0], h, w), data.dtype)
    reproject(data, out, src_transform=ORIGIN, src_crs=UTM, dst_transform=t, dst_crs="EPSG:4326",
              resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    return write_tif(path, out, crs="EPSG:4326", transform=t, tags=tags)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return brightness_model(tmp_path_factory.mktemp("model") / "toy.safetensors")


@pytest.fixture(scope="module")
def geographic(tmp_path_factory):
    return to_geographic(tmp_path_factory.mktemp("wgs84") / "scene4326.tif", halves(), tags={"SENSING_DATE": "20170621"})


# --------------------------------------------------------------------------------------------
# A geographic CRS is warped to UTM at 10 m on read


def test_a_geographic_geotiff_is_read_on_the_10_m_utm_grid_of_its_zone(geographic):
    with open_product(geographic) as p:
        assert p.grid.crs.to_epsg() == 32632 and p.grid.resolution == 10
        t = p.grid.transform
        assert t.c % 10 == 0 and t.f % 10 == 0  # on the zone's 10 m lattice
        left, bottom, right, top = p.grid.bounds  # covers the scene, with at most a few pixels of margin
        assert left <= 500000 and top >= 6000000 and right >= 500000 + 10 * SIZE and bottom <= 6000000 - 10 * SIZE
        assert right - left < 10 * SIZE + 200 and top - bottom < 10 * SIZE + 200
        assert p.warped_from == {"crs": "EPSG:4326", "resolution_m": pytest.approx(10, rel=0.15),
                                 "to_crs": "EPSG:32632", "resampling": "cubic"}
        assert p.info()["warped_from"]["crs"] == "EPSG:4326" and p.pixel_size("B04") == p.warped_from["resolution_m"]
        dn = p.read(["B04"])[0]
        nodata = p.read_masks().nodata
    col = int((500000 - left) / 10)
    row = int((top - 6000000) / 10)
    inside = dn[row + 8:row + SIZE - 8, col + 8:col + SIZE - 8]  # away from the warped edges
    assert np.nanmin(inside[:, :100]) == pytest.approx(DARK, abs=2) and np.nanmax(inside[:, :100]) == pytest.approx(DARK, abs=2)
    assert np.nanmin(inside[:, 130:]) == pytest.approx(BRIGHT, abs=2)
    assert not np.isnan(inside).any()
    assert nodata[0, 0] or nodata[-1, -1]  # the corners outside the source have no data
    assert 0.9 < (~nodata).sum() / SIZE**2 < 1.1


def test_classify_maps_a_geographic_geotiff_with_areas_in_hectares(tmp_path, geographic, toy):
    res = classify(geographic, toy)
    assert res.crs.to_epsg() == 32632
    assert res.provenance["warped_from"]["crs"] == "EPSG:4326"
    total = sum(res.stats["area_ha"].values())
    assert total == pytest.approx(SIZE * SIZE / 100, rel=0.1)  # 10 m pixels: 100 of them are a hectare
    assert res.stats["area_ha"]["SeaLake"] == pytest.approx(128 * SIZE / 100, rel=0.25)
    paths = res.save(tmp_path / "out")
    polygons = pyogrio.read_dataframe(paths["polygons"])
    assert polygons.crs.to_epsg() == 32632 and polygons.area_ha.sum() == pytest.approx(total, rel=0.01)


def test_two_geographic_dates_compare_without_align(tmp_path, toy):
    runner = CliRunner()
    later = halves()
    later[:, :, 64:128] = BRIGHT  # land where water was
    maps = []
    for name, data, day in (("a", halves(), "20170621"), ("b", later, "20190621")):
        scene = to_geographic(tmp_path / f"{name}.tif", data, tags={"SENSING_DATE": day})
        r = runner.invoke(cli, ["-q", "classify", str(scene), "-o", str(tmp_path / name), "--model", str(toy)])
        assert r.exit_code == 0, r.output
        maps.append(tmp_path / name / f"{name}_landcover.tif")
    assert read_class_map(maps[0]).transform == read_class_map(maps[1]).transform
    result = change.compare(*maps)
    assert not result.aligned
    cats = list(result.categories)
    assert result.matrix_ha[cats.index("SeaLake"), cats.index("AnnualCrop")] == pytest.approx(64 * SIZE / 100, rel=0.3)
    r = runner.invoke(cli, ["-q", "change", str(maps[0]), str(maps[1]), "-o", str(tmp_path / "change")])
    assert r.exit_code == 0, r.output


def test_pixel_size_in_metres_of_a_geographic_grid():
    t = Affine(0.0001, 0, 9.0, 0, -0.0001, 54.0)  # at 54° N a degree of longitude is about 65.6 km
    size = pixel_size_m("EPSG:4326", t, 100, 100)
    assert size == pytest.approx(np.sqrt(0.0001 * 65_600 * 0.0001 * 111_300), rel=0.02)
    assert pixel_size_m(UTM, ORIGIN, 10, 10) == 10 and pixel_size_m(None, ORIGIN, 10, 10) is None


# --------------------------------------------------------------------------------------------
# Fitness: pixel size and bit depth, one check for classify and serve


@pytest.mark.parametrize("size, dtype, kinds, words", [
    (10.6, "uint16", [], []),
    (20, "uint16", ["resolution"], ["pixels are 20 m in B04, B03, B02", "2.0 x coarser"]),
    (3, "float32", ["resolution"], ["pixels are 3 m", "3.3 x finer"]),
    (10, "uint8", ["8-bit"], ["B04, B03, B02 are 8-bit", "not reflectance"]),
])
def test_check_input(size, dtype, kinds, words):
    notes = check_input(RGB, dict.fromkeys(RGB, size), dict.fromkeys(RGB, dtype), "m")
    assert [n.kind for n in notes] == kinds
    assert all(any(w in n.text for n in notes) for w in words)


def test_classify_warns_once_of_8_bit_data_and_of_coarse_pixels(tmp_path, toy, caplog):
    eight = write_tif(tmp_path / "eight.tif", (halves() // 10).astype(np.uint8))
    coarse = write_tif(tmp_path / "coarse.tif", halves(), transform=Affine(30, 0, 500000, 0, -30, 6000000))
    with caplog.at_level("WARNING", logger="s2lc.classify"):
        classify(eight, toy)
        classify(coarse, toy)
    said = [r.getMessage() for r in caplog.records]
    assert sum("are 8-bit" in m for m in said) == 1 and sum("pixels are 30 m" in m for m in said) == 1
    assert all(m.startswith(("eight:", "coarse:")) for m in said if "8-bit" in m or "30 m" in m)


# --------------------------------------------------------------------------------------------
# Dates: from the input's tags, or from --date


@pytest.mark.parametrize("tags, expected", [
    ({"SENSING_DATE": "20161130"}, datetime(2016, 11, 30, tzinfo=timezone.utc)),
    ({"ACQUISITION_DATE": "2019-06-21T10:30:00Z"}, datetime(2019, 6, 21, 10, 30, tzinfo=timezone.utc)),
    ({"date_acquired": "2019/06/21"}, datetime(2019, 6, 21, tzinfo=timezone.utc)),
    ({"TIFFTAG_DATETIME": "2020:01:02 03:04:05", "SENSING_DATE": "20161130"}, datetime(2016, 11, 30, tzinfo=timezone.utc)),
    ({"TIFFTAG_DATETIME": "2020:01:02 03:04:05"}, datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ({"SENSING_DATE": "not a date", "DATE": "2018-05-05"}, datetime(2018, 5, 5, tzinfo=timezone.utc)),
    ({"SOURCE": "OSCD"}, None),
])
def test_a_geotiff_is_dated_by_its_tags(tmp_path, tags, expected):
    path = write_tif(tmp_path / "dated.tif", halves(), tags=tags)
    with open_product(path) as p:
        assert p.sensing_time == expected


def test_date_option_dates_an_undated_geotiff_and_is_recorded(tmp_path, toy):
    path = write_tif(tmp_path / "undated.tif", halves())
    r = CliRunner().invoke(cli, ["-q", "classify", str(path), "-o", str(tmp_path / "out"), "--model", str(toy),
                                 "--date", "2018-07-01", "--json", "--no-polygons"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["provenance"]["sensing_time"] == "2018-07-01T00:00:00+00:00"
    assert change.load_map(tmp_path / "out" / "undated_landcover.tif").sensing_time == datetime(2018, 7, 1, tzinfo=timezone.utc)
    r = CliRunner().invoke(cli, ["classify", str(path), "-o", str(tmp_path / "bad"), "--model", str(toy), "--date", "July"])
    said = r.output.strip()
    assert r.exit_code == 1 and said == "Error: --date July is not a date; give it as YYYY-MM-DD or an ISO 8601 time"
    assert not (tmp_path / "bad").exists()


def test_sensing_time_replaces_the_products_own_with_a_warning(tmp_path, caplog):
    path = write_tif(tmp_path / "dated.tif", halves(), tags={"SENSING_DATE": "20161130"})
    with caplog.at_level("WARNING", logger="s2lc.product"), open_product(path, sensing_time="2017-01-01") as p:
        assert p.sensing_time == datetime(2017, 1, 1, tzinfo=timezone.utc)
    assert any("taken as 2017-01-01" in r.getMessage() for r in caplog.records)
    with pytest.raises(ProductError, match="sensing_time=3 is not a date"):
        open_product(path, sensing_time=3)


def test_classified_geotiffs_of_five_dates_make_a_series(tmp_path, toy):
    """As with the eo-learn Slovenia GeoTIFFs: each carries SENSING_DATE, and change orders them by it."""
    runner = CliRunner()
    days = ["20170801", "20170601", "20170901", "20170701", "20171001"]
    maps = []
    for i, day in enumerate(days):
        scene = write_tif(tmp_path / f"scene_{i}.tif", halves(), tags={"SENSING_DATE": day})
        r = runner.invoke(cli, ["-q", "classify", str(scene), "-o", str(tmp_path / "maps"), "--model", str(toy),
                                "--no-polygons"])
        assert r.exit_code == 0, r.output
        maps.append(tmp_path / "maps" / f"scene_{i}_landcover.tif")
    result = change.time_series(maps)
    assert [m.sensing_time.strftime("%Y%m%d") for m in result.maps] == sorted(days)


def test_info_says_a_geographic_geotiff_is_warped(geographic):
    r = CliRunner().invoke(cli, ["-q", "info", str(geographic)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    grid = next(i for i, line in enumerate(lines) if line.strip().startswith("grid"))
    assert "EPSG:32632" in lines[grid] and lines[grid + 1].startswith("  warped from   EPSG:4326, pixels of about ")
    assert lines[grid + 1].endswith(" m (cubic, on read)")


def test_fine_pixels_and_a_10_m_export_with_20_m_bands_are_judged_against_the_model_grid():
    six = ("B04", "B03", "B02", "B08", "B11", "B12")
    assert check_input(six, dict.fromkeys(six, 10.0), dict.fromkeys(six, "uint16"), "m") == []
    fine = check_input(RGB, dict.fromkeys(RGB, 0.4), dict.fromkeys(RGB, "uint16"), "m")
    assert [n.kind for n in fine] == ["resolution"] and "25.0 x finer" in fine[0].text
    assert check_input(RGB, dict.fromkeys(RGB, 7.3), dict.fromkeys(RGB, "uint16"), "m", finer=False) == []


def test_classify_warns_of_sub_metre_pixels_without_failing(tmp_path, toy, caplog):
    aerial = write_tif(tmp_path / "aerial.tif", halves(), transform=Affine(0.4, 0, 500000, 0, -0.4, 6000000))
    with caplog.at_level("WARNING", logger="s2lc.classify"):
        classify(aerial, toy)
    assert any("pixels are 0.4 m" in r.getMessage() and "finer" in r.getMessage() for r in caplog.records)


def test_web_mercator_is_warped_to_utm_too(tmp_path):
    t, w, h = calculate_default_transform(UTM, "EPSG:3857", SIZE, SIZE, *rasterio.transform.array_bounds(SIZE, SIZE, ORIGIN))
    out = np.zeros((3, h, w), np.uint16)
    reproject(halves(), out, src_transform=ORIGIN, src_crs=UTM, dst_transform=t, dst_crs="EPSG:3857",
              resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    with open_product(write_tif(tmp_path / "mercator.tif", out, crs="EPSG:3857", transform=t)) as p:
        assert p.grid.crs.to_epsg() == 32632 and p.warped_from["crs"] == "EPSG:3857"
        assert p.warped_from["resolution_m"] == pytest.approx(10, rel=0.15)  # ground metres, not Mercator's


def test_a_date_tag_s2lc_cannot_read_and_a_file_time_are_said(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="s2lc._reader_geotiff"):
        with open_product(write_tif(tmp_path / "a.tif", halves(), tags={"ACQUISITION_DATE": "16/02/2017"})) as p:
            assert p.sensing_time is None
        with open_product(write_tif(tmp_path / "b.tif", halves(), tags={"TIFFTAG_DATETIME": "2020:01:02 03:04:05"})):
            pass
    said = [r.getMessage() for r in caplog.records]
    assert any("ACQUISITION_DATE tag '16/02/2017' is not a date" in m for m in said)
    assert any("comes from TIFFTAG_DATETIME" in m and "--date" in m for m in said)
