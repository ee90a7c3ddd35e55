"""Calibrated probabilities: the temperature fit, the expected calibration error, the checkpoint's
temperature, and every path that turns logits into probabilities (predict_proba, classify, serve,
evaluate, train, s2lc calibrate)."""

import io
import json
import logging
import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from s2lc.calibration import (
    ECE_BINS,
    TEMPERATURE_BOUNDS,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
    score_calibration,
    softmax,
)
from s2lc.checkpoint import (
    RGB_SCALING,
    ModelContract,
    load_checkpoint,
    read_contract,
    rewrite_contract,
    save_checkpoint,
    tensors_sha256,
)
from s2lc.cli.main import cli
from s2lc.errors import ArgumentError, CheckpointError, OutputError
from s2lc.inference import d4_views, predict_logits, predict_proba
from s2lc.legend import EUROSAT_CLASSES
from s2lc.models import build_model
from s2lc.testing import make_product

from patches import make_rgb_dataset
from toymodel import brightness_model


def _draw(rng: np.random.Generator, logits: np.ndarray, temperature: float) -> np.ndarray:
    """Labels drawn from softmax(logits / temperature): data that this temperature calibrates exactly."""
    p = softmax(logits, temperature)
    return (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)


@pytest.fixture(scope="module")
def logits():
    return np.random.default_rng(0).normal(0.0, 3.0, (20_000, 10))


# --------------------------------------------------------------------------- the fit and the ECE (pure)


@pytest.mark.parametrize("t0", [0.5, 1.0, 2.5, 6.0])
def test_the_fit_recovers_the_temperature_the_labels_were_drawn_with(logits, t0):
    y = _draw(np.random.default_rng(1), logits, t0)
    assert fit_temperature(logits, y) == pytest.approx(t0, rel=0.03)


def test_the_fitted_temperature_minimises_the_nll_and_is_deterministic(logits):
    y = _draw(np.random.default_rng(2), logits, 1.7)
    t = fit_temperature(logits, y)
    assert fit_temperature(logits, y) == t
    grid = np.exp(np.linspace(math.log(0.5), math.log(5), 401))
    best = grid[np.argmin([negative_log_likelihood(logits, y, g) for g in grid])]
    assert t == pytest.approx(best, rel=0.01)
    nll = negative_log_likelihood(logits, y, t)
    assert nll < negative_log_likelihood(logits, y, 1.02 * t) and nll < negative_log_likelihood(logits, y, t / 1.02)
    assert nll < negative_log_likelihood(logits, y, 1.0)


def test_the_fit_stops_at_its_bounds_and_says_so(caplog):
    y = np.arange(300) % 3
    right = 20.0 * np.eye(3)[y]  # every patch right by a wide margin: the NLL falls all the way to T = 0
    with caplog.at_level(logging.WARNING, logger="s2lc.calibration"):
        assert fit_temperature(right, y) == TEMPERATURE_BOUNDS[0]
        assert fit_temperature(right, (y + 1) % 3) == TEMPERATURE_BOUNDS[1]  # every patch wrong: flat is best
    assert "below 0.05" in caplog.text and "above 20" in caplog.text


def test_a_hand_made_ece_and_its_reliability_bins():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.5, 0.5], [0.3, 0.7]])
    labels = np.array([0, 1, 0, 1])
    bins = reliability_bins(probs, labels)
    assert bins.edges.shape == (ECE_BINS + 1,) and bins.edges[0] == 0 and bins.edges[-1] == 1
    assert bins.count.sum() == 4 and bins.count[14] == 2 and bins.count[7] == 1 and bins.count[10] == 1
    assert bins.accuracy[14] == 0.5 and bins.confidence[14] == pytest.approx(0.95)
    assert np.isnan(bins.accuracy[0]) and np.isnan(bins.confidence[0])  # an empty bin
    # |0.5 - 0.95| * 2/4 + |1 - 0.5| * 1/4 + |1 - 0.7| * 1/4
    assert expected_calibration_error(probs, labels) == pytest.approx(0.225 + 0.125 + 0.075)
    assert bins.as_dict()["accuracy"][0] is None and bins.as_dict()["count"][14] == 2


