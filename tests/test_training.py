import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import s2lc.augment as augment
import s2lc.training as training
from s2lc.checkpoint import load_checkpoint, read_contract
from s2lc.cli.main import cli
from s2lc.errors import ModelError
from s2lc.training import TrainConfig, train

from patches import CLASSES, make_rgb_dataset


def _degrading(config: TrainConfig) -> dict:
    return {"blur": config.blur, "haze": config.haze, "seed": config.seed}


FAST = dict(arch="resnet18", epochs=2, batch_size=8, lr=0.05, precision="fp32", device="cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_rgb_dataset(tmp_path_factory.mktemp("ds"), zipped=True)


def test_one_run_writes_everything(data, tmp_path):
    out = tmp_path / "run"
    metrics = train(data, out, TrainConfig(**FAST), progress=False)
    for name in ("model.safetensors", "metrics.json", "curves.png", "confusion.png", "samples.png", "state.pt"):
        assert (out / name).stat().st_size > 0, name
    m = json.loads((out / "metrics.json").read_text())
    assert m["split_sizes"] == {"train": 18, "val": 6, "test": 6}
    assert len(m["history"]) == 2 and 1 <= m["best_epoch"] <= 2
    assert m["test"]["n"] == 6
    loaded = load_checkpoint(out / "model.safetensors")
    c = loaded.contract
    assert c.arch == "resnet18" and c.classes == sorted(CLASSES) and c.bands == ["B04", "B03", "B02"]
    assert c.scaling["src_max"] == 2750 and c.patch_size == 32
    assert c.training["dataset_sha256"] and c.training["split_sizes"]["test"] == 6
    assert c.metrics["test_accuracy"] == metrics["test_accuracy"]
    with pytest.raises(ModelError, match=r"holds an earlier run \(state.pt\); pass resume=True to continue it"):
        train(data, out, TrainConfig(**FAST), progress=False)


def test_interrupted_run_resumes_to_the_same_result(data, tmp_path, monkeypatch):
    full = train(data, tmp_path / "full", TrainConfig(**FAST), progress=False)

    calls = {"n": 0}
    real = training._evaluate

    def interrupt_on_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "_evaluate", interrupt_on_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "cut", TrainConfig(**FAST), progress=False)
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    monkeypatch.setattr(training, "_evaluate", real)
    with pytest.raises(ModelError, match="different settings"):
        train(data, tmp_path / "cut", TrainConfig(**{**FAST, "lr": 0.01}), resume=True, progress=False)
    resumed = train(data, tmp_path / "cut", TrainConfig(**FAST), resume=True, progress=False)
    assert [h["val_loss"] for h in resumed["history"]] == pytest.approx([h["val_loss"] for h in full["history"]], rel=1e-4)
    a = load_checkpoint(tmp_path / "full" / "model.safetensors").model.state_dict()
    b = load_checkpoint(tmp_path / "cut" / "model.safetensors").model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-3, rtol=1e-3)


def test_fine_tune_from_checkpoint_resizes_head(data, tmp_path):
    base = tmp_path / "base"
    train(data, base, TrainConfig(**{**FAST, "epochs": 1}), progress=False)
    two = make_rgb_dataset(tmp_path / "two", classes=("Alpha", "Beta"), per_class=10)
    train(two, tmp_path / "ft", TrainConfig(**{**FAST, "epochs": 1, "pretrained": str(base / "model.safetensors")}),
          progress=False)
    c = load_checkpoint(tmp_path / "ft" / "model.safetensors")
    assert c.contract.classes == ["Alpha", "Beta"]
    assert c.model.body.fc.out_features == 2


