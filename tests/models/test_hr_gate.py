"""The optional full-resolution Phantom gates of EDVR-STF (``hr_gate`` on raw Phantom
frames, ``hr_warp`` on Phantom frames warped to t): off changes nothing, on keeps the
cached-feature protocol (with the raw HR frames), and ungated weights load into them only
when asked to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import xfusion_models as xm
from xfusion_models.archs import PRESETS
from xfusion_models.ops import phantom_at_t

WEIGHTS = Path(xm.__file__).parent / "weights"


def _features(model, lq: torch.Tensor, hq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame features of a window batch, as a streaming caller caches them."""
    b = lq.shape[0]
    lr = model.encode_lr(lq.flatten(0, 1)).unflatten(0, (b, 3))
    return lr, model.encode_hr(hq.flatten(0, 1)).unflatten(0, (b, 2))


def _gated_tiny(device="cpu", *, random_gate: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    model = xm.edvr_stf("tiny", hr_gate=True, hr_gate_feat=4).to(device).eval()
    if random_gate:  # the start init ignores hq almost entirely; make the gate matter
        with torch.no_grad():
            model.hr_gate.logits.weight.normal_(0, 0.5)
    return model


def test_gate_off_keeps_configs_and_initial_weights():
    assert all("hr_gate" not in cfg for cfg in PRESETS["edvr_stf"].values())
    v2 = json.loads((WEIGHTS / "edvr_stf_small_sim_v2.json").read_text())
    assert xm.edvr_stf("small").config == v2["config"]
    torch.manual_seed(0)
    plain = xm.edvr_stf("tiny")
    gated = _gated_tiny(random_gate=False)
    assert not plain.needs_hr_frames and plain.hr_gate is None
    assert gated.needs_hr_frames
    gated_state = gated.state_dict()
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(gated_state[name], value, rtol=0, atol=0)
    assert {k for k in gated_state if k not in plain.state_dict()} == {
        k for k in gated_state if k.startswith("hr_gate.")
    }


def test_gated_cache_path_equals_forward_and_uses_hq(device, make_window):
    model = _gated_tiny(device)
    lq, hq = make_window(2, 8, 12, device=device)
    with torch.no_grad():
        want, want_att = model.forward_with_attention(lq, hq)
        lr, hr = _features(model, lq, hq)
        got = model.fuse(lr, hr, lq[:, 1], hr_frames=hq)
        other = model(lq, hq.flip(1))
    assert want.shape == (2, 1, 32, 48) and want_att.shape == (2, 5)
    torch.testing.assert_close(got.image, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.attention, want_att, rtol=1e-5, atol=1e-5)
    assert got.tau is None and got.blend_weights is None  # hr_gate reports no blend
    assert (other - want).abs().max() > 1e-3  # the raw Phantom frames reach the output


def test_gate_weights_start_on_the_fused_frame(make_window):
    model = _gated_tiny(random_gate=False)
    lq, hq = make_window(1, 8, 8)
    fused = torch.rand(1, 1, 32, 32)
    head = torch.rand(1, model.config["upsample_feat"], 32, 32)
    w = model.hr_gate.weights(fused, hq, fused, head)
    assert w.shape == (1, 3, 32, 32)
    torch.testing.assert_close(w.sum(1), torch.ones(1, 32, 32))
    assert (w[:, 0] > 0.96).all()


def test_gated_fuse_without_hq_names_the_problem(make_window):
    model = _gated_tiny()
    lq, hq = make_window(1, 8, 8)
    with torch.no_grad():
        lr, hr = _features(model, lq, hq)
        with pytest.raises(
            ValueError, match=r"hr_gate/hr_warp on.*needs hr_frames=\(1, 2, 1, 32, 32\)"
        ):
            model.fuse(lr, hr, lq[:, 1])
        with pytest.raises(ValueError, match="hr_frames must be"):
            model.fuse(lr, hr, lq[:, 1], hr_frames=hq[:, :1])


def test_ungated_weights_load_into_gate_only_when_allowed(tmp_path, make_window):
    torch.manual_seed(3)
    plain = xm.edvr_stf("tiny").eval()
    path = tmp_path / "plain.pth"
    xm.save_checkpoint(plain, path)
    gated = _gated_tiny(random_gate=False)
    with pytest.raises(xm.CheckpointError, match="config differs"):
        xm.load_checkpoint(gated, path)
    xm.load_checkpoint(gated, path, allow_missing_prefix="hr_gate")
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(gated.state_dict()[name], value, rtol=0, atol=0)
    lq, hq = make_window(1, 8, 8)
    with torch.no_grad():
        start = gated(lq, hq)
        blend = 0.965 * plain(lq, hq) + 0.0175 * (hq[:, 0] + hq[:, 1])
    torch.testing.assert_close(start, blend, rtol=0, atol=2e-3)
    # other missing parameters are still refused
    state = {k: v for k, v in plain.state_dict().items() if not k.startswith("conv_last.")}
    torch.save({"params": state, "arch": "edvr_stf", "config": plain.config}, tmp_path / "cut.pth")
    with pytest.raises(xm.CheckpointError, match="missing keys: conv_last"):
        xm.load_checkpoint(gated, tmp_path / "cut.pth", allow_missing_prefix="hr_gate")


def test_gated_checkpoint_builds_back_with_its_config(tmp_path, make_window):
    gated = _gated_tiny()
    path = tmp_path / "gated.pth"
    xm.save_checkpoint(gated, path)
    again = xm.build_model(path)
    assert again.needs_hr_frames and again.config == gated.config
    lq, hq = make_window(1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(again(lq, hq), gated(lq, hq), rtol=0, atol=0)


def _warp_tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4).eval()
    with torch.no_grad():
        model.hr_warp.logits.weight.normal_(0, 0.5)
    return model


def test_warp_gate_is_an_alternative_with_its_own_config_keys():
    assert all("hr_warp" not in cfg for cfg in PRESETS["edvr_stf"].values())
    model = _warp_tiny()
    assert model.needs_hr_frames and model.optional_module == "hr_warp"
    assert model.config["hr_warp"] is True and "hr_gate" not in model.config
    assert xm.edvr_stf("tiny").optional_module is None
    with pytest.raises(ValueError, match="alternatives"):
        xm.edvr_stf("tiny", hr_gate=True, hr_warp=True)


def test_warp_gate_cache_path_equals_forward_and_sums_to_one(make_window):
    model = _warp_tiny()
    lq, hq = make_window(2, 8, 12)
    with torch.no_grad():
        want, want_att = model.forward_with_attention(lq, hq)
        lr, hr = _features(model, lq, hq)
        got = model.fuse(lr, hr, lq[:, 1], hr_frames=hq)
        other = model(lq, hq.flip(1))
        from xfusion_models.ops import phantom_at_t

        at_t = phantom_at_t(hq, lq[:, 1])
        fused = torch.rand(2, 1, 32, 48)
        head = torch.rand(2, model.config["upsample_feat"], 32, 48)
        w = model.hr_warp.weights(fused, at_t, fused, lq[:, 1], head)
    torch.testing.assert_close(got.image, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.attention, want_att, rtol=1e-5, atol=1e-5)
    assert (other - want).abs().max() > 1e-3
    assert w.shape == (2, 4, 32, 48)
    torch.testing.assert_close(w.sum(1), torch.ones(2, 32, 48))
    with pytest.raises(ValueError, match="needs hr_frames="):
        model.fuse(lr, hr, lq[:, 1])


def test_plain_weights_load_into_the_warp_gate_only_when_allowed(tmp_path, make_window):
    torch.manual_seed(3)
    plain = xm.edvr_stf("tiny").eval()
    path = tmp_path / "plain.pth"
    xm.save_checkpoint(plain, path)
    model = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4).eval()
    with pytest.raises(xm.CheckpointError, match="config differs"):
        xm.load_checkpoint(model, path)
    with pytest.raises(xm.CheckpointError):
        xm.load_checkpoint(model, path, allow_missing_prefix="hr_gate")
    xm.load_checkpoint(model, path, allow_missing_prefix="hr_warp")
    lq, hq = make_window(1, 8, 8)
    with torch.no_grad():  # the start gate is the time-weighted blend of the warped frames
        from xfusion_models.archs._hr_gate import WARP_START_OTHERS
        from xfusion_models.ops import phantom_at_t

        at_t = phantom_at_t(hq, lq[:, 1])
        tau = at_t.tau.view(-1, 1, 1, 1)
        lq_up = torch.nn.functional.interpolate(lq[:, 1], scale_factor=4, mode="bilinear")
        other = torch.tensor(WARP_START_OTHERS).exp()
        want = other * (plain(lq, hq) + lq_up) + (1 - tau) * at_t.before + tau * at_t.after
        want = want / (1 + 2 * other)
        torch.testing.assert_close(model(lq, hq), want, rtol=0, atol=1e-5)
        assert (model(lq, hq) - at_t.blend()).abs().max() < 0.04
    saved = tmp_path / "warp.pth"
    xm.save_checkpoint(model, saved)
    again = xm.build_model(saved)
    assert again.optional_module == "hr_warp" and again.config == model.config


