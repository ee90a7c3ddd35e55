import numpy as np
import pytest

from s2lc.errors import ArgumentError
from s2lc.tiling import TileGrid


@pytest.mark.parametrize("stride", [64, 32, 16])
@pytest.mark.parametrize("size", [(10980, 10980), (100, 64), (64, 64), (30, 200), (1536, 768)])
def test_patches_cover_every_pixel_and_stay_aligned(size, stride):
    h, w = size
    g = TileGrid(h, w, 64, stride)
    # the last patch reaches the far edge, the one before does not
    assert (g.rows - 1) * stride + 64 >= h and (g.rows == 1 or (g.rows - 2) * stride + 64 < h)
    assert (g.cols - 1) * stride + 64 >= w
    assert g.cell_shape == (-(-h // stride), -(-w // stride))
    covered_rows = np.zeros(h, bool)
    for r in range(g.rows):
        covered_rows[r * stride : r * stride + 64] = True
    assert covered_rows.all()
    for _, _, win in list(g.windows())[:5]:
        assert win.col_off % stride == 0 and win.row_off % stride == 0 and win.width == 64


def test_full_tile_counts():
    g = TileGrid(10980, 10980)
    assert (g.rows, g.cols, len(g)) == (172, 172, 29584)
    assert g.window(171, 171).col_off == 10944  # ends at 11008: the last 28 columns are padding


def test_strips_partition_rows_and_pad_to_whole_patches():
    g = TileGrid(300, 130, 64, 32)
    strips = list(g.strips(3))
    assert [s.first_row for s in strips] == list(range(0, g.rows, 3))
    assert sum(s.n_rows for s in strips) == g.rows
    for s in strips:
        assert s.window.row_off == s.first_row * 32
        assert s.window.row_off + s.window.height <= 300 and s.window.width <= 130
        assert s.window.height + s.pad_bottom == (s.n_rows - 1) * 32 + 64
        assert s.window.width + s.pad_right == (g.cols - 1) * 32 + 64
    assert strips[-1].pad_bottom > 0 and strips[0].pad_bottom == 0


def test_bad_stride():
    with pytest.raises(ArgumentError, match="must divide"):
        TileGrid(100, 100, 64, 48)
