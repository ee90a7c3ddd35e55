"""Classify one Sentinel-2 product from Python and print hectares per class.

    python examples/classify_scene.py S2A_MSIL1C_...SAFE maps/ [--stride 32]

The same as ``s2lc classify PRODUCT -o maps/``, with the result in hand for further work:
``res.class_map`` (codes on the product's 10 m grid), ``res.confidence``, ``res.stats``.
"""

from __future__ import annotations

import argparse
import logging

from s2lc.classify import classify


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("product", help=".SAFE folder, zipped .SAFE, or GeoTIFF")
    ap.add_argument("out", help="output folder")
    ap.add_argument("--model", default=None, help="s2lc checkpoint (default: the shipped model)")
    ap.add_argument("--stride", type=int, default=64, choices=(64, 32, 16, 8))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")

    res = classify(args.product, args.model, stride=args.stride, progress=True)
    paths = res.save(args.out, overwrite=args.overwrite)
    print(f"{res.product_id}: {res.status}")
    for name, ha in sorted(res.stats["area_ha"].items(), key=lambda kv: -kv[1]):
        if ha:
            print(f"  {name:22s} {ha:12,.1f} ha")
    print("wrote", ", ".join(p.name for p in paths.values()))


if __name__ == "__main__":
    main()
