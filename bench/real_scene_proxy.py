"""How a model's map of the real T33UUU crop agrees with what the crop's own NIR band says.

Water is dark in near infrared (B08 < 1000), forest is dark in red but not in NIR (B04 < 900,
B08 ≥ 1000); the RGB model sees neither band. For the patches mostly (> 50 %) water or forest,
this reports the classes the map gives them, and for the patches the map calls water, how many
hold at least 20 % water (s2lc.yardsticks.nir_proxies).

Usage: python bench/real_scene_proxy.py [--model PATH] [--stride 64] [--product SAFE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from s2lc.yardsticks import T33UUU, agreement


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--product", type=Path, default=T33UUU)
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument("--stride", type=int, default=64)
    args = ap.parse_args()
    print(json.dumps(agreement(args.product, args.model, args.stride), indent=2))


if __name__ == "__main__":
    main()
