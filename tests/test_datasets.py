import random

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from s2lc.datasets import load_dataset, split_indices
from s2lc.errors import DatasetError
from s2lc.legend import EUROSAT_CLASSES
from s2lc.sentinel2 import BAND_IDS, EUROSAT_MS_ORDER

from patches import CLASSES, make_rgb_dataset


def test_split_is_stratified_disjoint_and_order_independent():
    files = [f"C{c}/C{c}_{i}.jpg" for c in range(3) for i in range(50)]
    labels = np.repeat(np.arange(3), 50)
    s = split_indices(files, labels)
    assert [len(s[k]) for k in ("train", "val", "test")] == [90, 30, 30]
    for k in ("train", "val", "test"):
        counts = np.bincount(labels[s[k]], minlength=3)
        assert counts.min() == counts.max()  # stratified: same share of every class
    allidx = np.concatenate(list(s.values()))
    assert len(np.unique(allidx)) == len(files)

    order = list(range(len(files)))
    random.Random(1).shuffle(order)
    s2 = split_indices([files[i] for i in order], labels[order])
    for k in s:
        assert sorted(files[i] for i in s[k]) == sorted(files[order[j]] for j in s2[k])


def test_folder_and_zip_read_the_same(tmp_path):
    folder = make_rgb_dataset(tmp_path / "f")
    archive = make_rgb_dataset(tmp_path, zipped=True)
    a, b = load_dataset(folder), load_dataset(archive)
    assert a.classes == b.classes == tuple(sorted(CLASSES))
    assert a.files == b.files
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (30, 3, 32, 32) and a.images.dtype == np.uint8
    assert a.bands == ("B04", "B03", "B02")
    assert b.sha256 is not None and len(b.sha256) == 64
    assert list(a.split("test")) == list(b.split("test"))


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        load_dataset(tmp_path / "empty")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        load_dataset(bad)
    one = make_rgb_dataset(tmp_path / "one", classes=("Only",))
    with pytest.raises(DatasetError, match="at least two"):
        load_dataset(one)


def test_missing_eurosat_class_folder(tmp_path):
    root = make_rgb_dataset(tmp_path, classes=EUROSAT_CLASSES[:-1], per_class=3)
    with pytest.raises(DatasetError, match="SeaLake"):
        load_dataset(root)
    with pytest.raises(DatasetError, match="missing: Delta"):
        load_dataset(make_rgb_dataset(tmp_path / "x"), classes=list(CLASSES) + ["Delta"])


def test_unreadable_image_is_named(tmp_path):
    root = make_rgb_dataset(tmp_path)
    (root / "Beta" / "Beta_3.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="Beta/Beta_3.jpg"):
        load_dataset(root)


def test_ms_band_order_b8a_last_is_reordered(tmp_path):
    for cls in ("Alpha", "Beta"):
        d = tmp_path / "ms" / cls
        d.mkdir(parents=True)
        for i in range(3):
            data = np.stack([np.full((8, 8), 100 + j, np.uint16) for j in range(13)])  # value = position in file
            with rasterio.open(d / f"{cls}_{i}.tif", "w", driver="GTiff", width=8, height=8, count=13,
                               dtype="uint16", crs="EPSG:32633", transform=from_origin(0, 80, 10, 10)) as dst:
                dst.write(data)
    ds = load_dataset(tmp_path / "ms")
    assert ds.kind == "ms" and ds.bands == BAND_IDS
    got = ds.images[0, :, 0, 0]
    for i, b in enumerate(BAND_IDS):
        assert got[i] == 100 + EUROSAT_MS_ORDER.index(b)
    assert got[BAND_IDS.index("B8A")] == 112  # last in the file
