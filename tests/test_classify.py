import json
import os
import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.enums import ColorInterp
from rasterio.transform import array_bounds

from s2lc import writers
from s2lc.classify import classify, output_paths
from s2lc.cli.main import cli
from s2lc.errors import ModelError, OutputError
from s2lc.legend import EUROSAT_CLASSES, Legend
from s2lc.mosaic import Mosaic
from s2lc.product import open_product
from s2lc.testing import make_product
from s2lc.tiling import TileGrid

from toymodel import brightness_model

SIZE = 240  # not a multiple of 64: the last row and column of patches are partial
BRIGHT, DARK = EUROSAT_CLASSES.index("AnnualCrop") + 1, EUROSAT_CLASSES.index("SeaLake") + 1
CLOUD = len(EUROSAT_CLASSES) + 1


def halves(size=SIZE, split=128):
    """B04/B03/B02: dark on the left of ``split``, bright on the right."""
    dn = np.full((3, size, size), 300.0)
    dn[:, :, split:] = 2500.0
    return dn


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return brightness_model(tmp_path_factory.mktemp("model") / "toy.safetensors")


@pytest.fixture(scope="module")
def l1c(tmp_path_factory):
    return make_product(tmp_path_factory.mktemp("l1c"), "L1C", "02.09", size=SIZE, cloud_fraction=0, scene=halves())


def test_classes_land_where_they_are_and_cover_the_edges(l1c, toy):
    res = classify(l1c, toy)
    with open_product(l1c) as p:
        assert res.class_map.shape == (p.grid.height, p.grid.width) == (SIZE, SIZE)
        assert res.transform == p.grid.transform and res.crs == p.grid.crs
    assert res.class_map.dtype == np.uint8
    assert (res.class_map[:, :128] == DARK).all()
    assert (res.class_map[:, 128:] == BRIGHT).all()  # incl. the partial last column of patches (192..239)
    assert np.nanmin(res.confidence) > 0.9
    assert res.stats["patches"] == {"total": 16, "classified": 16, "cloud": 0, "snow": 0, "no_data": 0}
    assert res.stats["area_ha"]["SeaLake"] == pytest.approx(SIZE * 128 * 100 / 1e4)
    assert res.stats["area_ha"]["AnnualCrop"] == pytest.approx(SIZE * 112 * 100 / 1e4)
    assert res.status == "ok"
    assert repr(res) == f"<Classification {res.product_id} {SIZE}x{SIZE} stride=64 ok: 16 patches classified, 0 cloud>"
    prov = res.provenance
    assert prov["baseline"] == "02.09" and prov["offsets_applied"] == {"B04": 0.0, "B03": 0.0, "B02": 0.0}
    assert prov["model"]["name"] == "toy-brightness" and len(prov["model"]["sha256"]) == 64


def test_offset_products_give_the_same_map(tmp_path, l1c, toy):
    new = make_product(tmp_path, "L1C", "04.00", size=SIZE, cloud_fraction=0, scene=halves())
    a, b = classify(l1c, toy), classify(new, toy)
    np.testing.assert_array_equal(a.class_map, b.class_map)
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-5)
    assert b.provenance["offsets_applied"]["B04"] == -1000.0


def test_nodata_edge_is_no_data_and_empty_patches_are_skipped(tmp_path, toy):
    prod = make_product(tmp_path, "L1C", "02.09", size=SIZE, cloud_fraction=0, nodata_cols=70, scene=halves())
    res = classify(prod, toy)
    assert (res.class_map[:, :70] == 0).all()
    assert np.isnan(res.confidence[:, :70]).all()
    assert (res.class_map[:, 70:128] == DARK).all()
    assert res.stats["patches"]["no_data"] == 4  # the first column of patches is entirely no data
    assert res.stats["nodata_fraction"] == pytest.approx(70 / SIZE)


