"""s2lc.patches: DN → model input → patch batches, the one path shared by classify and serve."""

import numpy as np
import pytest

from s2lc.checkpoint import MS_SCALING, RGB_SCALING, ModelContract
from s2lc.errors import ArgumentError
from s2lc.patches import cell_counts, gather, input_dtype, model_input, pad_block, patch_counts
from s2lc.tiling import TileGrid


def contract(scaling, bands=("B04", "B03", "B02")):
    return ModelContract("resnet18", list(bands), ["A", "B"], dict(scaling), [0.5] * len(bands), [0.2] * len(bands))


def test_rgb_input_is_the_eurosat_uint8_values_with_no_data_at_zero():
    dn = np.array([[[0.0, 2750.0], [5000.0, np.nan]]] * 3, np.float32)  # (3, 2, 2)
    x, valid = model_input(dn, contract(RGB_SCALING))
    assert x.dtype == np.uint8 and input_dtype(contract(RGB_SCALING)) is np.uint8
    assert x[0].tolist() == [[1, 255], [255, 0]]  # 0 → 1, 2750 and above → 255, NaN → nodata 0
    assert valid.tolist() == [[True, True], [True, False]]


def test_a_nan_in_any_band_or_a_known_gap_makes_the_pixel_no_data_in_every_band():
    dn = np.full((3, 2, 2), 1000.0, np.float32)
    dn[2, 0, 0] = np.nan
    known = np.array([[True, True], [False, True]])
    x, valid = model_input(iter(dn), contract(RGB_SCALING), valid=known)  # bands may come one at a time
    assert valid.tolist() == [[False, True], [False, True]]
    assert (x[:, ~valid] == 0).all() and (x[:, valid] > 0).all()


def test_ms_input_stays_float_dn():
    c = contract(MS_SCALING, bands=("B02", "B08"))
    x, _ = model_input(np.array([[[123.0]], [[20000.0]]]), c)
    assert x.dtype == np.float32 and x.ravel().tolist() == [123.0, 10000.0]
    with pytest.raises(ArgumentError, match="got 1 band"):
        model_input(np.zeros((1, 2, 2)), c)


def test_padding_mirrors_the_input_and_marks_itself_invalid():
    x = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    valid = np.ones((2, 3), bool)
    px, pv = pad_block(x, valid, 2, 1)
    assert px.shape == (1, 4, 4) and px[0, 2].tolist() == [3, 4, 5, 5] and px[0, :, 3].tolist() == [2, 5, 5, 2]
    assert pv.sum() == 6 and not pv[2:].any() and not pv[:, 3].any()
    assert pad_block(x, valid, 0, 0)[0] is x


def test_counts_per_cell_and_per_overlapping_patch():
    mask = np.zeros((5, 7), bool)
    mask[0, 0] = mask[4, 6] = mask[2, 3] = True
    cells = cell_counts(mask, 2)  # padded to 6 x 8
    assert cells.shape == (3, 4) and cells.sum() == 3 and cells[0, 0] == cells[2, 3] == cells[1, 1] == 1
    # patches of 2 x 2 cells at a one-cell stride: 2 rows, 3 columns
    per_patch = patch_counts(cells, 2, 2, 3)
    assert per_patch.tolist() == [[2, 1, 0], [1, 1, 1]]


def test_gather_takes_the_chosen_patches_in_order_as_one_copy():
    grid = TileGrid(8, 8, patch=4, stride=2)
    x = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    out = gather(x, grid, np.array([2, 0]), np.array([1, 0]))
    assert out.shape == (2, 2, 4, 4) and out.flags.c_contiguous
    assert np.array_equal(out[0], x[:, 4:8, 2:6]) and np.array_equal(out[1], x[:, 0:4, 0:4])
