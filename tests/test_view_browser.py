"""s2lc view in a real browser: headless Chromium (the system's, driven by Playwright) loads the
page, moves the date slider, reads a clicked pixel's class and saves a screenshot; against
``s2lc view``'s server and against the ``--export`` site served by a plain static file server.

Install the browser with ``apt-get install chromium`` (Playwright never downloads one here).
Without it these tests skip, unless ``S2LC_REQUIRE_BROWSER=1`` (as ``.ci/run`` sets), when they fail.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRED = os.environ.get("S2LC_REQUIRE_BROWSER") == "1"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    return os.environ.get("S2LC_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)


def _missing(what: str):
    message = f"{what}; apt-get install chromium, pip install playwright (or unset S2LC_REQUIRE_BROWSER)"
    return pytest.fail(message) if REQUIRED else pytest.skip(message)


try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - dev installs carry it
    sync_playwright = None

pytest.importorskip("fastapi")
pytest.importorskip("rio_tiler")

from PIL import Image  # noqa: E402
from test_server import uvicorn_on_loopback  # noqa: E402
from test_view import COLOUR, CONFIDENCE, DATES, HOSTILE, LEFT, RIGHT, write_outputs  # noqa: E402

from s2lc.view import create_view_app, export_site, find_layers  # noqa: E402


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return find_layers([write_outputs(tmp_path_factory.mktemp("view"))])


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        _missing("Playwright is not installed")
    path = _browser()
    if path is None:
        _missing("no Chromium found (S2LC_CHROMIUM, or chromium on PATH)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@contextmanager
def static_server(folder: Path):
    """Python's own static file server on an ephemeral loopback port: any web host would do."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def served(how: str, catalogue, tmp_path: Path):
    if how == "server":
        with uvicorn_on_loopback(create_view_app(catalogue)) as base:
            yield base
    else:
        export_site(catalogue, tmp_path / "site", zooms=(12, 15))
        with static_server(tmp_path / "site") as base:
            yield base


def screen_xy(page, lonlat: tuple[float, float]) -> tuple[float, float]:
    return tuple(page.evaluate(
        """([lon, lat]) => { const p = window.s2lcView.map.latLngToContainerPoint([lat, lon]);
                             const r = document.getElementById('map').getBoundingClientRect();
                             return [p.x + r.left, p.y + r.top]; }""", list(lonlat)))


def colour_at(page, xy: tuple[float, float]) -> tuple[int, int, int]:
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    return shot.getpixel((round(xy[0]), round(xy[1])))


def wait_for_layer(page, layer_id: str) -> None:
    """Until the layer's tiles are loaded and every other land-cover layer is gone."""
    page.wait_for_selector(f'.leaflet-landcover-pane img.leaflet-tile-loaded[src*="tiles/{layer_id}/"]', timeout=15000)
    page.wait_for_function(
        """(id) => [...document.querySelectorAll('.leaflet-landcover-pane img')].every(i => i.src.includes('tiles/' + id + '/'))
                   && !document.querySelector('.leaflet-landcover-pane img:not(.leaflet-tile-loaded)')""",
        arg=layer_id, timeout=15000)
    page.wait_for_timeout(300)  # Leaflet fades tiles in over 200 ms


@pytest.mark.parametrize("how", ["server", "static"])
def test_the_page_shows_maps_moves_in_time_and_answers_a_click(browser, catalogue, tmp_path, how):
    maps = catalogue.of_kind("landcover")
    errors: list[str] = []
    with served(how, catalogue, tmp_path) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        assert page.inner_text("#date-label") == DATES[0]
        assert page.get_attribute("#date", "type") == "range" and page.get_attribute("#date", "max") == "2"
        legend = page.inner_text("#legend")
        assert "Forest" in legend and "Residential" in legend and "Sea or lake" in legend
        page.fill("#opacity", "100")  # opaque: the screen shows the class colours themselves
        wait_for_layer(page, maps[0].id)
        left, right = screen_xy(page, LEFT), screen_xy(page, RIGHT)
        assert colour_at(page, left) == COLOUR["Forest"] and colour_at(page, right) == COLOUR["Pasture"]

        page.focus("#date")
        page.keyboard.press("ArrowRight")  # the slider, as a user moves it
        assert page.inner_text("#date-label") == DATES[1]
        wait_for_layer(page, maps[1].id)
        assert colour_at(page, right) == COLOUR["Residential"]  # the layer changed with the date

        page.mouse.click(*left)
        page.wait_for_selector("#info:not([hidden])", timeout=10000)
        page.wait_for_function("() => document.getElementById('info-class').textContent === 'Forest'", timeout=10000)
        assert page.inner_text("#info-date") == DATES[1]
        assert f"{round(100 * CONFIDENCE[1])} %" in page.inner_text("#info-confidence")
        assert page.locator("#info-dates tbody tr").count() == 3
        assert page.locator("#chart svg rect").count() == 6  # two classes on each of three dates

        first_pair = next(c for c in catalogue.of_kind("change") if (c.before, c.date) == (DATES[0], DATES[1]))
        page.select_option("#change", first_pair.id)
        page.wait_for_selector(f'.leaflet-change-pane img.leaflet-tile-loaded[src*="tiles/{first_pair.id}/"]',
                               timeout=15000)
        assert "Pasture → Residential" in page.inner_text("#change-legend")
        assert "Unchanged" not in page.inner_text("#change-legend")  # the tiles leave it clear
        page.mouse.click(*right)
        page.wait_for_function("() => document.getElementById('info-change').textContent === 'Pasture → Residential'",
                               timeout=10000)
        assert page.inner_text("#info-class") == "Residential"

        # the keyboard's click: Enter on the focused map asks about its centre
        page.evaluate("([lon, lat]) => window.s2lcView.map.setView([lat, lon], window.s2lcView.map.getZoom(), "
                      "{animate: false})", list(LEFT))
        page.focus("#map")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('info-class').textContent === 'Forest'", timeout=10000)
        page.focus("#date")
        page.keyboard.press("End")  # the last date, whose left half holds the class with a hostile label
        wait_for_layer(page, maps[2].id)
        page.mouse.click(*left)
        page.wait_for_function("(t) => document.getElementById('info-class').textContent === t", arg=HOSTILE,
                               timeout=10000)
        assert HOSTILE in page.inner_text("#legend") and HOSTILE in page.inner_text("#info-dates")
        assert page.locator('img[src="x"]').count() == 0 and page.evaluate("() => window.__xss") is None
        shot = tmp_path / f"view_{how}.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        page.close()
    assert errors == []
