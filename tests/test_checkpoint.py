import json

import numpy as np
import pytest
import torch

from s2lc.checkpoint import RGB_SCALING, ModelContract, load_checkpoint, read_contract, save_checkpoint
from s2lc.errors import CheckpointError
from s2lc.models import build_model


def _contract(**kw):
    base = dict(arch="resnet18", bands=["B04", "B03", "B02"], classes=["a", "b", "c"], scaling=dict(RGB_SCALING),
                mean=[0.3, 0.4, 0.5], std=[0.1, 0.2, 0.3])
    base.update(kw)
    return ModelContract(**base)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    m = build_model("resnet18", 3, 3, [0.3, 0.4, 0.5], [0.1, 0.2, 0.3]).eval()
    path = tmp_path / "m.safetensors"
    sha = save_checkpoint(path, m, _contract(), dtype=torch.float32)
    return m, path, sha


def test_round_trip_same_outputs_and_contract(saved):
    m, path, sha = saved
    loaded = load_checkpoint(path)
    assert loaded.sha256 == sha and len(sha) == 64
    assert loaded.contract.bands == ["B04", "B03", "B02"] and loaded.contract.classes == ["a", "b", "c"]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), m(x))
    torch.testing.assert_close(loaded.model.mean.flatten(), torch.tensor([0.3, 0.4, 0.5]))


def test_a_saved_checkpoint_is_readable_by_others_as_the_umask_allows(saved):
    import os
    import stat

    _, path, _ = saved
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # safetensors alone writes 0600


def test_float16_storage_is_smaller_and_close(saved, tmp_path):
    m, path, _ = saved
    half = tmp_path / "h.safetensors"
    save_checkpoint(half, m, _contract())
    assert half.stat().st_size < 0.6 * path.stat().st_size
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(half).model(x), m(x), atol=2e-2, rtol=2e-2)


def test_tampered_tensor_is_refused(saved):
    _, path, _ = saved
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip bits inside the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="differs from the recorded"):
        load_checkpoint(path)


def test_missing_field_and_foreign_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    from s2lc.checkpoint import tensors_sha256

    t = {"w": torch.zeros(2)}
    p = tmp_path / "nofield.safetensors"
    save_file(t, str(p), metadata={"s2lc_contract": json.dumps({"arch": "resnet18"}), "s2lc_tensors_sha256": tensors_sha256(t)})
    with pytest.raises(CheckpointError, match="lacks field"):
        load_checkpoint(p)
    plain = tmp_path / "plain.safetensors"
    save_file(t, str(plain))
    with pytest.raises(CheckpointError, match="not an s2lc checkpoint"):
        read_contract(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_eurosat_rgb_scaling_matches_gdal_translate():
    c = _contract()
    dn = np.array([0, 1375, 2750, 9000, np.nan, -50], dtype=np.float32)
    # gdal_translate -scale 0 2750 1 255: 0 -> 1, 2750 -> 255, clipped; no data -> 0
    np.testing.assert_array_equal(c.to_dst(dn), [1, 128, 255, 255, 0, 1])
