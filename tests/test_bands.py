import json
import re

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin

import s2lc.bands as bands_module
from s2lc.bands import (
    COMPOSITES,
    BandsConfig,
    bootstrap_macro_f1,
    channel_indices,
    evaluate_bands,
    mcnemar_exact,
    parse_band_sets,
    stratified_folds,
    wilson_interval,
)
from s2lc.cli.main import cli
from s2lc.datasets import PatchDataset
from s2lc.errors import ArgumentError, DatasetError, OutputError
from s2lc.evaluation import classification_report
from s2lc.legend import EUROSAT_CLASSES
from s2lc.sentinel2 import BAND_IDS, EUROSAT_MS_ORDER

from patches import make_rgb_dataset

CLASSES = ("Alpha", "Beta", "Gamma")
#: A tiny network, no ImageNet weights, one short epoch: seconds on a CPU.
TINY = dict(arch="resnet18", pretrained=None, epochs=1, batch_size=4, device="cpu", precision="fp32", bootstrap=200)


def _value(file_position: int, cls: int) -> int:
    """The DN of every pixel of the band at ``file_position`` of a class-``cls`` patch."""
    return 1000 + 100 * file_position + cls


def make_ms_dataset(root, per_class: int = 4, size: int = 16):
    """13-band GeoTIFFs in EuroSAT MS layout and band order (B8A last): each band a constant that
    names its position in the file (and the class)."""
    for k, cls in enumerate(CLASSES):
        folder = root / cls
        folder.mkdir(parents=True)
        data = np.stack([np.full((size, size), _value(j, k), np.uint16) for j in range(len(EUROSAT_MS_ORDER))])
        for i in range(per_class):
            with rasterio.open(folder / f"{cls}_{i + 1}.tif", "w", driver="GTiff", width=size, height=size, count=13,
                               dtype="uint16", crs="EPSG:32633", transform=from_origin(0, 10 * size, 10, 10)) as dst:
                dst.write(data)
    return root


@pytest.fixture(scope="module")
def ms_data(tmp_path_factory):
    return make_ms_dataset(tmp_path_factory.mktemp("ms") / "EuroSAT_MS")


def test_two_sets_end_to_end(ms_data, tmp_path):
    out = tmp_path / "out"
    sets = {"B8A": ("B8A",), "cir": COMPOSITES["cir"]}
    rows = evaluate_bands(ms_data, out, sets, BandsConfig(folds=2, **TINY), progress=False)
    assert [r["rank"] for r in rows] == [1, 2] and {r["set"] for r in rows} == {"B8A", "cir"}
    assert all(r["n"] == 12 and 0 <= r["accuracy_ci95_low"] <= r["accuracy"] <= r["accuracy_ci95_high"] <= 1 for r in rows)
    header = (out / "bands.csv").read_text().splitlines()
    assert header[0].startswith("rank,set,bands,accuracy,accuracy_ci95_low") and len(header) == 3
    assert "vs_best_p" in header[0] and rows[0]["vs_best_p"] == 1.0 and rows[0]["only_this_right"] == 0
    table = json.loads((out / "bands.json").read_text())
    assert table["n"] == 12 and "2-fold" in table["evaluation"] and "Wilson" in table["confidence_intervals"]["accuracy"]
    assert [s["set"] for s in table["sets"]] == [r["set"] for r in rows]
    assert (out / "bands.png").read_bytes()[:4] == b"\x89PNG"
    stored = json.loads((out / "sets" / "cir.json").read_text())
    assert stored["channels"] == ["B08", "B04", "B03"] and len(stored["predictions"]) == 12
    assert min(stored["predictions"]) >= 0 and len(stored["fold_accuracy"]) == 2


def _recording(monkeypatch):
    """Replace the training of one model by a recorder of what it would have been given."""
    calls = []

    def fake(images, labels, train, test, channel_bands, n_classes, divisor, config, seed, bar):
        calls.append({"pixels": images[:, :, 0, 0].copy(), "labels": labels.copy(), "bands": channel_bands,
                      "train": train, "test": test, "divisor": divisor})
        return labels[test]  # a perfect model

    monkeypatch.setattr(bands_module, "_fit_predict", fake)
    return calls


def test_channels_follow_the_file_order_with_b8a_last(ms_data, tmp_path, monkeypatch):
    calls = _recording(monkeypatch)
    sets = {"B8A": ("B8A",), "B08": ("B08",), "cir": ("B08", "B04", "B03"), "swir": ("B12", "B11", "B8A")}
    evaluate_bands(ms_data, tmp_path / "out", sets, BandsConfig(folds=2, **TINY), progress=False)
    position = {b: EUROSAT_MS_ORDER.index(b) for b in BAND_IDS}
    assert position["B8A"] == 12 and position["B09"] == 8  # the file order, not ESA's
    for call, (name, want) in zip(calls[::2], sets.items()):  # two folds per set
        pixels, labels = call["pixels"], call["labels"]
        expected = [want[0]] * 3 if len(want) == 1 else list(want)
        assert call["bands"] == expected, name
        for c, b in enumerate(expected):
            assert (pixels[:, c] == 1000 + 100 * position[b] + labels).all(), (name, b)
        assert call["divisor"] == 10000.0