def test_ece_is_near_zero_when_calibrated_and_large_when_overconfident(logits):
    y = _draw(np.random.default_rng(3), logits, 1.0)
    assert expected_calibration_error(softmax(logits), y) < 0.015
    over = logits / 0.4  # the same ranking, said with more confidence
    assert expected_calibration_error(softmax(over), y) > 0.1
    record = fit_calibration(over[:10_000], y[:10_000], over[10_000:], y[10_000:])
    assert record["temperature"] == pytest.approx(2.5, rel=0.05)
    for split in ("val", "test"):
        before, after = record[split]["before"], record[split]["after"]
        assert after["ece"] < 0.02 < 0.1 < before["ece"] and after["nll"] < before["nll"]
        assert after["accuracy"] == before["accuracy"]
    assert record["split"] == "val" and record["temperature_before"] == 1.0 and record["ece_bins"] == 15


def test_the_temperature_follows_the_scale_of_the_logits(logits):
    y = _draw(np.random.default_rng(5), logits, 2.0)
    assert fit_temperature(logits / 2, y) == pytest.approx(fit_temperature(logits, y) / 2, rel=1e-6)


def test_score_calibration_reports_the_given_temperature(logits):
    y = _draw(np.random.default_rng(4), logits, 2.0)
    s = score_calibration(logits, y, 2.0)
    assert s["n"] == len(y) and s["nll"] == pytest.approx(negative_log_likelihood(logits, y, 2.0))
    assert s["ece"] == pytest.approx(expected_calibration_error(softmax(logits, 2.0), y))
    assert s["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))


@pytest.mark.parametrize("call, match", [
    (lambda: fit_temperature(np.zeros((4, 3)), np.zeros(3, int)), "need"),
    (lambda: fit_temperature(np.zeros((4, 3)), np.array([0, 1, 2, 3])), "class indices"),
    (lambda: fit_temperature(np.zeros((0, 3)), np.zeros(0, int)), "no patches"),
    (lambda: fit_temperature(np.full((2, 3), np.nan), np.zeros(2, int)), "NaN"),
    (lambda: softmax(np.zeros((2, 3)), 0.0), "above 0"),
    (lambda: softmax(np.zeros((2, 3)), float("inf")), "finite"),
    (lambda: reliability_bins(np.full((2, 3), 1 / 3), np.zeros(2, int), n_bins=0), "n_bins"),
])
def test_bad_inputs_are_refused(call, match):
    with pytest.raises(ArgumentError, match=match):
        call()


# --------------------------------------------------------------------------- the checkpoint's temperature


def _contract(**kw) -> ModelContract:
    base = dict(arch="resnet18", bands=["B04", "B03", "B02"], classes=["a", "b", "c"], scaling=dict(RGB_SCALING),
                mean=[0.3, 0.4, 0.5], std=[0.2, 0.2, 0.2], patch_size=32)
    return ModelContract(**{**base, **kw})


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet18", 3, 3, [0.3, 0.4, 0.5], [0.2, 0.2, 0.2]).eval()
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, model, _contract(), dtype=torch.float32)
    return path


