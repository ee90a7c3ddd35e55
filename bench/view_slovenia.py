"""s2lc view on real data: the five summer dates of ../shared/data/eolearn_slovenia, classified,
compared, served, and looked at in headless Chromium; the screenshot goes to docs/images.

    python bench/view_slovenia.py [--out /tmp/s2lc_view_slovenia] [--shot docs/images/view_slovenia.png]

Runs the commands a user would (s2lc classify, s2lc change, s2lc view, s2lc view --export), then
times the tiles the page asked for and the export. Needs the [serve] extra, Playwright and a
system Chromium (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "eolearn_slovenia"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def s2lc(*args: str) -> None:
    print("$ s2lc", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "s2lc", "-q", *args], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def look(url: str, shot: Path) -> dict:
    """Load the page, move the slider one date on, show the first change, click the scene's centre."""
    from playwright.sync_api import sync_playwright

    tile_ms: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("requestfinished", lambda r: "/tiles/" in r.url and tile_ms.append(r.timing["responseEnd"]))
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=30000)
        page.wait_for_load_state("networkidle")
        first_view = time.perf_counter() - t0
        page.focus("#date")
        page.keyboard.press("ArrowRight")
        page.fill("#opacity", "60")  # the scene shows through
        page.select_option("#change", index=1)
        page.wait_for_load_state("networkidle")
        centre = page.evaluate("""() => { const v = window.s2lcView, b = v.index.bounds;
            const p = v.map.latLngToContainerPoint([(b[1] + b[3]) / 2, (b[0] + b[2]) / 2]); return [p.x, p.y]; }""")
        page.mouse.click(*centre)
        page.wait_for_selector("#info:not([hidden])")
        page.wait_for_timeout(500)
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        seen = {"date": page.inner_text("#date-label"), "class": page.inner_text("#info-class"),
                "confidence": page.inner_text("#info-confidence"), "change": page.inner_text("#info-change"),
                "first_view_s": round(first_view, 2), "tiles_requested": len(tile_ms),
                "tile_ms_median": round(sorted(tile_ms)[len(tile_ms) // 2], 1) if tile_ms else None}
        browser.close()
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/s2lc_view_slovenia"))
    ap.add_argument("--shot", type=Path, default=ROOT / "docs" / "images" / "view_slovenia.png")
    ap.add_argument("--stride", type=int, default=16, help="classify's --stride (16: 160 m cells over this 1 km scene)")
    args = ap.parse_args()
    if not DATA.is_dir() or CHROMIUM is None:
        sys.exit(f"needs {DATA} and a system Chromium")
    shutil.rmtree(args.out, ignore_errors=True)
    scenes = sorted(str(p) for p in DATA.glob("S2_L1C_*_slovenia.tif"))
    s2lc("classify", *scenes, "-o", str(args.out / "maps"), "--stride", str(args.stride))
    s2lc("change", str(args.out / "maps"), "-o", str(args.out / "change"))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "s2lc", "-q", "view", str(args.out / "maps"),
                               str(args.out / "change"), "--port", str(port)])
    try:
        wait_until_up(f"http://127.0.0.1:{port}/index.json")
        seen = look(f"http://127.0.0.1:{port}/", args.shot)
    finally:
        server.terminate()
        server.wait(10)
    t0 = time.perf_counter()
    s2lc("view", str(args.out / "maps"), str(args.out / "change"), "--export", str(args.out / "site"))
    export_s = time.perf_counter() - t0
    files = [p for p in (args.out / "site").rglob("*") if p.is_file()]
    seen.update(export_s=round(export_s, 1), export_files=len(files),
                export_mb=round(sum(p.stat().st_size for p in files) / 1e6, 2),
                export_zooms=json.loads((args.out / "site" / "index.json").read_text())["zoom"])
    print(json.dumps(seen, indent=1))


if __name__ == "__main__":
    main()
