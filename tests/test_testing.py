"""s2lc.testing as a user meets it: the documented example, the layout helpers, the crop yardsticks."""

import numpy as np
import pytest

from s2lc.errors import ArgumentError
from s2lc.product import open_product
from s2lc.testing import (
    image_file,
    make_product,
    make_scene,
    metadata_xml,
    product_name,
)
from s2lc.yardsticks import whole_patches


def test_the_example_of_docs_reader_md(tmp_path):
    path = make_product(tmp_path, "L2A", "04.00", size=240, zipped=False, seed=0,
                        cloud_fraction=0.2, nodata_cols=40, scene=None, only_r60m=False)
    truth = make_scene(240, seed=0, cloud_fraction=0.2, nodata_cols=40)
    with open_product(path) as p:
        b04 = p.read(["B04"])[0]
    assert (b04 == truth.band_dn10("B04"))[:, 40:].all()
    assert np.isnan(b04[:, :40]).all()


@pytest.mark.parametrize("level", ["L1C", "L2A"])
def test_image_file_names_the_band_files_that_make_product_writes_and_lists(tmp_path, level):
    safe = make_product(tmp_path, level, "02.09", size=12, cloud_fraction=0)
    written = {p.relative_to(safe).as_posix() for p in safe.glob("GRANULE/*/IMG_DATA/**/*.jp2")}
    bands = {"L1C": [("B04", None), ("B8A", None)], "L2A": [("B04", 10), ("B8A", 20), ("SCL", 60)]}[level]
    named = {f"{image_file(level, band_id, resolution)}.jp2" for band_id, resolution in bands}
    assert named <= written
    mtd = (safe / f"MTD_MSI{level}.xml").read_text()
    assert all(f"<IMAGE_FILE>{name[:-4]}</IMAGE_FILE>" in mtd for name in named)
    assert mtd == metadata_xml(level, "02.09", product_name(level, "02.09"), _listed(mtd), 0.0)


def _listed(mtd: str) -> list[str]:
    return [line.split(">")[1].split("<")[0] for line in mtd.splitlines() if "<IMAGE_FILE>" in line]


def test_bad_arguments_are_argument_errors(tmp_path):
    with pytest.raises(ArgumentError, match="multiple of 6"):
        make_scene(100)
    with pytest.raises(ArgumentError, match="level must be"):
        make_product(tmp_path, "L3")


def test_whole_patches_drops_the_partial_edge_and_keeps_leading_axes():
    a = np.arange(2 * 130 * 70).reshape(2, 130, 70)
    blocks = whole_patches(a)
    assert blocks.shape == (2, 1, 2, 64, 64)
    assert (blocks[1, 0, 1] == a[1, 64:128, :64]).all()
