import hashlib

import pytest
import torch
from torch import nn

from s2lc.errors import ModelError
from s2lc.models import ARCHITECTURES, build_model, fuse_for_inference, load_pretrained, set_backbone_trainable


def test_registry_builds_any_band_count():
    m = build_model("resnet18", in_bands=13, n_classes=10)
    out = m(torch.rand(2, 13, 64, 64))
    assert out.shape == (2, 10)
    with pytest.raises(ModelError, match="unknown architecture"):
        build_model("vgg11", 3, 10)


def test_wide_resnet_has_the_origin_head():
    m = build_model("wide_resnet50_2", 3, 10)
    head = m.body.fc
    kinds = [type(x) for x in head]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.LogSoftmax]
    assert head[0].in_features == 2048 and head[0].out_features == 256 and head[3].out_features == 10
    set_backbone_trainable(m, False)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("body.fc.") for n in trainable)


def test_freeze_really_freezes_weights_and_batchnorm_stats():
    torch.manual_seed(0)
    m = build_model("resnet18", 3, 4)
    set_backbone_trainable(m, False)
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        loss = nn.functional.cross_entropy(m(torch.rand(8, 3, 32, 32)), torch.randint(0, 4, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = m.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"body.fc.weight", "body.fc.bias"}
    # unfreezing trains everything again
    set_backbone_trainable(m, True)
    m.train()
    assert all(p.requires_grad for p in m.parameters())
    assert m.body.layer1.training


def test_local_pretrained_weights_are_checksum_verified(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18()
    raw = tmp_path / "weights.pth"
    torch.save(ref.state_dict(), raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    good = tmp_path / f"resnet18-{digest[:8]}.pth"
    raw.rename(good)
    m = build_model("resnet18", 3, 10)
    load_pretrained(m, "resnet18", str(good))
    assert torch.equal(m.body.layer1[0].conv1.weight, ref.layer1[0].conv1.weight)

    bad = tmp_path / "resnet18-deadbeef.pth"
    bad.write_bytes(good.read_bytes())
    with pytest.raises(ModelError, match="does not match"):
        load_pretrained(m, "resnet18", str(bad))
    # with an explicit hash any name works; a wrong one is refused
    load_pretrained(m, "resnet18", str(bad), sha256=digest)
    with pytest.raises(ModelError, match="does not match"):
        load_pretrained(m, "resnet18", str(bad), sha256="0" * 64)
    # a plain name is checked against torchvision's published file and refused
    plain = tmp_path / "mine.pth"
    plain.write_bytes(good.read_bytes())
    with pytest.raises(ModelError, match="resnet18-"):
        load_pretrained(m, "resnet18", str(plain))
    with pytest.raises(ModelError, match="not found"):
        load_pretrained(m, "resnet18", str(tmp_path / "nope.pth"))


def test_pretrained_rgb_filters_adapt_to_more_bands(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18()
    p = tmp_path / "w.pth"
    torch.save(ref.state_dict(), p)
    m = build_model("resnet18", 13, 10)
    load_pretrained(m, "resnet18", str(p), sha256=hashlib.sha256(p.read_bytes()).hexdigest())
    w = m.body.conv1.weight
    assert w.shape[1] == 13
    torch.testing.assert_close(w[:, 0], ref.conv1.weight.mean(dim=1) * 3 / 13)


def test_every_registered_arch_builds():
    for name in ARCHITECTURES:
        assert build_model(name, 3, 10).body.fc is not None


def test_fine_resnet_keeps_four_times_the_pixels_at_the_same_depth():
    m = build_model("resnet18_fine", 13, 10)
    seen = {}
    for name in ("layer1", "layer4"):
        getattr(m.body, name).register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name, o.shape))
    assert m(torch.rand(2, 13, 64, 64)).shape == (2, 10)
    assert seen["layer1"] == (2, 32, 32, 32)  # resnet18: (2, 64, 16, 16)
    assert seen["layer4"] == (2, 256, 4, 4)
    assert sum(p.numel() for p in m.parameters()) < 3_000_000
    # initialised as torchvision initialises its ResNets, the replaced stem included
    assert torch.equal(m.body.bn1.weight, torch.ones(32))
    assert m.body.conv1.weight.std() > 0.01


def test_fine_resnet_freezes_and_refuses_imagenet_weights(tmp_path):
    m = build_model("resnet18_fine", 3, 10)
    set_backbone_trainable(m, False)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {"body.fc.weight", "body.fc.bias"}
    with pytest.raises(ModelError, match="no ImageNet weights"):
        load_pretrained(m, "resnet18_fine", "imagenet")
    with pytest.raises(ModelError, match="no ImageNet weights"):
        load_pretrained(m, "resnet18_fine", str(tmp_path / "w.pth"))


def test_the_arch_enum_names_every_registered_architecture():
    """s2lc.options.Arch lists the registry's names without torch, for the CLI's --arch; likewise
    Optimizer for training's optimisers."""
    from s2lc.options import Arch, Optimizer
    from s2lc.training import OPTIMIZERS

    assert sorted(Arch) == sorted(ARCHITECTURES)
    assert sorted(Optimizer) == sorted(OPTIMIZERS)


@pytest.mark.parametrize("arch", ["resnet18", "resnet18_fine", "wide_resnet50_2", "efficientnet_lite0"])
def test_fused_inference_model_gives_the_same_outputs(arch):
    torch.manual_seed(0)
    m = build_model(arch, 3, 10, [0.3, 0.4, 0.5], [0.2, 0.2, 0.2])
    m.train()
    m(torch.rand(16, 3, 64, 64))  # non-trivial batch-norm statistics
    m.eval()
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        ref = m(x)
        fused = fuse_for_inference(m)
        assert not any(isinstance(mod, nn.BatchNorm2d) for mod in fused.modules())  # timm's BatchNormAct2d too
        assert any(isinstance(mod, nn.BatchNorm2d) for mod in m.modules())  # folded on a copy
        torch.testing.assert_close(fused(x), ref, atol=1e-4, rtol=1e-4)
