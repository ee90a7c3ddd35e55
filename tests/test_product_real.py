"""The real products of ../shared/data/s2 (skipped when absent): what the issue's "done when" asks."""

import json
import time

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.windows import Window

from s2lc.cli.main import cli
from s2lc.errors import BandError
from s2lc.product import open_product

pytestmark = pytest.mark.realdata
RGB = ["B04", "B03", "B02"]


def raw(product, pattern, window=None):
    path = next(product.glob(f"GRANULE/*/IMG_DATA/**/{pattern}"))
    with rasterio.open(path) as src:
        return src.read(1, window=window).astype(np.float64)


def test_real_l1c_is_baseline_0204_without_offset_and_reads_rgb_at_10m(real_l1c):
    with open_product(real_l1c) as p:
        assert (p.level, p.baseline, p.tile) == ("L1C", "02.04", "T33UUU")
        assert set(p.offsets.values()) == {0.0}
        assert [p.native_resolution(b) for b in RGB] == [10, 10, 10]
        start = time.perf_counter()
        rgb = p.read(RGB)
        seconds = time.perf_counter() - start
        assert rgb.shape == (3, 768, 1536) and np.isfinite(rgb).all()
        for i, band_id in enumerate(RGB):
            np.testing.assert_array_equal(rgb[i], raw(real_l1c, f"*_{band_id}.jp2"))  # 10 m, no offset: the DN
    with open_product(real_l1c, clouds="product") as p:
        assert p.read_masks().cloud is None  # this crop carries no QI_DATA (clouds="auto" detects them: test_clouds.py)
    assert seconds < 10


@pytest.mark.parametrize("window", [Window(0, 0, 100, 70), Window(1401, 659, 135, 109), Window(333, 257, 190, 131)], ids=str)
def test_real_l1c_windows_across_jp2_tiles_equal_the_full_read(real_l1c, window):
    sl = (slice(None), slice(window.row_off, window.row_off + window.height),
          slice(window.col_off, window.col_off + window.width))
    with open_product(real_l1c) as p:
        bands = ["B04", "B05", "B09"]
        np.testing.assert_array_equal(p.read(bands, window), p.read(bands)[sl])


def test_real_l2a_is_baseline_0400_with_offset_and_about_60_percent_cloud(real_l2a):
    with open_product(real_l2a) as p:
        assert (p.level, p.baseline, p.tile) == ("L2A", "04.00", "T29UNU")
        assert set(p.offsets.values()) == {-1000.0}
        assert 55 < p.cloud_cover < 65
        assert p.grid.shape == (10980, 10980) and p.grid.crs.to_epsg() == 32629
        assert [p.native_resolution(b) for b in RGB] == [60, 60, 60]  # only R60m was kept
        with pytest.raises(BandError, match="no B10"):
            p.read(["B10"])
        window = Window(3000, 3000, 600, 600)
        rgb = p.read(RGB, window)
        masks = p.read_masks(window)
    assert rgb.shape == (3, 600, 600) and np.isfinite(rgb).all() and not masks.nodata.any()
    for i, band_id in enumerate(RGB):
        dn = raw(real_l2a, f"R60m/*_{band_id}_60m.jp2", Window(500, 500, 100, 100))
        assert rgb[i].mean() == pytest.approx(dn.mean() - 1000, rel=0.01)  # the offset is applied


def test_real_l2a_window_at_the_swath_edge_keeps_valid_pixels_finite(real_l2a):
    with open_product(real_l2a) as p:
        window = Window(0, 5000, 10980, 60)
        rgb = p.read(RGB, window)
        masks = p.read_masks(window)
    assert masks.nodata.any() and masks.valid.any()
    # the mask also draws on the 10 m detector footprint and 20 m SCL: its edge and the 60 m bands' differ by a pixel or two
    assert np.isfinite(rgb[:, masks.valid]).mean() > 0.99
    assert np.isnan(rgb[:, masks.nodata]).mean() > 0.99


def test_s2lc_info_reports_both_real_products(real_l1c, real_l2a):
    l2a = json.loads(CliRunner().invoke(cli, ["-q", "info", "--json", str(real_l2a)]).stdout)
    assert l2a["baseline"] == "04.00" and l2a["offset_applied"] and set(l2a["offsets"].values()) == {-1000.0}
    assert 55 < l2a["cloud_cover"] < 65 and l2a["cloud_source"] == "SCL"
    assert 0.55 < l2a["valid_fraction"] < 0.65  # about 40 % no data beyond the swath edge
    l1c = json.loads(CliRunner().invoke(cli, ["-q", "info", "--json", str(real_l1c)]).stdout)
    assert l1c["baseline"] == "02.04" and not l1c["offset_applied"] and set(l1c["offsets"].values()) == {0.0}
    assert l1c["grid"]["width"] == 1536 and l1c["native_resolution"]["B04"] == 10
