"""s2lc view: the catalogue of outputs, tiles, points, the static export, safety, and the CLI.

The maps are written by s2lc's own writers and change machinery (three dates of one tile, with
confidence and true colour); the browser tests (tests/test_view_browser.py) use the same ones.
"""

from __future__ import annotations

import http.client
import io
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

pytest.importorskip("fastapi")
pytest.importorskip("rio_tiler")

import morecantile  # noqa: E402  (rio-tiler's dependency)
from click.testing import CliRunner  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from pyproj import Transformer  # noqa: E402
from test_server import uvicorn_on_loopback  # noqa: E402

from s2lc import change, writers  # noqa: E402
from s2lc.cli.main import cli  # noqa: E402
from s2lc.errors import ArgumentError, OutputError  # noqa: E402
from s2lc.legend import default_legend  # noqa: E402
from s2lc.view import create_view_app, export_site, find_layers  # noqa: E402
from s2lc.view.app import LOOPBACK_HOSTS  # noqa: E402

#: a class label that would run a script if the page put it into HTML unescaped
HOSTILE = 'Annual <img src="x" onerror="window.__xss = 1">crop'
CLASSES = tuple(replace(c, label=HOSTILE) if c.name == "AnnualCrop" else c for c in default_legend().classes)
CODE = {c.name: c.code for c in CLASSES}
COLOUR = {c.name: c.color for c in CLASSES}
SIZE = 200  # pixels of 10 m: 2 km
TRANSFORM = Affine(10, 0, 500000, 0, -10, 5100000)
CRS = "EPSG:32633"
WHEN = ("20200406T101559", "20210411T101031", "20220406T100559")
DATES = ("2020-04-06", "2021-04-11", "2022-04-06")
#: (left half, right half) of each date's map
HALVES = (("Forest", "Pasture"), ("Forest", "Residential"), ("AnnualCrop", "Residential"))
CONFIDENCE = (0.9, 0.8, 0.75)
#: the true colour of each date, one flat colour
SCENE = ((20, 90, 30), (120, 110, 90), (200, 180, 60))
TILE_ZOOM = 15
TMS = morecantile.tms.get("WebMercatorQuad")


def product_id(when: str) -> str:
    return f"S2B_MSIL2A_{when}_N0500_R022_T33TVL_{when}"


def lonlat(row: float, col: float) -> tuple[float, float]:
    """Longitude and latitude of the centre of map pixel (row, col)."""
    x, y = TRANSFORM @ (col + 0.5, row + 0.5)
    return Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(x, y)


LEFT, RIGHT = lonlat(100, 50), lonlat(100, 150)


