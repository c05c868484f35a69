"""Shapes, dtypes, devices, the cached-feature protocol and shape checks, for both archs."""

from __future__ import annotations

import pytest
import torch

import xfusion_models as xm
from xfusion_models.archs import ARCHS, PRESETS

ARCH_NAMES = sorted(ARCHS)
BUILDERS = {"edvr_stf": xm.edvr_stf, "swin_xvr": xm.swin_xvr}


def _tiny(arch: str, device) -> torch.nn.Module:
    torch.manual_seed(0)
    return BUILDERS[arch]("tiny").to(device).eval()


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("size", [(8, 12), (4, 4)])
def test_tiny_forward_shape_dtype_device(arch, size, device, make_window):
    model = _tiny(arch, device)
    lq, hq = make_window(2, *size, device=device)
    with torch.no_grad():
        out, attention = model.forward_with_attention(lq, hq)
    assert out.shape == (2, 1, 4 * size[0], 4 * size[1])
    assert out.dtype == torch.float32 and out.device.type == device.type
    assert torch.isfinite(out).all()
    if arch == "edvr_stf":
        assert attention.shape == (2, 5)
        assert ((attention > 0) & (attention < 1)).all()
    else:
        assert attention is None
    torch.testing.assert_close(model(lq, hq), out)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_cached_features_equal_plain_forward(arch, device):
    """Encode 5 LR + 3 HR frames once, fuse two overlapping windows from the cache."""
    model = _tiny(arch, device)
    gen = torch.Generator().manual_seed(5)
    lr_frames = torch.rand(5, 1, 8, 8, generator=gen).to(device)
    hr_frames = torch.rand(3, 1, 32, 32, generator=gen).to(device)
    with torch.no_grad():
        lr_cache, hr_cache = model.encode_lr(lr_frames), model.encode_hr(hr_frames)
        assert lr_cache.shape == (5, model.num_feat, 8, 8)
        assert hr_cache.shape == (3, model.num_feat, 8, 8)
        for t, (hb, ha) in [(1, (0, 1)), (2, (0, 1)), (3, (1, 2))]:
            lq = lr_frames[t - 1 : t + 2].unsqueeze(0)
            hq = hr_frames[[hb, ha]].unsqueeze(0)
            want, want_att = model.forward_with_attention(lq, hq)
            got = model.fuse(
                lr_cache[t - 1 : t + 2].unsqueeze(0), hr_cache[[hb, ha]].unsqueeze(0), lq[:, 1]
            )
            torch.testing.assert_close(got.image, want, rtol=1e-5, atol=1e-5)
            if want_att is None:
                assert got.attention is None
            else:
                torch.testing.assert_close(got.attention, want_att, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_backward_reaches_every_parameter(arch, make_window):
    model = _tiny(arch, "cpu").train()
    lq, hq = make_window(1, 8, 8)
    model(lq, hq).mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None]
    assert not dead, dead


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize(
    "lq_shape,hq_shape,match",
    [
        ((1, 3, 1, 8, 10), (1, 2, 1, 32, 40), r"lq must be \(B,3,1,h,w\) with h,w multiples of 4"),
        ((1, 5, 1, 8, 8), (1, 2, 1, 32, 32), r"lq must be \(B,3,1,h,w\)"),
        ((1, 3, 8, 8), (1, 2, 1, 32, 32), r"lq must be \(B,3,1,h,w\)"),
        ((1, 3, 1, 8, 8), (1, 2, 1, 32, 28), r"hq must be \(B,2,1,4h,4w\)"),
        ((2, 3, 1, 8, 8), (1, 2, 1, 32, 32), r"hq must be \(B,2,1,4h,4w\)"),
    ],
)
def test_forward_rejects_bad_shapes_up_front(arch, lq_shape, hq_shape, match):
    model = _tiny(arch, "cpu")
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(lq_shape), torch.zeros(hq_shape))


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_fuse_and_encoders_reject_bad_shapes(arch):
    model = _tiny(arch, "cpu")
    c = model.num_feat
    with pytest.raises(ValueError, match="LR frames must be"):
        model.encode_lr(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="HR frames must be"):
        model.encode_hr(torch.zeros(2, 1, 30, 32))
    with pytest.raises(ValueError, match="hr_feats must be"):
        model.fuse(torch.zeros(1, 3, c, 8, 8), torch.zeros(1, 2, c, 4, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="lr_centre must be"):
        model.fuse(torch.zeros(1, 3, c, 8, 8), torch.zeros(1, 2, c, 8, 8), torch.zeros(1, 8, 8))


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("preset", ["paper", "small", "tiny"])
def test_every_preset_builds_with_its_config(arch, preset):
    model = BUILDERS[arch](preset)
    assert model.arch == arch and model.preset == preset
    assert model.config == PRESETS[arch][preset]
    n_params = sum(p.numel() for p in model.parameters())
    sizes = {"paper": (5e6, 5e7), "small": (1e5, 3e6), "tiny": (1e3, 3e5)}[preset]
    assert sizes[0] < n_params < sizes[1], n_params


def test_edvr_paper_preset_matches_the_paper_hyperparameters():
    assert PRESETS["edvr_stf"]["paper"]["num_feat"] == 128
    assert PRESETS["edvr_stf"]["paper"]["num_extract_block"] == 5
    assert PRESETS["edvr_stf"]["paper"]["num_reconstruct_block"] == 40
    assert PRESETS["edvr_stf"]["paper"]["deform_groups"] == 8


def test_edvr_untrained_output_is_close_to_bilinear_of_centre(make_window):
    """The bilinear skip of frame t is the base the network learns a residual on."""
    model = _tiny("edvr_stf", "cpu")
    with torch.no_grad():
        for p in model.conv_last.parameters():
            p.zero_()
        lq, hq = make_window(1, 8, 8)
        out = model(lq, hq)
    base = torch.nn.functional.interpolate(lq[:, 1], scale_factor=4, mode="bilinear")
    torch.testing.assert_close(out, base)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_forward_names_dtype_mismatch(arch, make_window):
    model = _tiny(arch, "cpu")
    lq, hq = make_window(1, 8, 8, dtype=torch.float64)
    with pytest.raises(
        ValueError, match="lq/hq are torch.float64 on cpu but the model is torch.float32"
    ):
        model(lq, hq)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_bf16_autocast_on_cpu_tracks_float32(arch, make_window):
    """The live runner may use autocast; outputs stay close to the float32 ones."""
    model = _tiny(arch, "cpu")
    lq, hq = make_window(1, 8, 8)
    with torch.no_grad():
        want = model(lq, hq)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(lq, hq)
    assert torch.isfinite(got).all()
    assert (got.float() - want).abs().mean() < 0.05 * want.abs().mean() + 1e-3
