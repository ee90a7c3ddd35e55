"""Classify Sentinel-2 products of one place at several dates, then walk the series of maps.

    python examples/time_series.py S2A_MSIL2A_2020….SAFE S2B_MSIL2A_2021….zip S2A_MSIL2A_2022….SAFE -o out

Every product is classified with the same model (two models would show algorithm change as
land change): the maps go to ``OUT/maps`` — a map already there is reused, so a run that was
interrupted goes on where it stopped — and the change outputs to ``OUT/change``. The products
may be given in any order: the series is ordered by sensing time. The script prints what
changed between each date and the next, from the first to the last, and how much of the
change is flicker (pixels that went back to a class they had left).

This is ``s2lc classify`` for each product followed by ``s2lc change`` on the maps, written
with the Python API to show how to script over many dates.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from s2lc.change import time_series
from s2lc.classify import classify, output_paths
from s2lc.errors import S2lcError
from s2lc.product import open_product


def classify_all(products: list[str], maps_dir: Path, model: str | None, device: str,
                 overwrite: bool) -> list[Path]:
    """Classify each product into ``maps_dir`` (reusing maps already there); the map paths."""
    maps = []
    for product in products:
        with open_product(product) as prod:
            path = output_paths(maps_dir, prod.id)["map"]
        if path.exists() and not overwrite:
            logging.info("%s: reusing %s", product, path)
        else:
            result = classify(product, model, device=device, progress=True)
            path = result.save(maps_dir, overwrite=overwrite)["map"]
        maps.append(path)
    return maps


def report(series) -> None:
    """What changed, on stdout."""
    for pair in (*series.pairs, series.overall) if len(series.pairs) > 1 else series.pairs:
        s = pair.summary()
        print(f"{s['before']['sensing_time'][:10]} -> {s['after']['sensing_time'][:10]}: "
              f"{s['area_ha']['changed']:,.1f} ha changed of {s['area_ha']['compared']:,.1f} ha compared "
              f"({s['area_ha']['not_compared_cloud']:,.1f} ha under cloud not compared)")
        for t in s["transitions"][:3]:
            print(f"    {t['label']}: {t['area_ha']:,.1f} ha")
    s = series.summary()
    t = s["trajectory"]
    print(f"changed at least once: {t['changed_at_least_once_ha']:,.1f} ha, of which flicker "
          f"{t['flicker_ha']:,.1f} ha")
    if s["overstatement"]:
        print(f"the date-to-date changes add up to {s['overstatement']:.1f} times the first-to-last change")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("products", nargs="+", help=".SAFE folders, zipped .SAFE or GeoTIFFs of one place")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    parser.add_argument("--model", help="s2lc checkpoint (default: the shipped model)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--align", action="store_true", help="resample maps on other grids onto the first one's")
    parser.add_argument("--overwrite", action="store_true", help="classify again and replace outputs")
    args = parser.parse_args(argv)
    if len(args.products) < 2:
        parser.error("give at least two products")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")

    maps_dir, change_dir = args.out / "maps", args.out / "change"
    try:
        maps_dir.mkdir(parents=True, exist_ok=True)
        maps = classify_all(args.products, maps_dir, args.model, args.device, args.overwrite)
        series = time_series(maps, align=args.align, progress=True)
        report(series)
        change_dir.mkdir(exist_ok=True)
        series.save(change_dir, overwrite=args.overwrite, progress=True)
    except S2lcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"change outputs in {change_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