def test_cloudy_patches_are_marked_cloud(tmp_path, toy):
    prod = make_product(tmp_path, "L2A", "04.00", size=SIZE, cloud_fraction=0.4, seed=3, scene=halves())
    grid = TileGrid(SIZE, SIZE)
    with open_product(prod) as p:
        m = p.read_masks()
    expect_cloud = []
    for r, c, w in grid.windows():
        sl = (slice(w.row_off, w.row_off + 64), slice(w.col_off, w.col_off + 64))
        valid = ~m.nodata[sl]
        frac = (m.cloud[sl] & valid).sum() / max(valid.sum(), 1)
        expect_cloud.append(frac > 0.5)
    res = classify(prod, toy, max_cloud=0.5)
    got = [res.cell_map[r, c] == CLOUD for r, c, _ in grid.windows()]
    assert got == expect_cloud and any(expect_cloud) and not all(expect_cloud)
    assert res.stats["patches"]["cloud"] == sum(expect_cloud)
    assert 0 < res.stats["cloud_fraction"] < 1
    none = classify(prod, toy, max_cloud=1.0)
    assert none.stats["patches"]["cloud"] == 0


def test_l1c_model_on_l2a_warns(tmp_path, toy, caplog):
    prod = make_product(tmp_path, "L2A", "04.00", size=SIZE, cloud_fraction=0, scene=halves())
    with caplog.at_level("WARNING"):
        classify(prod, toy)
    assert sum("domain shift" in r.message for r in caplog.records) == 1


def test_bands_only_at_a_coarser_resolution_warn_and_are_recorded(tmp_path, toy, caplog):
    """The cut-down real L2A keeps B02–B04 at 60 m only: the model then sees 6x blurred patches."""
    coarse = make_product(tmp_path / "a", "L2A", "04.00", size=SIZE, cloud_fraction=0, only_r60m=True)
    with caplog.at_level("WARNING", logger="s2lc.classify"):
        res = classify(coarse, toy)
    said = [r.getMessage() for r in caplog.records if "coarser than model" in r.getMessage()]
    assert len(said) == 1 and "pixels are 60 m in B04, B03, B02" in said[0] and "6.0 x coarser" in said[0]
    assert res.provenance["band_resolution_m"] == {"B04": 60, "B03": 60, "B02": 60}
    caplog.clear()
    full = make_product(tmp_path / "b", "L2A", "04.00", size=SIZE, cloud_fraction=0)
    with caplog.at_level("WARNING", logger="s2lc.classify"):
        res = classify(full, toy)
    assert not [r for r in caplog.records if "coarser than model" in r.getMessage()]
    assert res.provenance["band_resolution_m"] == {"B04": 10, "B03": 10, "B02": 10}


def test_all_cloud_and_all_nodata_say_so(tmp_path, toy):
    cloudy = make_product(tmp_path / "c", "L2A", "04.00", size=SIZE, cloud_fraction=1.0, scene=halves())
    res = classify(cloudy, toy)
    assert res.status == "all cloud" and res.stats["patches"]["classified"] == 0
    assert set(np.unique(res.class_map)) <= {0, CLOUD}
    paths = res.save(tmp_path / "out")
    assert json.loads(paths["summary"].read_text())["stats"]["status"] == "all cloud"
    empty = make_product(tmp_path / "e", "L1C", "02.09", size=SIZE, cloud_fraction=0, nodata_cols=SIZE)
    res = classify(empty, toy)
    assert res.status == "no data" and (res.class_map == 0).all()


def test_overlapping_stride_averages_into_a_finer_map(l1c, toy):
    res = classify(l1c, toy, stride=32)
    assert res.cell_map.shape == (8, 8)
    assert (res.class_map[:, :64] == DARK).all() and (res.class_map[:, 192:] == BRIGHT).all()
    with pytest.raises(ModelError, match="must divide"):
        classify(l1c, toy, stride=48)