def _with_contract_json(src, dst, edit) -> None:
    """``src`` rewritten with its contract JSON passed through ``edit`` (as an older or a damaged file)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    meta["s2lc_contract"] = json.dumps(edit(json.loads(meta["s2lc_contract"])))
    save_file(tensors, str(dst), metadata=meta)


def test_a_checkpoint_round_trips_its_temperature_and_calibration(tiny, tmp_path):
    assert load_checkpoint(tiny).contract.temperature == 1.0
    path = tmp_path / "warm.safetensors"
    model = load_checkpoint(tiny).model
    save_checkpoint(path, model, _contract(temperature=1.75, calibration={"split": "val", "n": 6}), dtype=torch.float32)
    c = load_checkpoint(path).contract
    assert c.temperature == 1.75 and c.calibration == {"split": "val", "n": 6}


def test_a_checkpoint_written_before_temperatures_loads_uncalibrated(tiny, tmp_path):
    old = tmp_path / "old.safetensors"
    _with_contract_json(tiny, old, lambda c: {k: v for k, v in c.items() if k not in ("temperature", "calibration")})
    assert "temperature" not in json.loads(_metadata(old)["s2lc_contract"])
    c = load_checkpoint(old).contract
    assert c.temperature == 1.0 and c.calibration == {}


def _metadata(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


@pytest.mark.parametrize("bad", [0.0, -2.0, float("inf"), float("nan"), "warm", None])
def test_a_bad_temperature_is_a_one_line_checkpoint_error(tiny, tmp_path, bad):
    path = tmp_path / "bad.safetensors"
    _with_contract_json(tiny, path, lambda c: {**c, "temperature": bad})
    with pytest.raises(CheckpointError, match=r"bad.safetensors: invalid contract: temperature must be a finite number "
                                              r"above 0, got .*; refit it with s2lc calibrate") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


def test_rewrite_contract_keeps_the_weights_byte_for_byte(tiny, tmp_path):
    out = tmp_path / "cal.safetensors"
    c = replace(load_checkpoint(tiny).contract, temperature=2.5)
    sha = rewrite_contract(tiny, out, c)
    _, hash_before, before = read_contract(tiny)
    contract, hash_after, after = read_contract(out)
    assert contract.temperature == 2.5 and hash_after == hash_before == tensors_sha256(after)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert load_checkpoint(out).sha256 == sha != load_checkpoint(tiny).sha256
    with pytest.raises(OutputError, match="overwrite"):
        rewrite_contract(tiny, out, c)
    rewrite_contract(out, out, replace(c, temperature=3.0), overwrite=True)  # in place
    assert load_checkpoint(out).contract.temperature == 3.0


# --------------------------------------------------------------------------- inference applies it


def test_predict_proba_divides_the_logits_by_the_temperature(tiny):
    model = load_checkpoint(tiny).model
    x = np.random.default_rng(5).integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    kw = {"device": "cpu", "precision": "fp32"}
    z = predict_logits(model, x, 255.0, **kw)
    raw, warm, cool = (predict_proba(model, x, 255.0, temperature=t, **kw) for t in (1.0, 3.0, 0.5))
    np.testing.assert_array_equal(raw, predict_proba(model, x, 255.0, **kw))  # 1.0 is the default, bit for bit
    np.testing.assert_allclose(raw, softmax(z), atol=1e-6)
    np.testing.assert_allclose(warm, softmax(z, 3.0), atol=1e-6)
    assert (warm.argmax(1) == raw.argmax(1)).all() and (cool.argmax(1) == raw.argmax(1)).all()
    assert (warm.max(1) < raw.max(1)).all() and (cool.max(1) > raw.max(1)).all()
    # with TTA: the softmax of each view's scaled logits, then the mean
    tta = predict_proba(model, x, 255.0, tta=True, temperature=3.0, **kw)
    with torch.no_grad():
        views = d4_views(torch.from_numpy(x).float() / 255.0)
        want = torch.stack([torch.softmax(model(v) / 3.0, dim=1) for v in views]).mean(0).numpy()
    np.testing.assert_allclose(tta, want, atol=1e-5)
    with pytest.raises(ArgumentError, match="temperature"):
        predict_proba(model, x, 255.0, temperature=0.0, **kw)


# --------------------------------------------------------------------------- s2lc calibrate, classify, evaluate, serve


@pytest.fixture(scope="module")
def eurosat_like(tmp_path_factory):
    """The ten EuroSAT class folders of 64 x 64 JPEGs: 20 bright red AnnualCrop and 20 dark SeaLake
    patches, which the toy model labels right, and 5 of each other class, half bright and half
    dark, which it labels wrong. Right on half the validation split and sure of itself, the toy
    is over-confident: its fitted temperature is above 1."""
    from PIL import Image

    root = tmp_path_factory.mktemp("eurosat") / "EuroSAT_RGB"
    rng = np.random.default_rng(7)
    for name in EUROSAT_CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(20 if name in ("AnnualCrop", "SeaLake") else 5):
            red = {"AnnualCrop": 200, "SeaLake": 40}.get(name, 200 if i % 2 else 40)
            img = np.clip(rng.normal([red, 80, 80], 10, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{name}_{i + 1}.jpg", quality=95)
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The brightness toy (tests/toymodel.py) with its head scaled down tenfold: logits of a few
    units instead of tens, so its probabilities lie inside (0, 1) and a temperature shows in them."""
    folder = tmp_path_factory.mktemp("toy")
    loaded = load_checkpoint(brightness_model(folder / "sharp.safetensors"))
    with torch.no_grad():
        loaded.model.body.fc.weight.mul_(0.1)
        loaded.model.body.fc.bias.mul_(0.1)
    path = folder / "toy.safetensors"
    save_checkpoint(path, loaded.model, loaded.contract, dtype=torch.float32)
    return path