def test_channel_indices_and_a_band_the_data_lack():
    assert channel_indices(BAND_IDS, "B8A", ("B8A",)) == [8, 8, 8]  # ESA order in memory: B8A after B08
    assert channel_indices(BAND_IDS, "cir", ("B08", "B04", "B03")) == [7, 3, 2]
    with pytest.raises(DatasetError, match=r"data.tif: band set cir needs B08, which the dataset lacks"):
        channel_indices(("B04", "B03", "B02"), "cir", ("B08", "B04", "B03"), "data.tif")


def test_resume_skips_finished_sets(ms_data, tmp_path, monkeypatch):
    calls = _recording(monkeypatch)
    out = tmp_path / "out"
    config = BandsConfig(folds=2, **TINY)
    evaluate_bands(ms_data, out, {"B04": ("B04",)}, config, progress=False)
    assert len(calls) == 2
    first = (out / "sets" / "B04.json").stat().st_mtime_ns
    rows = evaluate_bands(ms_data, out, {"B04": ("B04",), "B11": ("B11",)}, config, progress=False)
    assert len(calls) == 4 and all(c["bands"] == ["B11"] * 3 for c in calls[2:])  # only the new set trained
    assert (out / "sets" / "B04.json").stat().st_mtime_ns == first
    assert {r["set"] for r in rows} == {"B04", "B11"} and len((out / "bands.csv").read_text().splitlines()) == 3
    with pytest.raises(OutputError, match=r"B04.json: made with other settings \(epochs was 1\)"):
        evaluate_bands(ms_data, out, {"B04": ("B04",)}, BandsConfig(folds=2, **{**TINY, "epochs": 2}), progress=False)
    assert len(calls) == 4


def test_a_run_without_folds_resumes_one_that_gave_the_default(tmp_path, monkeypatch):
    data = make_ms_dataset(tmp_path / "five", per_class=5)
    calls = _recording(monkeypatch)
    evaluate_bands(data, tmp_path / "out", {"B04": ("B04",)}, BandsConfig(folds=5, **TINY), progress=False)
    assert len(calls) == 5
    evaluate_bands(data, tmp_path / "out", {"B04": ("B04",)}, BandsConfig(folds=None, **TINY), progress=False)
    assert len(calls) == 5  # the default is 5 folds here: the same run, not another


def test_parse_band_sets():
    sets = parse_band_sets(["single,rgb,cir,swir"])
    assert list(sets)[:13] == list(BAND_IDS) and sets["B8A"] == ("B8A",)
    assert sets["rgb"] == ("B04", "B03", "B02") and sets["swir"] == ("B12", "B11", "B8A") and len(sets) == 16
    assert parse_band_sets(["B08,B04,B03"]) == {"B08-B04-B03": ("B08", "B04", "B03")}
    assert parse_band_sets(["rgb,b8a+B11+b04", "b05"]) == {"rgb": COMPOSITES["rgb"], "B8A-B11-B04": ("B8A", "B11", "B04"),
                                                          "B05": ("B05",)}
    for bad, message in [("B13", "'B13' is not a Sentinel-2 band"), ("B04,B03", "has 2 band"),
                         ("B04+B04+B03", "2 different"), ("ndvi", "'ndvi' is neither a band nor one of single"),
                         ("rgb,B08", "mixes set names and bare bands; join the bands of one set with + (B08)"),
                         ("", "no band set given")]:
        with pytest.raises(ArgumentError, match=re.escape(message)):
            parse_band_sets([bad])


def test_stratified_folds():
    labels = np.repeat([0, 1, 2], [5, 7, 4])
    files = [f"c{label}/f{i}.tif" for i, label in enumerate(labels)]
    folds = stratified_folds(files, labels, 4, seed=1)
    for c in range(3):
        counts = np.bincount(folds[labels == c], minlength=4)
        assert counts.max() - counts.min() <= 1 and counts.min() >= 1
    order = np.random.default_rng(0).permutation(len(labels))  # the listing order does not matter
    assert (stratified_folds([files[i] for i in order], labels[order], 4, seed=1) == folds[order]).all()
    assert not (stratified_folds(files, labels, 4, seed=2) == folds).all()
    with pytest.raises(DatasetError, match="5 folds need at least 5 patches in every class, and the smallest class has 4"):
        stratified_folds(files, labels, 5)


def test_wilson_interval_known_values():
    # the score method's intervals in Newcombe (1998), Statistics in Medicine 17, 857-872, table I
    for (k, n), want in {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605), (0, 20): (0.0, 0.1611),
                         (1, 29): (0.0061, 0.1718)}.items():
        assert wilson_interval(k, n) == pytest.approx(want, abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)  # symmetric about 1/2
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    with pytest.raises(ArgumentError):
        wilson_interval(3, 2)


