"""Checkpoint round trips and the errors a wrong, damaged or foreign file must give."""

from __future__ import annotations

import json

import pytest
import torch

import xfusion_models as xm
from xfusion_models.archs import ARCHS
from xfusion_models.weights import file_sha256, read_checkpoint

ARCH_NAMES = sorted(ARCHS)
BUILDERS = {"edvr_stf": xm.edvr_stf, "swin_xvr": xm.swin_xvr}
ORIGINAL_KEY = {"edvr_stf": "params", "swin_xvr": "params_ema"}


def _seeded(arch: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return BUILDERS[arch]("tiny").eval()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_round_trip_keeps_weights_and_metadata(arch, tmp_path):
    model = _seeded(arch)
    path = tmp_path / "m.pth"
    digest = xm.save_checkpoint(model, path, extra={"recipe": {"iters": 3, "lr": 1e-4}})
    assert digest == file_sha256(path)
    raw = read_checkpoint(path)
    assert raw["arch"] == arch and raw["preset"] == "tiny" and raw["config"] == model.config
    other = _seeded(arch, seed=1)
    assert not _same_weights(model, other)
    meta = xm.load_checkpoint(other, path, sha256=digest)
    assert _same_weights(model, other)
    assert meta["recipe"] == {"iters": 3, "lr": 1e-4} and "params" not in meta
    rebuilt = xm.build_model(path)
    assert _same_weights(model, rebuilt) and not rebuilt.training


def test_sha256_mismatch_is_refused(tmp_path):
    path = tmp_path / "m.pth"
    xm.save_checkpoint(_seeded("edvr_stf"), path)
    with pytest.raises(xm.CheckpointError, match="sha256 mismatch"):
        xm.load_checkpoint(_seeded("edvr_stf"), path, sha256="0" * 64)


def test_wrong_architecture_is_named(tmp_path):
    path = tmp_path / "m.pth"
    xm.save_checkpoint(_seeded("edvr_stf"), path)
    if "swin_xvr" in ARCHS:
        with pytest.raises(xm.CheckpointError, match="wrong architecture: file holds edvr_stf"):
            xm.load_checkpoint(_seeded("swin_xvr"), path)
    # A bare state dict of another model: no metadata, almost nothing matches.
    torch.save({"params": torch.nn.Conv2d(1, 1, 3).state_dict()}, path)
    with pytest.raises(xm.CheckpointError, match="does not look like a edvr_stf checkpoint"):
        xm.load_checkpoint(_seeded("edvr_stf"), path)


def _bare_state(arch: str) -> dict[str, torch.Tensor]:
    return dict(_seeded(arch).state_dict())


def test_missing_unexpected_and_shape_errors_list_keys(tmp_path):
    path = tmp_path / "m.pth"
    state = _bare_state("edvr_stf")
    state.pop("conv_last.bias")
    state["extra_head.weight"] = torch.zeros(3)
    state["conv_first.weight"] = torch.zeros(1, 1, 5, 5)
    torch.save({"params": state}, path)
    with pytest.raises(xm.CheckpointError) as err:
        xm.load_checkpoint(_seeded("edvr_stf"), path)
    msg = str(err.value)
    assert "missing keys: conv_last.bias" in msg
    assert "unexpected keys: extra_head.weight" in msg
    assert "shape mismatch: conv_first.weight (1, 1, 5, 5) vs model (8, 1, 3, 3)" in msg
    assert str(path) in msg


def test_config_mismatch_is_refused(tmp_path):
    path = tmp_path / "m.pth"
    xm.save_checkpoint(xm.edvr_stf("tiny", num_reconstruct_block=2), path)
    with pytest.raises(xm.CheckpointError, match="config differs"):
        xm.load_checkpoint(_seeded("edvr_stf"), path)
    # The builder takes the config from the file instead.
    assert xm.edvr_stf(weights=path).config["num_reconstruct_block"] == 2
    with pytest.raises(ValueError, match="contradict"):
        xm.edvr_stf(weights=path, num_reconstruct_block=3)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint at all", b"PK\x03\x04 truncated zip", json.dumps([1]).encode()],
)
def test_corrupt_file_gives_checkpoint_error(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(xm.CheckpointError, match="not a readable torch checkpoint"):
        xm.load_checkpoint(_seeded("edvr_stf"), path)


def test_pickled_code_is_not_executed(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("pickle code ran",))

    path = tmp_path / "evil.pth"
    torch.save({"params": Boom()}, path)
    with pytest.raises(xm.CheckpointError, match="not a readable torch checkpoint"):
        xm.load_checkpoint(_seeded("edvr_stf"), path)


def test_truncated_checkpoint_gives_checkpoint_error(tmp_path):
    path = tmp_path / "m.pth"
    xm.save_checkpoint(_seeded("edvr_stf"), path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(xm.CheckpointError, match="not a readable torch checkpoint"):
        xm.load_checkpoint(_seeded("edvr_stf"), path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(xm.CheckpointError, match="no such checkpoint file"):
        xm.load_checkpoint(_seeded("edvr_stf"), tmp_path / "nope.pth")


#: Our key prefix -> the original XFusion EDVRSTF name (its HR branch layers).
ORIGINAL_NAMES = {
    "hr_branch.conv1.": "conv_first_hi.",
    "hr_branch.conv2.": "conv1_hi.",
    "hr_branch.conv3.": "conv2_hi.",
}


def _original_layout(model: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """The state dict as the original code names it (plus buffers it stored)."""
    out = {}
    for key, value in model.state_dict().items():
        for ours, theirs in ORIGINAL_NAMES.items():
            if key.startswith(ours):
                key = theirs + key[len(ours) :]
        out[prefix + key] = value
    if model.arch == "swin_xvr":  # the original kept its position index as a buffer
        out[prefix + "layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(4, 4)
    return out


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("prefix", ["", "module."])
def test_original_basicsr_layout_loads(arch, prefix, tmp_path, make_window):
    """BasicSR saves {'params' or 'params_ema': state}, DataParallel adds 'module.'."""
    source = _seeded(arch)
    state = _original_layout(source, prefix)
    decoy = {k: torch.zeros_like(v) for k, v in state.items()}
    # Swin: EMA weights are the ones to use; plain params are a decoy.
    layout = {"params_ema": state, "params": decoy} if arch == "swin_xvr" else {"params": state}
    path = tmp_path / "net_g_latest.pth"
    torch.save({**layout, "iter": 300000}, path)
    if arch == "edvr_stf":
        assert "conv_first_hi.weight" in {k.removeprefix(prefix) for k in state}
    target = _seeded(arch, seed=7)
    assert not _same_weights(source, target)
    xm.load_original_checkpoint(target, path)
    assert _same_weights(source, target)
    via_builder = BUILDERS[arch]("tiny", weights=path).eval()
    lq, hq = make_window(1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(via_builder(lq, hq), source(lq, hq))
    with pytest.raises(xm.CheckpointError, match="no arch metadata"):
        xm.build_model(path)


def test_save_rejects_non_plain_extra(tmp_path):
    with pytest.raises(TypeError, match="not a plain type"):
        xm.save_checkpoint(_seeded("edvr_stf"), tmp_path / "m.pth", extra={"when": object()})
    with pytest.raises(ValueError, match="reserved"):
        xm.save_checkpoint(_seeded("edvr_stf"), tmp_path / "m.pth", extra={"arch": "x"})


@pytest.mark.parametrize(
    ("arch", "key", "value"),
    [
        ("edvr_stf", "num_feat", 10**9),
        ("edvr_stf", "num_reconstruct_block", 10**7),
        ("edvr_stf", "upsample_feat", 64.5),
        ("swin_xvr", "depths", [2, 10**6]),
        ("swin_xvr", "embed_dim", True),
        ("swin_xvr", "mlp_ratio", 1e9),
    ],
)
def test_a_config_no_machine_can_build_is_refused_before_allocating(arch, key, value, tmp_path):
    """A checkpoint's config of num_feat 1e9 asked the allocator for 36 GB (a traceback,
    or the OOM killer) before anything named the file."""
    path = tmp_path / "m.pth"
    xm.save_checkpoint(_seeded(arch), path)
    obj = read_checkpoint(path)
    obj["config"][key] = value
    torch.save(obj, path)
    with pytest.raises(xm.CheckpointError, match=rf"m\.pth: its config does not build {arch}: "):
        xm.build_model(path)
    with pytest.raises(ValueError, match=rf"{arch} {key}: "):
        ARCHS[arch](**{key: value})
