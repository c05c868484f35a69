"""The streaming protocol: both architectures satisfy it, ``fuse`` returns a typed result,
and the motion cache a caller passes in serves it without changing a value."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import xfusion_models as xm
from xfusion_models import FusedOutput, PhantomMotionCache, StreamingFusionNet


def _features(net: StreamingFusionNet, lq: torch.Tensor, hq: torch.Tensor):
    b = lq.shape[0]
    lr = net.encode_lr(lq.flatten(0, 1)).unflatten(0, (b, 3))
    return lr, net.encode_hr(hq.flatten(0, 1)).unflatten(0, (b, 2))


def test_both_architectures_and_their_gated_variants_satisfy_the_protocol():
    # annotated assignments: mypy checks them as well (`mypy tests/models/test_protocol.py`)
    edvr: StreamingFusionNet = xm.edvr_stf("tiny")
    swin: StreamingFusionNet = xm.swin_xvr("tiny")
    gated: StreamingFusionNet = xm.edvr_stf("tiny", hr_gate=True, hr_gate_feat=4)
    warped: StreamingFusionNet = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4)
    for net in (edvr, swin, gated, warped):
        assert isinstance(net, StreamingFusionNet)
    assert (edvr.needs_hr_frames, swin.needs_hr_frames) == (False, False)
    assert gated.needs_hr_frames and warped.needs_hr_frames
    assert edvr.num_feat == xm.PRESETS["edvr_stf"]["tiny"]["num_feat"]
    assert swin.num_feat == xm.PRESETS["swin_xvr"]["tiny"]["embed_dim"]
    # the check is structural, and it can fail
    assert not isinstance(torch.nn.Conv2d(1, 1, 3), StreamingFusionNet)


@pytest.mark.parametrize("arch", ["edvr_stf", "swin_xvr"])
def test_fuse_returns_a_typed_result_equal_to_forward(arch, make_window):
    torch.manual_seed(0)
    net = getattr(xm, arch)("tiny").eval()
    lq, hq = make_window(2, 8, 12)
    with torch.no_grad():
        lr, hr = _features(net, lq, hq)
        fused = net.fuse(lr, hr, lq[:, 1], hq, motion_cache=PhantomMotionCache())
        want, want_att = net.forward_with_attention(lq, hq)
    assert isinstance(fused, FusedOutput)
    torch.testing.assert_close(fused.image, want, rtol=1e-5, atol=1e-5)
    assert fused.image.shape == (2, 1, 32, 48)
    if arch == "edvr_stf":
        assert fused.attention is not None and fused.attention.shape == (2, 5)
        torch.testing.assert_close(fused.attention, want_att, rtol=1e-5, atol=1e-5)
    else:
        assert fused.attention is None and want_att is None
    assert fused.tau is None and fused.blend_weights is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        fused.image = want  # type: ignore[misc]


def test_motion_cache_serves_windows_sharing_a_phantom_pair_bit_for_bit(make_window):
    torch.manual_seed(0)
    net = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4).eval()
    lq, hq = make_window(1, 8, 8)
    lq_next = make_window(1, 8, 8, seed=1)[0]  # another Shimadzu window, same Phantom pair
    cache = PhantomMotionCache()
    with torch.no_grad():
        results = []
        for window in (lq, lq_next):
            lr, hr = _features(net, window, hq)
            results.append(
                (
                    net.fuse(lr, hr, window[:, 1], hq, motion_cache=cache),
                    net.fuse(lr, hr, window[:, 1], hq),  # no cache: computed afresh
                )
            )
    assert (cache.misses, cache.hits) == (1, 1)
    for cached, fresh in results:
        for field in ("image", "attention", "tau", "blend_weights"):
            torch.testing.assert_close(
                getattr(cached, field), getattr(fresh, field), rtol=0, atol=0
            )