def test_mosaic_averages_overlapping_probabilities():
    grid = TileGrid(128, 128, 64, 32)  # 3 x 3 patches, 4 x 4 cells
    mos = Mosaic(grid, 2)
    probs = np.zeros((3, 3, 2), np.float32)
    probs[..., 0] = [[0.9, 0.2, 0.2], [0.9, 0.2, 0.2], [0.9, 0.2, 0.2]]
    probs[..., 1] = 1 - probs[..., 0]
    labelled = np.ones((3, 3), bool)
    labelled[2, 2] = False
    mos.add(0, probs, labelled)
    mos.valid[:] = 1
    codes, conf = mos.finish(cloud_code=3)
    # cell column 0 only sees patch column 0; column 1 averages columns 0 and 1
    assert conf[0, 0] == pytest.approx(0.9) and codes[0, 0] == 1
    assert conf[0, 1] == pytest.approx(0.55) and codes[0, 1] == 1
    assert codes[0, 2] == 2 and conf[0, 2] == pytest.approx(0.8)
    assert codes[3, 3] == 3  # only the unlabelled patch covers it: valid but not classified → cloud


def test_outputs_reopen_styled_and_georeferenced(tmp_path, l1c, toy):
    res = classify(l1c, toy)
    paths = res.save(tmp_path)
    assert set(paths) == {"map", "confidence", "polygons", "quicklook", "summary", "true_colour"}
    with rasterio.open(paths["true_colour"]) as src:  # the scene preview, RGBA, over the map's extent
        assert src.count == 4 and src.colorinterp[3] == ColorInterp.alpha and src.crs == res.crs
        assert src.bounds == pytest.approx(array_bounds(*res.class_map.shape, res.transform))
        np.testing.assert_array_equal(np.moveaxis(src.read(), 0, 2), res.true_colour)
        assert src.tags()["S2LC_KIND"] == "true colour" and src.tags()["S2LC_PRODUCT_ID"] == res.product_id
    with rasterio.open(paths["map"]) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 0
        assert src.crs == res.crs and src.transform == res.transform
        assert src.overviews(1) or max(src.shape) < 512
        cmap = src.colormap(1)
        legend = Legend.from_names(EUROSAT_CLASSES)
        for c in legend.classes:
            assert cmap[c.code][:3] == c.color
        assert cmap[0][3] == 0
        tags = src.tags()
        assert tags["S2LC_MODEL_SHA256"] == res.provenance["model"]["sha256"]
        assert tags["S2LC_PRODUCT_ID"] == res.product_id and tags["S2LC_BASELINE"] == "02.09"
        np.testing.assert_array_equal(src.read(1), res.class_map)
    back = writers.read_class_map(paths["map"])
    assert [c.name for c in back.classes] == list(EUROSAT_CLASSES) + ["Cloud", "SnowIce"]
    aux = ET.parse(str(paths["map"]) + ".aux.xml")
    names = [e.text for e in aux.iter("Category")]
    assert "SeaLake" in names or "Sea or lake" in names
    qml = ET.parse(paths["map"].with_suffix(".qml")).getroot()
    labels = {e.get("label") for e in qml.iter("paletteEntry")}
    assert "Annual crop" in labels
    with rasterio.open(paths["confidence"]) as src:
        assert src.dtypes[0] == "float32" and src.transform == res.transform
        np.testing.assert_array_equal(src.read(1), res.confidence)  # written row block by row block
    import pyogrio

    df = pyogrio.read_dataframe(paths["polygons"], layer="landcover")
    assert {"class_code", "class_name", "area_ha", "mean_confidence"} <= set(df.columns)
    assert df["area_ha"].sum() == pytest.approx(SIZE * SIZE * 100 / 1e4)
    assert set(df["class_name"]) == {"SeaLake", "AnnualCrop"}
    with sqlite3.connect(paths["polygons"]) as db:
        row = db.execute("select f_table_name, useAsDefault from layer_styles").fetchone()
        assert row == ("landcover", 1)
        assert db.execute("pragma user_version").fetchone()[0] == 10200
    summary = json.loads(paths["summary"].read_text())
    assert summary["provenance"]["model"]["sha256"] == res.provenance["model"]["sha256"]
    assert summary["stats"]["area_ha"]["SeaLake"] == pytest.approx(res.stats["area_ha"]["SeaLake"])
    assert paths["quicklook"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the scene beside the map in the quicklook, and in <id>_truecolour.tif
    assert res.true_colour.shape == (SIZE, SIZE, 4) and (res.true_colour[..., 3] == 255).all()
    assert res.true_colour[:, :100, :3].mean() < 60 and res.true_colour[:, 150:, :3].mean() > 200  # dark left, bright right


def test_interrupted_save_leaves_nothing(tmp_path, l1c, toy, monkeypatch):
    res = classify(l1c, toy)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers, "write_quicklook", boom)
    with pytest.raises(RuntimeError):
        res.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_set_whole(tmp_path, l1c, toy, monkeypatch):
    """An overwrite that fails part-way must not leave new rasters beside an old summary."""
    res64 = classify(l1c, toy)
    paths = res64.save(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    res32 = classify(l1c, toy, stride=32)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers, "write_quicklook", boom)  # after the map, confidence and polygons
    with pytest.raises(RuntimeError, match="disk full"):
        res32.save(tmp_path, overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    res32.save(tmp_path, overwrite=True)
    with rasterio.open(paths["map"]) as src:
        assert json.loads(src.tags()["S2LC_PARAMETERS"])["stride"] == 32
    assert json.loads(paths["summary"].read_text())["provenance"]["parameters"]["stride"] == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no staging folder left


def test_polygons_cover_exactly_the_classified_pixels(tmp_path, toy):
    """Cells are painted whole, pixels are not: a no-data edge that cuts through a column of
    patches must not be counted in the polygons (their areas must match the map's)."""
    prod = make_product(tmp_path, "L1C", "02.09", size=SIZE, cloud_fraction=0, nodata_cols=70, scene=halves())
    for stride in (64, 16):
        res = classify(prod, toy, stride=stride)
        gdf = res.polygons()
        by_class = gdf.groupby("class_name")["area_ha"].sum()
        for name, area in res.stats["area_ha"].items():
            assert by_class.get(name, 0.0) == pytest.approx(area, abs=1e-9), (stride, name)
        assert gdf.total_bounds[0] == pytest.approx(res.transform.c + 70 * res.transform.a)


def test_precision_used_is_recorded(l1c, toy):
    res = classify(l1c, toy, precision="fp32")
    assert res.provenance["parameters"]["precision"] == "fp32"
    assert res.provenance["parameters"]["precision_used"] == "fp32"
    auto = classify(l1c, toy).provenance["parameters"]
    assert auto["precision"] == "auto" and auto["precision_used"] in ("fp32", "bf16")


def test_tta_averages_the_flips_and_is_recorded(tmp_path, l1c, toy, monkeypatch):
    from s2lc import inference

    asked = []
    real = inference.predict_proba

    def spy(*a, **k):
        asked.append(k.get("tta"))
        return real(*a, **k)

    monkeypatch.setattr(inference, "predict_proba", spy)
    plain = classify(l1c, toy)
    res = classify(l1c, toy, tta=True)
    assert set(asked) == {False, True}
    assert res.provenance["parameters"]["tta"] is True and plain.provenance["parameters"]["tta"] is False
    np.testing.assert_array_equal(res.class_map, plain.class_map)  # the toy model sees only brightness
    r = CliRunner().invoke(cli, ["-q", "classify", str(l1c), "-o", str(tmp_path), "--model", str(toy), "--tta", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["provenance"]["parameters"]["tta"] is True


def test_existing_outputs_are_refused_untouched(tmp_path, l1c, toy):
    res = classify(l1c, toy)
    paths = res.save(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(OutputError, match="overwrite"):
        res.save(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    res.save(tmp_path, overwrite=True)
    assert paths["map"].stat().st_mtime_ns >= before[paths["map"]]


def test_no_polygons_never_leaves_an_older_geopackage_beside_the_map(tmp_path, l1c, toy):
    runner = CliRunner()
    args = ["-q", "classify", str(l1c), "-o", str(tmp_path), "--model", str(toy)]
    assert runner.invoke(cli, args).exit_code == 0
    gpkg = next(tmp_path.glob("*_landcover.gpkg"))
    for p in tmp_path.iterdir():
        if p != gpkg:
            p.unlink()
    r = runner.invoke(cli, [*args, "--no-polygons"])  # only the .gpkg is left: still refused
    assert r.exit_code == 1 and gpkg.name in r.output and "--overwrite" in r.output
    assert list(tmp_path.iterdir()) == [gpkg]
    r = runner.invoke(cli, [*args, "--no-polygons", "--overwrite", "--json"])
    assert r.exit_code == 0, r.output
    assert not gpkg.exists() and "polygons" not in json.loads(r.stdout)["outputs"]
    summary = json.loads(next(tmp_path.glob("*_landcover.json")).read_text())
    assert "polygons" not in summary["outputs"]


def test_cli_classify_and_exit_codes(tmp_path, l1c, toy):
    runner = CliRunner()
    out = tmp_path / "out"
    r = runner.invoke(cli, ["-q", "classify", str(l1c), "-o", str(out), "--model", str(toy), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["stats"]["status"] == "ok"
    pid = summary["provenance"]["product_id"]
    assert set(p.name for p in out.iterdir()) >= {x.name for x in output_paths(out, pid).values()}
    r = runner.invoke(cli, ["classify", str(l1c), "-o", str(out), "--model", str(toy)])
    assert r.exit_code == 1 and "--overwrite" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["classify", str(l1c), "-o", str(out), "--model", str(toy), "--device", "tpu"])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["classify", str(tmp_path / "nope.SAFE"), "-o", str(out), "--model", str(toy)])
    assert r.exit_code == 2 and "nope.SAFE: no such file or folder" in r.output and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(cli, ["classify", str(l1c), "-o", str(tmp_path / "m"), "--model", str(tmp_path / "none.safetensors")])
    assert r.exit_code == 2 and "'--model'" in r.output and "none.safetensors' does not exist" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "m").exists()
    r = runner.invoke(cli, ["classify", str(l1c), "-o", str(out), "--model", str(toy), "--stride", "48"])
    assert r.exit_code == 2 and r.output.strip() == ("Error: Invalid value for '--stride': '48' is not one of '64', "
                                                      "'32', '16', '8'. (see 'cli classify --help')")  # cli: the runner's name
    gone = tmp_path / "new" / "folder"  # a failed run does not leave the -o folder it created
    not_a_product = tmp_path / "empty"
    not_a_product.mkdir()
    r = runner.invoke(cli, ["classify", str(not_a_product), "-o", str(gone), "--model", str(toy)])
    assert r.exit_code == 1 and "empty" in r.output and len(r.output.strip().splitlines()) == 1
    assert not gone.exists()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = runner.invoke(cli, ["classify", str(l1c), "-o", str(ro / "sub"), "--model", str(toy)])
        import os

        if os.geteuid() != 0:  # root ignores permissions
            assert r.exit_code == 1 and "ro" in r.output
    finally:
        ro.chmod(0o700)


def test_a_missing_gpu_names_the_parameter_in_python_and_the_option_on_the_command_line(tmp_path, l1c, toy, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError) as caught:
        classify(l1c, toy, device="cuda")
    assert str(caught.value) == "device='cuda' asked for, but no CUDA GPU is available; use device='cpu' or device='auto'"
    r = CliRunner().invoke(cli, ["classify", str(l1c), "-o", str(tmp_path / "o"), "--model", str(toy), "--device", "cuda"])
    assert r.exit_code == 1
    assert r.stderr == "Error: --device cuda asked for, but no CUDA GPU is available; use --device cpu or --device auto\n"


def test_progress_bar_with_eta_unless_quiet(tmp_path, l1c, toy):
    r = CliRunner().invoke(cli, ["classify", str(l1c), "-o", str(tmp_path / "a"), "--model", str(toy)])
    assert r.exit_code == 0, r.output
    bar = [line for line in r.stderr.replace("\r", "\n").splitlines() if line.startswith("classifying ")]
    assert bar and "16/16" in bar[-1] and "patch/s" in bar[-1] and "<" in bar[-1]  # elapsed<remaining
    written = sorted((tmp_path / "a").iterdir())  # the map, and every other file, styles and sidecars included
    assert f"and {len(written) - 1} more files to" in r.stderr and len(written) - 1 > 5
    r = CliRunner().invoke(cli, ["-q", "classify", str(l1c), "-o", str(tmp_path / "b"), "--model", str(toy)])
    assert r.exit_code == 0 and "classifying" not in r.stderr


def test_model_needing_missing_bands_is_refused(tmp_path, l1c):
    ms = brightness_model(tmp_path / "ms.safetensors", bands=("B04", "B03", "B10"))
    l2a = make_product(tmp_path, "L2A", "04.00", size=SIZE, cloud_fraction=0)
    with pytest.raises(ModelError, match="B10"):
        classify(l2a, ms)
    r = CliRunner().invoke(cli, ["classify", str(l2a), "-o", str(tmp_path / "o"), "--model", str(ms)])
    assert r.exit_code == 1 and "B10" in r.output


@pytest.mark.skipif(not os.access("/proc/self", os.F_OK), reason="needs Linux /proc")
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_unwritable_output_folder_is_refused_before_classifying(l1c, toy, overwrite, monkeypatch):
    """/proc/self exists and is not writable, even by root: refused up front, with or without
    --overwrite, before any patch is classified."""
    import s2lc.classify as lib

    def never(*a, **k):
        raise AssertionError("classified before checking the output folder")

    monkeypatch.setattr(lib, "classify", never)
    r = CliRunner().invoke(cli, ["classify", str(l1c), "-o", "/proc/self", "--model", str(toy), *overwrite])
    assert r.exit_code == 1 and "/proc/self is not writable" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_strided_inference_copies_one_batch_at_a_time(l1c, toy, monkeypatch):
    """Memory stays bounded at small strides: the model never gets more than a batch."""
    from s2lc import inference

    seen = []
    real = inference.predict_proba

    def spy(model, patches, *a, **k):  # classify imports it at call time
        seen.append(len(patches))
        return real(model, patches, *a, **k)

    monkeypatch.setattr(inference, "predict_proba", spy)
    ref = classify(l1c, toy, stride=8, batch_size=4096)
    seen.clear()
    res = classify(l1c, toy, stride=8, batch_size=100)
    assert seen and max(seen) <= 100 and sum(seen) == res.stats["patches"]["classified"]
    np.testing.assert_array_equal(res.class_map, ref.class_map)


@pytest.mark.parametrize("stride", [64, 32])
def test_the_map_does_not_depend_on_the_strip_size(tmp_path, toy, stride):
    prod = make_product(tmp_path, "L1C", "04.00", size=SIZE, cloud_fraction=0.2, nodata_cols=70)
    ref = classify(prod, toy, stride=stride, strip_rows=None)  # whole 64-row JPEG 2000 tiles, one strip here
    assert ref.stats["patches"]["cloud"] > 0 and ref.stats["patches"]["no_data"] > 0
    for rows in (64, 128, 192):
        res = classify(prod, toy, stride=stride, strip_rows=rows)
        np.testing.assert_array_equal(res.class_map, ref.class_map)
        np.testing.assert_allclose(res.cell_confidence, ref.cell_confidence, rtol=1e-6)  # batches differ
        assert res.stats["patches"] == ref.stats["patches"]
        assert res.stats["area_ha"] == ref.stats["area_ha"] and res.stats["cloud_fraction"] == ref.stats["cloud_fraction"]