def test_a_gated_checkpoint_loads_with_the_gate_allowed_missing(tmp_path):
    """Fine-tuning a gated model from gated weights: the allowance must not reject the
    gate it was allowed to miss, and a half-present gate is still an error."""
    model = _warp_tiny(seed=5)
    path = tmp_path / "warp.pth"
    xm.save_checkpoint(model, path)
    again = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4)
    xm.load_checkpoint(again, path, allow_missing_prefix="hr_warp")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], value, rtol=0, atol=0)
    state = {k: v for k, v in model.state_dict().items() if k != "hr_warp.logits.bias"}
    torch.save({"params": state, "arch": "edvr_stf", "config": model.config}, tmp_path / "half.pth")
    with pytest.raises(xm.CheckpointError, match="missing keys: hr_warp.logits.bias"):
        xm.load_checkpoint(again, tmp_path / "half.pth", allow_missing_prefix="hr_warp")


def test_warp_gate_reports_tau_and_mean_blend_weights(make_window):
    model = _warp_tiny()
    lq, hq = make_window(2, 8, 8)
    with torch.no_grad():
        lr, hr = _features(model, lq, hq)
        fused = model.fuse(lr, hr, lq[:, 1], hr_frames=hq)
        forward = model(lq, hq)
        at_t = phantom_at_t(hq, lq[:, 1])
    torch.testing.assert_close(fused.image, forward, rtol=1e-5, atol=1e-5)
    assert fused.tau is not None and fused.blend_weights is not None
    assert fused.tau.shape == (2,) and fused.blend_weights.shape == (2, 4)
    torch.testing.assert_close(fused.tau, at_t.tau, rtol=0, atol=0)
    torch.testing.assert_close(fused.blend_weights.sum(1), torch.ones(2))
    plain = xm.edvr_stf("tiny").eval()
    with torch.no_grad():
        lr, hr = _features(plain, lq, hq)
        reported = plain.fuse(lr, hr, lq[:, 1])
    assert reported.tau is None and reported.blend_weights is None