def test_cli_train_and_evaluate(data, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    r = runner.invoke(cli, ["-q", "train", str(data), "--epochs", "1", "--batch-size", "8", "--precision", "fp32",
                            "--translate", "2", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert "test_accuracy" in json.loads(r.stdout)
    contract, _, _ = read_contract(out / "model.safetensors")
    assert contract.training["config"]["translate"] == 2
    r = runner.invoke(cli, ["train", str(data), "--epochs", "1", "-o", str(out)])  # again: refused, in options
    assert r.exit_code == 1 and r.stderr == (
        f"Error: {out}: holds an earlier run (state.pt); pass --resume to continue it or choose another folder\n"
    )
    r = runner.invoke(cli, ["evaluate", str(out / "model.safetensors"), str(data), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["n"] == 6 and rep["split"] == "test" and len(rep["confusion_matrix"]) == 3
    assert sum(map(sum, rep["confusion_matrix"])) == 6
    r = runner.invoke(cli, ["evaluate", str(out / "model.safetensors"), str(data)])
    assert r.exit_code == 0 and "accuracy" in r.stdout and "confusion matrix" in r.stdout


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(cli, ["train", str(empty), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "no images found" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()  # nothing left behind
    r = runner.invoke(cli, ["train", str(empty), "--arch", "vgg", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["train", str(empty), "--distill", "0.5", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--teacher" in r.output and not (tmp_path / "o").exists()
    # refused before the data is read (the empty folder would say "no images found")
    r = runner.invoke(cli, ["train", str(empty), "--arch", "resnet18_fine", "--pretrained", "imagenet",
                            "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "resnet18_fine has no ImageNet weights" in r.output and not (tmp_path / "o").exists()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    r = runner.invoke(cli, ["evaluate", str(bad), str(empty)])
    assert r.exit_code == 1 and "bad.safetensors" in r.output and len(r.output.strip().splitlines()) == 1


def test_distillation_mixes_the_teachers_tta_probabilities_into_the_targets(data, tmp_path, monkeypatch):
    teacher = tmp_path / "teacher"
    train(data, teacher, TrainConfig(**{**FAST, "epochs": 1}), progress=False)
    teacher_file = str(teacher / "model.safetensors")

    seen = {}
    real_probs, real_ce = training._teacher_probabilities, torch.nn.functional.cross_entropy

    def keep_probs(*args, **kwargs):
        seen["p"] = real_probs(*args, **kwargs)
        return seen["p"]

    def keep_targets(logits, target, **kwargs):
        seen.setdefault("targets", []).append(target.clone())
        return real_ce(logits, target, **kwargs)

    monkeypatch.setattr(training, "_teacher_probabilities", keep_probs)
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", keep_targets)
    cfg = TrainConfig(**{**FAST, "epochs": 1, "cutmix": 0.0, "teacher": teacher_file, "distill": 0.7})
    train(data, tmp_path / "student", cfg, progress=False)
    p = seen["p"]
    assert p.shape == (18, len(CLASSES)) and torch.allclose(p.sum(1), torch.ones(18), atol=1e-4)
    t = torch.cat(seen["targets"])
    # every target is 0.3 × one-hot + 0.7 × a teacher row: the soft part is ≥ 0 and ≤ 0.7, and sums to 1
    assert torch.allclose(t.sum(1), torch.ones(len(t)), atol=1e-5)
    eye = torch.eye(len(CLASSES))
    # candidates: 0.3 × one-hot(label) + 0.7 × teacher row, for every (training patch, class)
    cand = (0.3 * eye[None, :, :] + 0.7 * p[:, None, :]).reshape(-1, len(CLASSES))
    nearest = torch.cdist(t, cand).min(1).values
    assert nearest.max() < 1e-5
    assert torch.cdist(t, eye).min(1).values.max() > 1e-3  # not plain one-hot targets
    c = load_checkpoint(tmp_path / "student" / "model.safetensors").contract
    assert c.training["config"]["teacher_sha256"] and c.training["config"]["distill"] == 0.7


def test_distillation_refuses_a_teacher_of_other_classes_or_hash(data, tmp_path):
    two = make_rgb_dataset(tmp_path / "two", classes=("Alpha", "Beta"), per_class=10)
    train(two, tmp_path / "other", TrainConfig(**{**FAST, "epochs": 1}), progress=False)
    other = str(tmp_path / "other" / "model.safetensors")
    with pytest.raises(ModelError, match="classes or bands differ"):
        train(data, tmp_path / "s1", TrainConfig(**{**FAST, "epochs": 1, "teacher": other}), progress=False)
    with pytest.raises(ModelError, match="sha256"):
        train(data, tmp_path / "s2", TrainConfig(**{**FAST, "epochs": 1, "teacher": other, "teacher_sha256": "0" * 64}),
              progress=False)


def test_haze_lifts_half_the_patches_towards_a_bright_airlight():
    g = torch.Generator().manual_seed(0)
    black = torch.zeros(400, 3, 8, 8)
    out = augment.augment(black, g, jitter=0.0, clamp=True, haze=0.6)
    hazy = out.flatten(1).amax(1) > 0
    assert 0.4 < hazy.float().mean() < 0.6  # half the patches
    assert (out[~hazy] == 0).all()
    lifted = out[hazy]
    assert lifted.max() <= 0.6 + 1e-6 and (lifted.std(dim=(2, 3)) < 1e-6).all()  # a(1 - t) ≤ 0.6, flat per band
    white = augment.augment(torch.ones(400, 3, 8, 8), g, jitter=0.0, clamp=True, haze=0.6)
    assert white.min() >= 0.5 - 1e-6 and white.max() <= 1.0
    assert torch.equal(augment.augment(black, g, jitter=0.0, clamp=True, haze=0.0), black)


def test_translate_shifts_each_patch_by_at_most_its_pixels_with_mirrored_edges():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(300, 1, 16, 16)
    x[:, :, 8, 8] = 1.0  # one bright pixel in the middle of each patch
    out = augment.augment(x, g, jitter=0.0, clamp=True, translate=3)
    assert out.shape == x.shape
    where = torch.stack([torch.nonzero(o[0])[0] for o in out])  # flips/rotations move (8, 8) to (7|8, 7|8)
    assert (where >= 7 - 3).all() and (where <= 8 + 3).all()
    assert len({tuple(w) for w in where.tolist()}) > 30  # many different shifts, not one
    ramp = torch.linspace(0.2, 0.9, 8).repeat(200, 1, 8, 1)  # edges mirrored: no zero-filled gap,
    shifted = augment.augment(ramp, g, jitter=0.0, clamp=True, translate=2)  # no value from outside
    assert shifted.min() >= 0.2 and shifted.max() <= 0.9
    from s2lc.inference import d4_views

    views = d4_views(ramp[:1])
    moved = [not any(torch.equal(o[None], v) for v in views) for o in shifted]
    assert sum(moved) > 100  # most are shifted (a shift of 0 both ways, or along the ramp's flat axis, is not)
    before = g.get_state()
    assert torch.equal(augment.augment(x, g, jitter=0.0, clamp=True, translate=0),
                       augment.augment(x, torch.Generator().set_state(before), jitter=0.0, clamp=True))
    with pytest.raises(ModelError, match="translate must be"):
        train("unused", "unused", TrainConfig(translate=32), progress=False)


def test_blur_softens_half_the_patches_and_keeps_their_mean():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(400, 3, 16, 16)
    x[:, :, ::2, :] = 1.0  # stripes: the sharpest texture there is
    out = augment.augment(x, g, jitter=0.0, clamp=True, blur=2.0)
    assert out.shape == x.shape
    rows, cols = (out.diff(dim=d).abs().mean(dim=(1, 2, 3)) for d in (2, 3))
    contrast = torch.maximum(rows, cols)  # rotations turn the stripes either way
    assert 0.4 < (contrast < 1 - 1e-6).float().mean() < 0.6  # about half are touched, the rest exact
    assert contrast.min() < 0.3  # a strong blur all but flattens the stripes
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.full((400,), 0.5), atol=0.05)  # no brightness change
    assert out.min() >= 0 and out.max() <= 1
    one = torch.zeros(1, 1, 15, 15)
    one[0, 0, 7, 7] = 1.0  # an impulse spreads as a Gaussian of the asked sigma
    spread = augment.gaussian_blur(one, torch.tensor([1.5]))[0, 0]
    offset = torch.arange(15.0) - 7
    assert spread.sum() == pytest.approx(1.0, abs=1e-5)
    assert float((spread.sum(1) * offset**2).sum()) ** 0.5 == pytest.approx(1.5, abs=0.02)
    before = g.get_state()
    assert torch.equal(augment.augment(x, g, jitter=0.0, clamp=True, blur=0.0),
                       augment.augment(x, torch.Generator().set_state(before), jitter=0.0, clamp=True))
    with pytest.raises(ModelError, match="blur must be"):
        train("unused", "unused", TrainConfig(blur=5), progress=False)


def test_a_blurred_run_is_chosen_on_clean_and_degraded_validation_alike(data, tmp_path, monkeypatch):
    # Epoch 2 is best on clean patches, epoch 3 on the mean of clean and degraded: the rule picks 3.
    clean, degraded, calls = [0.5, 0.9, 0.8], [0.2, 0.3, 0.7], []
    real = training._evaluate

    def scripted(model, images, labels, *args, **kwargs):
        _, loss, pred = real(model, images, labels, *args, **kwargs)
        is_degraded = len(calls) % 2 == 1  # each epoch scores the clean split, then the degraded copy
        calls.append(is_degraded)
        return (degraded if is_degraded else clean)[len(calls) // 2 - is_degraded], loss, pred

    monkeypatch.setattr(training, "_evaluate", scripted)
    metrics = train(data, tmp_path / "run", TrainConfig(**{**FAST, "epochs": 3, "blur": 1.5}), progress=False)
    assert [h["val_acc"] for h in metrics["history"]] == clean
    assert [h["val_degraded_acc"] for h in metrics["history"]] == degraded
    assert metrics["best_epoch"] == 3 and metrics["val_accuracy"] == 0.8 and metrics["val_degraded_accuracy"] == 0.7
    assert read_contract(tmp_path / "run" / "model.safetensors")[0].metrics["val_degraded_accuracy"] == 0.7
    monkeypatch.setattr(training, "_evaluate", real)
    plain = train(data, tmp_path / "plain", TrainConfig(**{**FAST, "epochs": 1}), progress=False)
    assert "val_degraded_acc" not in plain["history"][0] and "val_degraded_accuracy" not in plain


def test_the_degraded_validation_copy_is_a_fixed_draw_in_the_images_dtype():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 3, 16, 16), dtype=np.uint8)
    cfg = TrainConfig(blur=1.5, haze=0.3)
    a = augment.degraded_copy(images, 255.0, **_degrading(cfg), airlight=torch.ones(3), clamp=True, chunk=16)
    b = augment.degraded_copy(images, 255.0, **_degrading(cfg), airlight=torch.ones(3), clamp=True, chunk=16)
    assert a.dtype == np.uint8 and a.shape == images.shape and np.array_equal(a, b)  # the same draw every epoch
    # flips/rotations move pixels but keep their values: count the patches whose values changed
    changed = (np.sort(a.reshape(40, -1), 1) != np.sort(images.reshape(40, -1), 1)).any(1)
    assert 10 < changed.sum() < 40  # blurred or hazed (each on half), a few neither
    assert augment.degraded_copy(images, 255.0, **_degrading(TrainConfig()), airlight=torch.ones(3), clamp=True) is None
    ms = rng.integers(0, 10000, (8, 13, 16, 16), dtype=np.uint16)
    assert augment.degraded_copy(ms, 10000.0, **_degrading(TrainConfig(blur=1.0)), airlight=torch.ones(13),
                                 clamp=False).dtype == np.uint16
    tiny = torch.rand(4, 3, 6, 6)  # a kernel wider than the patch is cut to fit, not an error
    assert augment.gaussian_blur(tiny, torch.full((4,), 4.0)).shape == tiny.shape


def test_a_run_saved_before_haze_and_distillation_existed_resumes(data, tmp_path):
    out = tmp_path / "old"
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    train(data, out, cfg, progress=False)
    st = torch.load(out / "state.pt", weights_only=True)
    for key in ("haze", "teacher", "teacher_sha256", "distill", "translate", "blur"):
        del st["config"][key]
    torch.save(st, out / "state.pt")
    with pytest.raises(ModelError, match=r"resume=True with different settings \(haze was 0\.0\)"):
        train(data, out, TrainConfig(**{**FAST, "epochs": 1, "haze": 0.3}), resume=True, progress=False)
    assert train(data, out, cfg, resume=True, progress=False)["best_epoch"] == 1


def test_an_old_hazy_run_resumes_with_its_best_epoch_scored_on_degraded_validation(data, tmp_path, monkeypatch):
    out = tmp_path / "hazy"
    cfg = TrainConfig(**{**FAST, "epochs": 2, "haze": 0.3})
    real = training._evaluate
    calls = []

    def stop_in_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # epoch 1: clean and degraded; epoch 2's first call stops the run
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "_evaluate", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(data, out, cfg, progress=False)
    monkeypatch.setattr(training, "_evaluate", real)
    st = torch.load(out / "state.pt", weights_only=True)
    best, history = json.loads(st["best"]), json.loads(st["history"])
    measured = best["val_degraded_acc"]
    for record in (best, history[0]):  # as a run saved before degraded validation existed
        for key in ("score", "val_degraded_acc", "val_degraded_loss"):
            record.pop(key, None)
    st["best"], st["history"] = json.dumps(best), json.dumps(history)
    torch.save(st, out / "state.pt")
    metrics = train(data, out, cfg, resume=True, progress=False)
    assert "val_degraded_acc" not in metrics["history"][0] and "val_degraded_acc" in metrics["history"][1]
    if metrics["best_epoch"] == 1:  # kept: its degraded score was measured again, the same as before
        assert metrics["val_degraded_accuracy"] == pytest.approx(measured)
    else:  # epoch 2 beat epoch 1's mean score, not its clean score alone
        second = metrics["history"][1]
        assert (second["val_acc"] + second["val_degraded_acc"]) / 2 > (metrics["history"][0]["val_acc"] + measured) / 2 - 1e-9


def test_haze_airlight_is_scaled_to_reflectance_and_falls_with_wavelength():
    from s2lc.checkpoint import MS_SCALING, RGB_SCALING
    from s2lc.datasets import PatchDataset

    def ds(kind, bands):
        return PatchDataset(np.zeros((1, len(bands), 4, 4), np.uint8), np.zeros(1, np.int64), ["a"], ["A"], bands, kind, "x", "0")

    assert torch.equal(augment.airlight_scale(ds("rgb", ["B04", "B03", "B02"]), RGB_SCALING), torch.ones(3))
    ms = augment.airlight_scale(ds("ms", ["B01", "B02", "B04", "B08", "B12"]), MS_SCALING)
    assert ms[0] == pytest.approx(0.275) and ms[1] == pytest.approx(0.275, rel=0.01)  # reflectance 0.275 at ≤ 490 nm
    assert ms[1] > ms[2] > ms[3] > ms[4] and ms[4] < 0.07
    with pytest.raises(ModelError, match="haze must be"):
        train("unused", "unused", TrainConfig(haze=1.0), progress=False)
