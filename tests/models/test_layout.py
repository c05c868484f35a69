"""Channels-last memory inside EDVR-STF: the helpers equal the plain ops they stand for,
the layout survives where it is meant to, and windows fused together equal each window
fused alone (the frame order of a batch is kept through every reshaping step)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xfusion_models as xm
from xfusion_models.archs._pcd import _with_reference
from xfusion_models.ops import (
    ModulatedDeformConv2d,
    cat_channels_last,
    cat_frames_channels_last,
    channels_last,
    merge_frames_channels_last,
)

CL = torch.channels_last


def _is_cl(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=CL)


def test_one_channel_frames_are_restrided_not_copied_and_convs_answer_channels_last():
    x = torch.rand(3, 1, 8, 12)
    y = channels_last(x)
    assert y.data_ptr() == x.data_ptr() and torch.equal(y, x)
    weight = torch.randn(4, 1, 3, 3)
    assert not _is_cl(F.conv2d(x, weight, padding=1))  # what the restriding is for
    out = F.conv2d(y, weight, padding=1)
    assert _is_cl(out)
    torch.testing.assert_close(out, F.conv2d(x, weight, padding=1))
    many = torch.rand(2, 3, 5, 7)
    assert _is_cl(channels_last(many)) and torch.equal(channels_last(many), many)
    with pytest.raises(ValueError, match="N, C, H, W"):
        channels_last(torch.rand(2, 3, 4))


def test_concatenations_equal_torch_cat_in_channels_last_memory():
    gen = torch.Generator().manual_seed(0)
    parts = [
        torch.rand(2, 1, 6, 5, generator=gen),
        torch.rand(2, 3, 6, 5, generator=gen).contiguous(memory_format=CL),
        torch.rand(2, 2, 6, 5, generator=gen, dtype=torch.float64),
    ]
    got = cat_channels_last(parts)
    assert _is_cl(got) and got.dtype == torch.float64
    assert torch.equal(got, torch.cat(parts, dim=1))
    lr = torch.rand(2, 3, 4, 6, 5, generator=gen)
    hr = torch.rand(2, 2, 4, 6, 5, generator=gen)
    frames = cat_frames_channels_last([lr, hr])
    assert _is_cl(frames) and torch.equal(frames, torch.cat((lr, hr), dim=1).flatten(0, 1))
    merged = merge_frames_channels_last(torch.cat((lr, hr), dim=1))
    assert _is_cl(merged)
    assert torch.equal(merged, torch.cat((lr, hr), dim=1).reshape(2, 20, 6, 5))


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_deformable_conv_on_channels_last_views_equals_contiguous_input(grad):
    """The deformable packs hand the op a channels-last input and offsets and masks that
    are slices of one channels-last conv output; the product lands channels-last."""
    torch.manual_seed(3)
    layer = ModulatedDeformConv2d(8, 6, 3, padding=1, deform_groups=2)
    x = torch.rand(2, 8, 7, 9)
    raw = (torch.rand(2, 3 * 2 * 9, 7, 9) - 0.5) * 4  # offsets up to +-2 px, then masks
    n = layer.offset_channels
    with torch.set_grad_enabled(grad):
        want = layer(x, raw[:, :n].contiguous(), torch.sigmoid(raw[:, n:]).contiguous())
        raw_cl = raw.contiguous(memory_format=CL)
        got = layer(channels_last(x), raw_cl[:, :n], torch.sigmoid(raw_cl[:, n:]))
    assert _is_cl(got)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_the_reference_half_of_an_offset_conv_is_computed_once_per_window():
    torch.manual_seed(4)
    conv = nn.Conv2d(8, 4, 3, 1, 1)
    b, t = 2, 5
    x = torch.rand(b * t, 4, 6, 7)
    ref = torch.rand(b, 4, 6, 7)
    repeated = ref.unsqueeze(1).expand(b, t, 4, 6, 7).reshape(b * t, 4, 6, 7)
    want = conv(torch.cat((x, repeated), dim=1))
    torch.testing.assert_close(_with_reference(conv, x, ref), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gate", [{}, {"hr_warp": True, "hr_warp_feat": 4}], ids=["plain", "warp"])
def test_windows_fused_together_equal_each_window_fused_alone(gate, make_window):
    """Random offset convs (an untrained pack samples the regular grid) so every
    deformable tap moves: a frame of window 0 used by window 1 would show."""
    torch.manual_seed(0)
    net = xm.edvr_stf("tiny", **gate).eval()
    for module in net.modules():
        if hasattr(module, "conv_offset"):
            nn.init.normal_(module.conv_offset.weight, std=0.5)
    lq, hq = make_window(3, 8, 12, seed=6)
    with torch.no_grad():
        together, attention = net.forward_with_attention(lq, hq)
        for i in range(3):
            alone, alone_att = net.forward_with_attention(lq[i : i + 1], hq[i : i + 1])
            torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(attention[i : i + 1], alone_att, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[1], atol=1e-3)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 2, 2)])
def test_inference_bands_equal_the_whole_batch_product(
    monkeypatch, layout, stride, padding, dilation
):
    """Without gradients the op samples one frame and a band of rows at a time; bands of
    one and of three rows (tiles that do not divide the height) give the batched values."""
    from xfusion_models.ops import _deform_conv

    gen = torch.Generator().manual_seed(5)
    x = torch.rand(2, 8, 9, 7, generator=gen)
    if layout == "channels_last":
        x = channels_last(x)
    weight = torch.randn(5, 8, 3, 3, generator=gen)
    bias = torch.randn(5, generator=gen)
    h_out = (9 + 2 * padding - 2 * dilation - 1) // stride + 1
    w_out = (7 + 2 * padding - 2 * dilation - 1) // stride + 1
    offset = (torch.rand(2, 2 * 2 * 9, h_out, w_out, generator=gen) - 0.5) * 6
    mask = torch.rand(2, 2 * 9, h_out, w_out, generator=gen)
    args = (x, offset, mask, weight, bias, stride, padding, dilation, 1, 2)
    with torch.enable_grad():
        want = _deform_conv.modulated_deform_conv2d(*args, backend="torch")
    row_bytes = 8 * 9 * w_out * 4
    for rows in (1, 3):
        monkeypatch.setattr(_deform_conv, "TILE_BYTES", rows * row_bytes)
        with torch.no_grad():
            got = _deform_conv.modulated_deform_conv2d(*args, backend="torch")
        assert _is_cl(got)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