@pytest.fixture(scope="module")
def l1c(tmp_path_factory):
    dn = np.full((3, 192, 192), 300.0)
    dn[:, :, 64:128] = 1400.0  # near the toy's threshold: an unsure middle column
    dn[:, :, 128:] = 2500.0
    return make_product(tmp_path_factory.mktemp("l1c"), "L1C", "02.09", size=192, cloud_fraction=0, scene=dn)


def test_s2lc_calibrate_writes_a_checkpoint_whose_temperature_classify_uses(toy, eurosat_like, l1c, tmp_path):
    from s2lc.classify import classify

    runner = CliRunner()
    out = tmp_path / "cal.safetensors"
    r = runner.invoke(cli, ["-q", "calibrate", str(toy), str(eurosat_like), "-o", str(out), "--precision", "fp32",
                            "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    t = rec["temperature"]
    assert 1.5 < t < 10 and rec["temperature_before"] == 1.0  # measured: 3.2
    assert rec["val"]["after"]["n"] == 16 and rec["test"]["after"]["n"] == 16  # 4 + 4 + 8 x 1 each
    assert rec["val"]["before"]["accuracy"] == 0.5
    assert rec["val"]["after"]["nll"] < rec["val"]["before"]["nll"]
    assert rec["val"]["after"]["accuracy"] == rec["val"]["before"]["accuracy"]
    assert rec["out"] == str(out) and rec["precision"] == "fp32" and rec["dataset"] == eurosat_like.name
    contract, stored_hash, _ = read_contract(out)
    assert contract.temperature == t and contract.calibration["val"] == rec["val"]
    assert stored_hash == read_contract(toy)[1]  # the same weights

    plain, calibrated = classify(l1c, toy, precision="fp32"), classify(l1c, out, precision="fp32")
    np.testing.assert_array_equal(calibrated.class_map, plain.class_map)
    done = ~np.isnan(plain.cell_confidence)
    assert done.sum() == 9
    assert (calibrated.cell_confidence[done] < plain.cell_confidence[done]).all()  # T > 1 softens every patch
    assert calibrated.provenance["model"]["sha256"] != plain.provenance["model"]["sha256"]

    r = runner.invoke(cli, ["-q", "evaluate", str(out), str(eurosat_like), "--precision", "fp32", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["temperature"] == t and rep["ece"] == pytest.approx(rec["test"]["after"]["ece"], abs=1e-5)


def test_s2lc_calibrate_refuses_to_overwrite_and_names_its_default_output(toy, eurosat_like, tmp_path):
    import shutil

    model = tmp_path / "m.safetensors"
    shutil.copy(toy, model)
    runner = CliRunner()
    r = runner.invoke(cli, ["calibrate", str(model), str(eurosat_like), "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    default = tmp_path / "m_calibrated.safetensors"
    assert load_checkpoint(default).contract.temperature > 1
    assert "temperature" in r.stderr and "ECE" in r.stderr and str(default) in r.stderr and r.stdout == ""
    before = default.read_bytes()
    r = runner.invoke(cli, ["calibrate", str(model), str(eurosat_like)])
    assert r.exit_code == 1 and "m_calibrated.safetensors" in r.output and "--overwrite" in r.output
    assert len(r.output.strip().splitlines()) == 1 and default.read_bytes() == before
    r = runner.invoke(cli, ["-q", "calibrate", str(model), str(eurosat_like), "-o", str(model), "--overwrite",
                            "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    assert load_checkpoint(model).contract.temperature == pytest.approx(load_checkpoint(default).contract.temperature)


def test_s2lc_calibrate_errors_are_one_line(toy, tmp_path):
    three = make_rgb_dataset(tmp_path / "three", per_class=5)  # Alpha, Beta, Gamma: not the model's classes
    r = CliRunner().invoke(cli, ["calibrate", str(toy), str(three), "-o", str(tmp_path / "x.safetensors")])
    assert r.exit_code == 1 and "class folder(s) missing" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.safetensors").exists()
    r = CliRunner().invoke(cli, ["calibrate", str(toy)])
    assert r.exit_code == 2 and "DATA" in r.output


def test_the_server_answers_with_the_checkpoints_temperature(tiny, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import warnings

    from PIL import Image

    from s2lc.server import create_app

    warm = tmp_path / "warm.safetensors"
    contract = load_checkpoint(tiny).contract
    rewrite_contract(tiny, warm, replace(contract, patch_size=64, temperature=4.0))
    app = create_app(warm, device="cpu", precision="fp32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient
    rgb = np.random.default_rng(6).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    with TestClient(app) as client:
        body = client.post("/classify", files={"file": ("p.png", buf.getvalue(), "image/png")}).json()
        assert client.get("/model").json()["contract"]["temperature"] == 4.0
    model = app.state.loaded.model
    x = rgb.transpose(2, 0, 1)[None].astype(np.float32)
    want = predict_proba(model, x, 255.0, device="cpu", precision="fp32", temperature=4.0)[0]
    raw = predict_proba(model, x, 255.0, device="cpu", precision="fp32")[0]
    got = np.array([body["probabilities"][c] for c in contract.classes])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got - raw).max() > 1e-3


def test_training_fits_the_temperature_on_validation_and_records_it(tmp_path):
    from s2lc.training import TrainConfig, train

    data = make_rgb_dataset(tmp_path, zipped=True)
    config = TrainConfig(arch="resnet18", epochs=1, batch_size=8, lr=0.05, precision="fp32", device="cpu")
    metrics = train(data, tmp_path / "run", config, progress=False)
    cal = json.loads((tmp_path / "run" / "metrics.json").read_text())["calibration"]
    assert cal == json.loads(json.dumps(metrics["calibration"]))
    assert cal["split"] == "val" and cal["val"]["after"]["n"] == 6 and cal["test"]["after"]["n"] == 6
    assert cal["val"]["after"]["nll"] <= cal["val"]["before"]["nll"]
    assert cal["test"]["after"]["accuracy"] == metrics["test_accuracy"]  # a temperature changes no prediction
    loaded = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert loaded.contract.temperature == cal["temperature"] != 1.0
    assert asdict(loaded.contract)["calibration"]["temperature"] == cal["temperature"]


def test_the_shipped_model_carries_its_temperature_on_unchanged_weights():
    """docs/model-card.md#calibration: the shipped file gained a temperature, its weights did not change."""
    from s2lc.models import SHIPPED_MODEL

    contract, stored_hash, tensors = read_contract(SHIPPED_MODEL)
    assert stored_hash == tensors_sha256(tensors) == "4f31c282c30339abede9e1ec2323bdd85a528ba531d0e18689ae89e36424f15e"
    assert contract.temperature == pytest.approx(0.4547, abs=1e-4)
    cal = contract.calibration
    assert cal["split"] == "val" and cal["val"]["after"]["n"] == cal["test"]["after"]["n"] == 5400
    assert cal["dataset_sha256"] == contract.training["dataset_sha256"]
    assert cal["test"]["after"]["ece"] < 0.01 < 0.2 < cal["test"]["before"]["ece"]
    assert cal["test"]["after"]["accuracy"] == pytest.approx(contract.metrics["test_accuracy"], abs=0.001)
