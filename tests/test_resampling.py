"""Cubic and nearest upsampling: alignment, no-data handling, windows equal to full reads."""

import numpy as np
import pytest
from affine import Affine
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from s2lc.errors import ArgumentError
from s2lc.resampling import (
    FILL_ITERATIONS,
    UPSAMPLERS,
    fill_invalid,
    keys_weights,
    source_window,
    upsample_cubic,
    upsample_nearest,
)

RNG = np.random.default_rng(42)


def full(data, factor, valid=None):
    h, w = data.shape
    return upsample_cubic(data, factor, data_window=Window(0, 0, w, h), window=Window(0, 0, w * factor, h * factor),
                          coarse_shape=data.shape, valid=valid)


def windowed(data, factor, window, valid=None, method="cubic"):
    src = source_window(window, factor, data.shape, method)
    sl = (slice(src.row_off, src.row_off + src.height), slice(src.col_off, src.col_off + src.width))
    if method == "nearest":
        return upsample_nearest(data[sl], factor, data_window=src, window=window)
    return upsample_cubic(data[sl], factor, data_window=src, window=window, coarse_shape=data.shape,
                          valid=None if valid is None else valid[sl])


def test_keys_weights_sum_to_one_and_interpolate_samples():
    t = np.linspace(0, 0.99, 50)
    np.testing.assert_allclose(keys_weights(t).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(keys_weights(np.array([0.0])), [[0.0, 1.0, 0.0, 0.0]])
    # Keys a=-0.5 at the midpoint: (-1/16, 9/16, 9/16, -1/16)
    np.testing.assert_allclose(keys_weights(np.array([0.5]))[0], [-0.0625, 0.5625, 0.5625, -0.0625])


@pytest.mark.parametrize("factor", [2, 3, 6])
def test_fine_pixel_centres_land_where_the_map_says(factor):
    """A quadratic of map x/y sampled at coarse pixel centres comes back exactly at the 10 m pixel
    centres: the grids share their corner and no half-pixel shift creeps in."""
    n = 24
    x0, y0, coarse_res = 300000.0, 5900040.0, 10.0 * factor

    def surface(x, y):
        u, v = (x - x0) / 100.0, (y0 - y) / 100.0
        return 500 + 40 * u + 25 * v + 3 * u * u - 2 * u * v

    cx = x0 + (np.arange(n) + 0.5) * coarse_res
    cy = y0 - (np.arange(n) + 0.5) * coarse_res
    coarse = surface(cx[None, :], cy[:, None]).astype(np.float32)
    fx = x0 + (np.arange(n * factor) + 0.5) * 10.0
    fy = y0 - (np.arange(n * factor) + 0.5) * 10.0
    expected = surface(fx[None, :], fy[:, None])
    out = full(coarse, factor)
    inner = slice(2 * factor, -2 * factor)  # away from the clamped edges
    np.testing.assert_allclose(out[inner, inner], expected[inner, inner], atol=2e-3)


@pytest.mark.parametrize("factor", [2, 6])
def test_agrees_with_gdal_cubic_inside_the_raster(factor):
    """An independent implementation: GDAL's cubic (also Keys, a=-0.5) on the same grids."""
    coarse = RNG.normal(1000, 300, (30, 30)).astype(np.float32)
    gdal = np.zeros((30 * factor, 30 * factor), np.float32)
    reproject(
        coarse, gdal, src_crs="EPSG:32633", dst_crs="EPSG:32633", resampling=Resampling.cubic,
        src_transform=Affine(10 * factor, 0, 300000, 0, -10 * factor, 5900040),
        dst_transform=Affine(10, 0, 300000, 0, -10, 5900040),
    )
    inner = slice(3 * factor, -3 * factor)  # GDAL treats the raster border differently
    np.testing.assert_allclose(full(coarse, factor)[inner, inner], gdal[inner, inner], atol=0.01)


WINDOWS = [
    Window(0, 0, 1, 1),
    Window(0, 0, 17, 9),  # top-left corner
    Window(163, 97, 17, 11),  # bottom-right corner (grid 180 x 108)
    Window(37, 41, 61, 23),  # interior, odd offsets
    Window(5, 0, 1, 108),  # one column, full height
    Window(0, 53, 180, 1),  # one row
    Window(29, 31, 7, 5),  # straddles the no-data holes
    Window(0, 0, 180, 108),  # everything
]


@pytest.mark.parametrize("factor", [2, 6])
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w.col_off},{w.row_off},{w.width}x{w.height}")
def test_window_equals_the_same_region_of_a_full_read(factor, window):
    shape = (108 // factor, 180 // factor)
    data = RNG.normal(2000, 500, shape).astype(np.float32)
    valid = RNG.random(shape) > 0.15
    valid[:, :3] = False  # a no-data strip too
    whole = full(data, factor, valid)
    part = windowed(data, factor, window, valid)
    sl = (slice(window.row_off, window.row_off + window.height), slice(window.col_off, window.col_off + window.width))
    np.testing.assert_array_equal(part, whole[sl])  # bit for bit, NaN where NaN


def test_no_data_does_not_bleed_into_valid_pixels():
    """Zeros in the no-data area never reach the kernel: a flat field stays flat up to its edge."""
    data = np.full((20, 20), 1000.0, np.float32)
    data[:, :5] = 0.0  # swath edge, DN 0
    data[12, 12] = 0.0  # an isolated hole
    valid = data > 0
    out = full(data, 6, valid)
    expect_valid = np.repeat(np.repeat(valid, 6, 0), 6, 1)
    np.testing.assert_array_equal(np.isfinite(out), expect_valid)
    np.testing.assert_allclose(out[expect_valid], 1000.0, atol=1e-3)
    naive = full(data, 6)  # what a no-data-blind cubic does
    assert naive[expect_valid].min() < 950


def test_valid_pixels_beside_no_data_stay_finite():
    data = RNG.normal(1500, 200, (40, 40)).astype(np.float32)
    valid = RNG.random((40, 40)) > 0.5  # half the pixels missing, scattered
    for factor in (2, 6):
        out = full(data, factor, valid)
        np.testing.assert_array_equal(np.isfinite(out), np.repeat(np.repeat(valid, factor, 0), factor, 1))
        assert np.nanmin(out) > 1500 - 10 * 200 and np.nanmax(out) < 1500 + 10 * 200


def test_fill_reaches_exactly_the_kernel_reach():
    data = np.zeros((11, 11), np.float32)
    valid = np.zeros((11, 11), bool)
    data[5, 5], valid[5, 5] = 7.0, True
    filled = fill_invalid(data, valid)
    rows, cols = np.indices(data.shape)
    distance = np.maximum(abs(rows - 5), abs(cols - 5))
    np.testing.assert_array_equal(filled[distance <= FILL_ITERATIONS], 7.0)
    np.testing.assert_array_equal(filled[distance > FILL_ITERATIONS], 0.0)


def test_nearest_repeats_each_coarse_pixel():
    classes = RNG.integers(0, 12, (10, 15)).astype(np.uint8)
    whole = upsample_nearest(classes, 2, data_window=Window(0, 0, 15, 10), window=Window(0, 0, 30, 20))
    np.testing.assert_array_equal(whole, np.kron(classes, np.ones((2, 2), np.uint8)))
    assert whole.dtype == np.uint8
    window = Window(7, 3, 11, 9)
    np.testing.assert_array_equal(windowed(classes, 2, window, method="nearest"), whole[3:12, 7:18])


def test_source_window_stays_inside_the_coarse_raster_and_is_small():
    for window in WINDOWS:
        src = source_window(window, 6, (18, 30))
        assert src.col_off >= 0 and src.row_off >= 0 and src.col_off + src.width <= 30 and src.row_off + src.height <= 18
    src = source_window(Window(600, 600, 60, 60), 6, (1830, 1830))
    assert src.width == src.height == 10 + 2 * (2 + FILL_ITERATIONS)  # 10 coarse pixels plus kernel and fill reach


def test_upsampling_refuses_data_that_do_not_cover_the_window():
    data = np.ones((5, 5), np.float32)
    with pytest.raises(ArgumentError, match="source_window"):
        upsample_cubic(data, 2, data_window=Window(0, 0, 5, 5), window=Window(8, 8, 4, 4), coarse_shape=(50, 50))


def test_registry_names_the_methods():
    assert set(UPSAMPLERS) == {"cubic", "nearest"}


def test_cell_index_maps_pixels_to_coarse_cells_by_their_centres():
    from s2lc.resampling import cell_index

    np.testing.assert_array_equal(cell_index(0, 10980, 10980, 915), np.arange(10980) // 12)  # whole cells of 12
    np.testing.assert_array_equal(cell_index(3, 8, 10, 4), [1, 1, 2, 2, 3])  # cells of 2.5 pixels: centres 3.5 … 7.5
    np.testing.assert_array_equal(cell_index(0, 250, 250, 21)[[0, 11, 12, 249]], [0, 0, 1, 20])