def class_map(left: str, right: str) -> np.ndarray:
    data = np.empty((SIZE, SIZE), np.uint8)
    data[:, : SIZE // 2], data[:, SIZE // 2 :] = CODE[left], CODE[right]
    return data


def write_date(folder: Path, i: int) -> Path:
    """One date as ``s2lc classify`` writes it: map, confidence and true colour, with their tags."""
    when, data = WHEN[i], class_map(*HALVES[i])
    iso = f"{when[:4]}-{when[4:6]}-{when[6:8]}T{when[9:11]}:{when[11:13]}:{when[13:15]}+00:00"
    pid = product_id(when)
    areas = {c.name: float((data == c.code).sum()) * 100 / 1e4 for c in CLASSES}
    tags = {"S2LC_PRODUCT_ID": pid, "S2LC_SENSING_TIME": iso, "S2LC_MODEL": "test", "S2LC_MODEL_SHA256": "0" * 64,
            "S2LC_PARAMETERS": json.dumps({"stride": 64}), "S2LC_AREA_HA": json.dumps(areas), "S2LC_STATUS": "ok"}
    out = folder / pid
    out.mkdir(parents=True)
    path = writers.write_class_map(out / f"{pid}_landcover.tif", data, TRANSFORM, CRS, CLASSES, tags)
    writers.write_confidence(out / f"{pid}_confidence.tif", np.full(data.shape, CONFIDENCE[i], np.float32),
                             TRANSFORM, CRS, tags)
    rgba = np.empty((SIZE // 4, SIZE // 4, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = SCENE[i], 255
    writers.write_true_colour(out / f"{pid}_truecolour.tif", rgba, TRANSFORM @ Affine.scale(4), CRS,
                              {"S2LC_PRODUCT_ID": pid, "S2LC_SENSING_TIME": iso})
    return path


def write_outputs(root: Path) -> Path:
    """``root/data/maps/<id>/…`` for three dates and ``root/data/change/…`` for their series,
    written by s2lc's writers and ``s2lc.change``; a file beside ``data`` that no request may
    reach. Returns ``root/data``."""
    data = root / "data"
    maps = [write_date(data / "maps", i) for i in (2, 0, 1)]  # written out of date order
    change.time_series(maps).save(data / "change")
    (root / "secret.txt").write_text("not for the web")
    (data / "maps" / ".staging.s2lc-tmp").mkdir()  # a hidden folder: never searched
    (data / "maps" / "notes.tif").write_bytes(b"not a raster")
    return data


@pytest.fixture(scope="session")
def outputs(tmp_path_factory) -> Path:
    return write_outputs(tmp_path_factory.mktemp("view"))


@pytest.fixture(scope="session")
def catalogue(outputs):
    return find_layers([outputs])


@pytest.fixture(scope="session")
def client(catalogue):
    return TestClient(create_view_app(catalogue))


def tile_and_pixel(lon: float, lat: float, z: int = TILE_ZOOM) -> tuple[morecantile.Tile, tuple[int, int]]:
    """The tile holding (lon, lat) at zoom z, and the (column, row) of that point in its 256-pixel PNG."""
    t = TMS.tile(lon, lat, z)
    b = TMS.xy_bounds(t)
    x, y = TMS.xy(lon, lat)
    return t, (int((x - b.left) / (b.right - b.left) * 256), int((b.top - y) / (b.top - b.bottom) * 256))


def png_at(png: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    return Image.open(io.BytesIO(png)).convert("RGBA").getpixel(xy)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


# ---- the catalogue ----------------------------------------------------------------------------


def test_the_catalogue_finds_every_date_its_sidecars_and_the_changes(catalogue, outputs):
    assert catalogue.dates == list(DATES)
    maps = catalogue.of_kind("landcover")
    assert [m.date for m in maps] == list(DATES) and {m.group for m in maps} == {"T33TVL"}
    assert all(m.confidence is not None and m.truecolour in catalogue.layers for m in maps)
    assert maps[0].areas["Forest"] == pytest.approx(200.0) and maps[0].areas["Pasture"] == pytest.approx(200.0)
    pairs = [(c.before, c.date) for c in catalogue.of_kind("change")]
    # consecutive pairs and the first with the last; the trajectory is not a two-date change
    assert pairs == [(DATES[0], DATES[1]), (DATES[0], DATES[2]), (DATES[1], DATES[2])]
    w, s, e, n = catalogue.bounds
    assert w < LEFT[0] < RIGHT[0] < e and s < LEFT[1] < n
    assert not any(".s2lc-tmp" in str(x.path) for x in catalogue.layers.values())


def test_the_index_lists_every_date_and_no_path(client, outputs):
    index = client.get("/index.json").json()
    assert index["dates"] == list(DATES) and index["mode"] == "server"
    assert [x["date"] for x in index["landcover"]] == list(DATES)
    assert len(index["change"]) == 3 and len(index["truecolour"]) == 3
    assert str(outputs) not in json.dumps(index)  # layers are ids, never paths
    legend = {e["name"]: e for e in index["landcover"][0]["legend"]}
    assert legend["Forest"]["color"] == list(COLOUR["Forest"]) and legend["Forest"]["label"] == "Forest"
    drawn = {e["name"]: e["drawn"] for e in index["change"][0]["legend"]}
    assert drawn["Unchanged"] is False and drawn["Pasture->Residential"] is True


def test_undated_maps_and_second_maps_of_a_date_are_skipped_with_a_warning(tmp_path, caplog):
    write_date(tmp_path / "a", 0)
    write_date(tmp_path / "b", 0)  # the same tile and date again
    writers.write_class_map(tmp_path / "undated_landcover.tif", class_map("Forest", "Forest"), TRANSFORM, CRS, CLASSES,
                            {"S2LC_PRODUCT_ID": "undated"})
    with caplog.at_level("WARNING"):
        found = find_layers([tmp_path])
    assert [m.path.parent.parent.name for m in found.of_kind("landcover")] == ["a"]
    assert "undated_landcover.tif: no sensing time" in caplog.text
    assert "a second map of tile T33TVL on 2020-04-06" in caplog.text


def test_a_map_across_the_antimeridian_is_skipped_with_a_warning(tmp_path, caplog):
    write_date(tmp_path, 0)
    # UTM zone 60 at the equator: 180° E lies 334 km east of its central meridian, x = 834 km
    writers.write_class_map(tmp_path / "fiji_landcover.tif", class_map("Forest", "Pasture"),
                            Affine(50, 0, 829000, 0, -50, 10000), "EPSG:32660", CLASSES,
                            {"S2LC_PRODUCT_ID": "fiji", "S2LC_SENSING_TIME": "2021-01-01T00:00:00+00:00"})
    with caplog.at_level("WARNING"):
        found = find_layers([tmp_path])
    assert [m.date for m in found.of_kind("landcover")] == [DATES[0]]
    assert "fiji_landcover.tif: crosses the antimeridian" in caplog.text


def test_a_folder_without_maps_is_refused_in_one_line(tmp_path):
    with pytest.raises(ArgumentError, match=r"no dated land-cover map .* run s2lc classify first"):
        find_layers([tmp_path])


# ---- tiles and points -------------------------------------------------------------------------


@pytest.mark.parametrize("date", range(3))
def test_a_tile_holds_the_class_colours_at_known_places(client, catalogue, date):
    layer = catalogue.of_kind("landcover")[date]
    for side, (lon, lat) in zip(HALVES[date], (LEFT, RIGHT)):
        t, xy = tile_and_pixel(lon, lat)
        r = client.get(f"/tiles/{layer.id}/{t.z}/{t.x}/{t.y}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert png_at(r.content, xy) == (*COLOUR[side], 255)


def test_true_colour_and_change_tiles(client, catalogue):
    t, xy = tile_and_pixel(*RIGHT)
    for i, layer in enumerate(catalogue.of_kind("truecolour")):
        png = client.get(f"/tiles/{layer.id}/{t.z}/{t.x}/{t.y}.png").content
        assert png_at(png, xy)[:3] == pytest.approx(SCENE[i], abs=2) and png_at(png, xy)[3] == 255
    first = next(c for c in catalogue.of_kind("change") if c.before == DATES[0] and c.date == DATES[1])
    png = client.get(f"/tiles/{first.id}/{t.z}/{t.x}/{t.y}.png").content
    entry = next(e for e in first.legend if e["name"] == "Pasture->Residential")
    assert png_at(png, xy) == (*entry["color"], 255)  # the transition's colour
    t, xy = tile_and_pixel(*LEFT)
    assert png_at(client.get(f"/tiles/{first.id}/{t.z}/{t.x}/{t.y}.png").content, xy)[3] == 0  # unchanged: clear


def test_the_point_gives_class_confidence_and_change_for_every_date(client):
    found = client.get("/point", params={"lon": RIGHT[0], "lat": RIGHT[1]}).json()
    assert [(v["date"], v["name"]) for v in found["landcover"]] == list(zip(DATES, [h[1] for h in HALVES]))
    assert [v["confidence"] for v in found["landcover"]] == pytest.approx(CONFIDENCE)
    names = {(v["before"], v["date"]): v["name"] for v in found["change"]}
    assert names[DATES[0], DATES[1]] == "Pasture->Residential" and names[DATES[1], DATES[2]] == "Unchanged"
    assert client.get("/point", params={"lon": 0.0, "lat": 0.0}).json()["landcover"] == []


def test_outside_the_data_and_bad_parameters_give_json_4xx(client, catalogue):
    layer = catalogue.of_kind("landcover")[0].id
    t = TMS.tile(0.0, 0.0, TILE_ZOOM)
    for url, status in [(f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.png", 404), ("/tiles/nothing/1/0/0.png", 404),
                        (f"/tiles/{layer}/23/0/0.png", 422), (f"/tiles/{layer}/2/4/0.png", 422),
                        (f"/tiles/{layer}/a/0/0.png", 422), (f"/tiles/{layer}/-1/0/0.png", 422),
                        ("/point?lon=200&lat=0", 422), ("/point?lon=x&lat=0", 422), ("/point", 422)]:
        r = client.get(url)
        assert r.status_code == status, url
        assert r.headers["content-type"] == "application/json" and "detail" in r.json()


TRAVERSALS = [
    "/static/../../secret.txt", "/static/%2e%2e/%2e%2e/secret.txt", "/static/..%2f..%2fsecret.txt",
    "/static/%252e%252e/secret.txt", "/static/....//....//secret.txt", "/static/..\\..\\secret.txt",
    "/tiles/..%2f..%2fsecret.txt/1/0/0.png", "/tiles/%2e%2e/1/0/0.png", "/../secret.txt", "/%2e%2e/secret.txt",
    "/static/vendor/leaflet/../../../../../../../../etc/passwd", "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fapp.py",
]


def test_no_path_traversal_over_a_real_socket(catalogue, outputs):
    """Raw request lines (no client-side normalisation): nothing outside the package's static
    files and the catalogue's layers comes back."""
    with uvicorn_on_loopback(create_view_app(catalogue)) as base:
        host, port = base.removeprefix("http://").split(":")
        for target in TRAVERSALS:
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.putrequest("GET", target, skip_host=False, skip_accept_encoding=True)
            conn.endheaders()
            r = conn.getresponse()
            body = r.read()
            assert r.status in (400, 404, 422), (target, r.status)
            assert b"not for the web" not in body and b"root:" not in body and b"def create_view_app" not in body
            conn.close()


def test_over_a_real_socket_the_page_index_and_a_tile(catalogue):
    import httpx

    layer = catalogue.of_kind("landcover")[1]
    t, xy = tile_and_pixel(*RIGHT)
    with uvicorn_on_loopback(create_view_app(catalogue)) as base:
        page = httpx.get(base + "/")
        assert page.status_code == 200 and '<input type="range" id="date"' in page.text
        assert httpx.get(base + "/static/vendor/leaflet/leaflet.js").status_code == 200
        assert httpx.get(base + "/index.json").json()["dates"] == list(DATES)
        png = httpx.get(f"{base}/tiles/{layer.id}/{t.z}/{t.x}/{t.y}.png").content
        assert png_at(png, xy) == (*COLOUR["Residential"], 255)


def test_only_requests_addressed_to_the_loopback_names_are_answered(catalogue):
    app = create_view_app(catalogue, allowed_hosts=LOOPBACK_HOSTS)
    assert TestClient(app, base_url="http://127.0.0.1:8080").get("/index.json").status_code == 200
    assert TestClient(app, base_url="http://localhost:8080").get("/").status_code == 200
    # a page elsewhere that made attacker.example resolve to 127.0.0.1 (DNS rebinding)
    assert TestClient(app, base_url="http://attacker.example:8080").get("/index.json").status_code == 400


def test_a_file_gone_while_serving_gives_json_and_the_others_still_answer(tmp_path):
    import shutil

    data = write_outputs(tmp_path)
    found = find_layers([data])
    client = TestClient(create_view_app(found))
    gone = found.of_kind("landcover")[0]
    gone.path.unlink()
    t = TMS.tile(*LEFT, TILE_ZOOM)
    r = client.get(f"/tiles/{gone.id}/{t.z}/{t.x}/{t.y}.png")
    assert r.status_code == 410 and "changed or went away" in r.json()["detail"]
    point = client.get("/point", params={"lon": LEFT[0], "lat": LEFT[1]}).json()
    assert [v["date"] for v in point["landcover"]] == list(DATES[1:])
    shutil.rmtree(data)


def test_serving_and_exporting_never_write_into_the_data_folders(outputs, catalogue, client, tmp_path):
    before = snapshot(outputs)
    for layer in catalogue.layers.values():
        t = TMS.tile(*LEFT, 12)
        client.get(f"/tiles/{layer.id}/{t.z}/{t.x}/{t.y}.png")
    client.get("/point", params={"lon": LEFT[0], "lat": LEFT[1]})
    export_site(catalogue, tmp_path / "site", zooms=(12, 13))
    assert snapshot(outputs) == before


# ---- the static site --------------------------------------------------------------------------


def test_the_export_holds_the_page_tiles_and_grids(catalogue, tmp_path):
    done = export_site(catalogue, tmp_path / "site", zooms=(13, 15), basemap="https://tiles.example/{z}/{x}/{y}.png")
    site = tmp_path / "site"
    index = json.loads((site / "index.json").read_text())
    assert index["mode"] == "static" and index["zoom"] == [13, 15] and index["dates"] == list(DATES)
    assert index["basemap"] == "https://tiles.example/{z}/{x}/{y}.png"
    assert (site / "index.html").is_file() and (site / "static" / "view.js").is_file()
    assert (site / "static" / "vendor" / "leaflet" / "LICENSE").is_file()
    layer = catalogue.of_kind("landcover")[2]
    t, xy = tile_and_pixel(*LEFT, z=14)
    png = (site / "tiles" / layer.id / str(t.z) / str(t.x) / f"{t.y}.png").read_bytes()
    assert png_at(png, xy) == (*COLOUR["AnnualCrop"], 255)
    assert done["tiles"] == sum(1 for _ in (site / "tiles").rglob("*.png"))
    # each layer stops one level past its own resolution: the 40 m preview before the 10 m map
    fine, coarse = index["landcover"][2]["zoom"], index["truecolour"][2]["zoom"]
    assert fine == [13, 14] and coarse == [12, 12]  # coarser than asked: its own finest level, enlarged by the page
    assert sorted(p.name for p in (site / "tiles" / index["truecolour"][2]["id"]).iterdir()) == ["12"]
    assert not list(tmp_path.glob(".*s2lc-tmp"))  # the staging folder is gone
    grid = json.loads((site / "grids" / f"{layer.id}.json").read_text())
    import base64

    codes = np.frombuffer(base64.b64decode(grid["codes"]), np.uint8).reshape(grid["height"], grid["width"])
    assert set(np.unique(codes)) <= {0, CODE["AnnualCrop"], CODE["Residential"]}
    conf = np.frombuffer(base64.b64decode(grid["confidence"]), np.uint8)
    assert set(np.unique(conf)) <= {255, round(0.75 * 250)}


def test_the_export_refuses_what_it_must_not_overwrite(catalogue, outputs, tmp_path):
    with pytest.raises(ArgumentError, match="never writes into them"):
        export_site(catalogue, outputs / "site", zooms=(12, 12))
    before = snapshot(outputs.parent)
    for holder in (outputs, outputs.parent):  # the shown folder itself, and a folder that holds it
        with pytest.raises(ArgumentError, match="a folder being shown"):
            export_site(catalogue, holder, zooms=(12, 12), overwrite=True)
    assert snapshot(outputs.parent) == before
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty; use --overwrite"):
        export_site(catalogue, tmp_path / "site", zooms=(12, 12))
    with pytest.raises(OutputError, match="holds no site that s2lc view wrote"):  # --overwrite deletes only a site
        export_site(catalogue, tmp_path / "site", zooms=(12, 12), overwrite=True)
    assert (tmp_path / "site" / "keep.txt").read_text() == "mine"
    with pytest.raises(ArgumentError, match="zoom range 9-30"):
        export_site(catalogue, tmp_path / "other", zooms=(9, 30))
    assert not (tmp_path / "other").exists()
    export_site(catalogue, tmp_path / "other", zooms=(12, 12))
    (tmp_path / "other" / "stale.txt").write_text("from before")
    export_site(catalogue, tmp_path / "other", zooms=(12, 12), overwrite=True)  # an earlier site is replaced
    assert not (tmp_path / "other" / "stale.txt").exists() and (tmp_path / "other" / "index.json").is_file()


def test_the_export_into_the_current_folder(catalogue, tmp_path, monkeypatch):
    site = tmp_path / "here"
    site.mkdir()
    monkeypatch.chdir(site)
    done = export_site(catalogue, ".", zooms=(12, 12))
    assert done["site"] == "." and (site / "index.json").is_file()
    assert Path(os.getcwd()).samefile(site)  # the folder is kept: a shell standing in it stays there
    assert not list(tmp_path.glob(".*s2lc-tmp"))


def test_a_failed_export_leaves_nothing(catalogue, tmp_path, monkeypatch):
    import errno

    from s2lc.view import export as export_module

    real, calls = export_module._write, []

    def full_disk(path, data):  # the disk fills up after the page's data is written
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(export_module, "_write", full_disk)
    with pytest.raises(OutputError, match=r"cannot write the site .*site \(No space left on device\)"):
        export_site(catalogue, tmp_path / "site", zooms=(12, 12))
    assert list(tmp_path.iterdir()) == []


# ---- the command ------------------------------------------------------------------------------


def test_cli_export_writes_the_site(outputs, tmp_path):
    result = CliRunner().invoke(cli, ["view", str(outputs), "--export", str(tmp_path / "site"), "--zoom", "12-13"])
    assert result.exit_code == 0, result.output
    assert "3 maps on 3 dates, 3 change maps, 3 true-colour previews: wrote" in result.output
    assert json.loads((tmp_path / "site" / "index.json").read_text())["zoom"] == [12, 13]


@pytest.mark.parametrize(("args", "message"), [
    (["--zoom", "12-13"], "--zoom applies to --export"),
    (["--export", "SITE", "--zoom", "15-12"], "give MIN-MAX zoom levels"),
    (["--export", "SITE", "--zoom", "x"], "give MIN-MAX zoom levels"),
])
def test_cli_bad_options_are_one_line_errors(outputs, tmp_path, args, message):
    args = [a.replace("SITE", str(tmp_path / "site")) for a in args]
    result = CliRunner().invoke(cli, ["view", str(outputs), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "site").exists()


def test_cli_a_folder_without_maps(tmp_path):
    result = CliRunner().invoke(cli, ["view", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "no dated land-cover map" in result.output
    assert "Traceback" not in result.output


def test_cli_a_port_in_use_is_refused_before_any_url_is_shown(outputs):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["view", str(outputs), "--port", str(port)])
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "http://" not in result.output


def test_folders_given_twice_or_nested_are_searched_once(outputs):
    once = find_layers([outputs])
    again = find_layers([outputs / "change", outputs, outputs / "maps", outputs])
    assert sorted(again.layers) == sorted(once.layers)


def test_maps_of_other_places_without_a_tile_are_told_apart(tmp_path):
    for i, x0 in enumerate((500000, 520000)):  # two GeoTIFF crops, no MGRS tile in their names
        writers.write_class_map(tmp_path / f"crop{i}_landcover.tif", class_map("Forest", "Pasture"),
                                Affine(10, 0, x0, 0, -10, 5100000), CRS, CLASSES,
                                {"S2LC_PRODUCT_ID": f"crop{i}", "S2LC_SENSING_TIME": "2020-04-06T10:00:00+00:00"})
    assert [m.group for m in find_layers([tmp_path]).of_kind("landcover")] == ["untiled", "untiled-2"]


def test_cli_binds_loopback_by_default():
    from s2lc.cli.view import view

    host = next(p for p in view.params if p.name == "host")
    port = next(p for p in view.params if p.name == "port")
    assert host.default == "127.0.0.1" and port.default == 8080


def test_the_package_carries_leaflet_and_its_licence():
    from s2lc.view.app import STATIC

    assert "BSD 2-Clause" in (STATIC / "vendor" / "leaflet" / "LICENSE").read_text()
    html = (STATIC / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # nothing from a CDN: it works offline
    assert os.path.getsize(STATIC / "vendor" / "leaflet" / "leaflet.js") > 100_000