def test_bootstrap_macro_f1():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    assert bootstrap_macro_f1(y, y, 4, resamples=300) == (1.0, 1.0)
    pred = np.where(rng.random(400) < 0.7, y, rng.integers(0, 4, 400))
    f1 = classification_report(y, pred, list("abcd"))["macro_f1"]
    low, high = bootstrap_macro_f1(y, pred, 4, resamples=1000, seed=3)
    assert low < f1 < high and 0.05 < high - low < 0.15  # about ±2 standard errors of a proportion near 0.77
    assert bootstrap_macro_f1(y, pred, 4, resamples=1000, seed=3) == (low, high)  # seeded
    big_low, big_high = bootstrap_macro_f1(np.tile(y, 4), np.tile(pred, 4), 4, resamples=1000, seed=3)
    assert (big_high - big_low) == pytest.approx((high - low) / 2, rel=0.25)  # 4x the patches, half the width
    assert bands_module.macro_f1(np.array(classification_report(y, pred, list("abcd"))["confusion_matrix"])) == \
        pytest.approx(f1)


@pytest.mark.parametrize("args, code, message", [
    (["--sets", "B13"], 2, "'B13' is not a Sentinel-2 band"),
    (["--sets", "B04,B03"], 2, "has 2 band(s)"),
    (["--sets", "B04", "--folds", "5"], 1,
     "EuroSAT_MS: 5 folds need at least 5 patches in every class, and the smallest class has 4"),
])
def test_cli_refuses_bad_sets_and_folds(ms_data, tmp_path, args, code, message):
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["bands", str(ms_data), "-o", str(out), "--pretrained", "none", "-q", *args])
    assert r.exit_code == code, r.output
    assert message in r.output and len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not out.exists()


def test_cli_refuses_a_set_whose_band_the_data_lack(tmp_path):
    rgb = make_rgb_dataset(tmp_path / "rgb", per_class=4)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["bands", str(rgb), "-o", str(out), "--sets", "rgb,cir", "--pretrained", "none", "-q"])
    assert r.exit_code == 1, r.output
    assert "band set cir needs B08, which the dataset lacks (it has B04, B03, B02)" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


def test_cli_runs_and_resumes(ms_data, tmp_path, monkeypatch):
    calls = _recording(monkeypatch)
    out = tmp_path / "out"
    args = ["bands", str(ms_data), "-o", str(out), "--sets", "B04,B03,B02", "--sets", "B12", "--arch", "resnet18",
            "--pretrained", "none", "--epochs", "1", "--folds", "2", "--json", "-q"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert {row["set"] for row in rows} == {"B04-B03-B02", "B12"} and rows[0]["accuracy"] == 1.0
    assert len(calls) == 4
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0 and len(calls) == 4  # nothing trained again


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2**10)  # ten coin flips all one way, two-sided
    assert mcnemar_exact(1, 6) == mcnemar_exact(6, 1) == pytest.approx(2 * (1 + 7) / 2**7)


def test_paired_comparison_counts_the_patches_only_one_set_gets_right(ms_data, tmp_path, monkeypatch):
    def fake(images, labels, train, test, channel_bands, n_classes, divisor, config, seed, bar):
        pred = labels[test].copy()
        if channel_bands[0] == "B01":  # wrong on every Alpha patch
            pred[labels[test] == 0] = 1
        return pred

    monkeypatch.setattr(bands_module, "_fit_predict", fake)
    rows = evaluate_bands(ms_data, tmp_path / "out", {"B01": ("B01",), "B02": ("B02",)}, BandsConfig(folds=2, **TINY),
                          progress=False)
    assert [r["set"] for r in rows] == ["B02", "B01"]
    assert rows[1]["only_best_right"] == 4 and rows[1]["only_this_right"] == 0
    assert rows[1]["vs_best_p"] == pytest.approx(2 / 2**4) and rows[1]["accuracy"] == pytest.approx(8 / 12, abs=1e-4)


def test_the_full_eurosat_uses_the_fixed_split(monkeypatch):
    labels = np.repeat(np.arange(10), 5)
    files = [f"{EUROSAT_CLASSES[c]}/{EUROSAT_CLASSES[c]}_{i}.tif" for i, c in enumerate(labels)]
    ds = PatchDataset(np.zeros((50, 13, 4, 4), np.uint16), labels, files, tuple(EUROSAT_CLASSES), BAND_IDS, "ms", "x")
    monkeypatch.setattr(bands_module, "EUROSAT_MS_SIZE", 50)
    evaluation, plan = bands_module._plan(ds, None, 0)
    assert evaluation.startswith("fixed split") and len(plan) == 1
    train, test = plan[0]
    assert (test == ds.split("test")).all() and len(train) == 40 and not set(train) & set(test)
    evaluation, plan = bands_module._plan(ds, 5, 0)  # folds asked for: cross-validation all the same
    assert "5-fold" in evaluation and len(plan) == 5
    monkeypatch.setattr(bands_module, "EUROSAT_MS_SIZE", 27_000)
    assert len(bands_module._plan(ds, None, 0)[1]) == 5  # small data: five folds by default
