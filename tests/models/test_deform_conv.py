"""The DCNv2 op against a plain conv and a per-pixel reference written out in loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xfusion_models.ops import ModulatedDeformConv2d, modulated_deform_conv2d
from xfusion_models.ops import torchvision_deform_conv2d as tv_kernel


def _bilinear(img: np.ndarray, y: float, x: float) -> float:
    """Bilinear value at (y, x); pixels outside the image count as zero."""
    h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * img[yy, xx]
    return total


def _reference(x, offset, mask, weight, bias, stride, padding, dilation, groups, dg):
    x, offset, mask = x.double().numpy(), offset.double().numpy(), mask.double().numpy()
    weight, bias = weight.double().numpy(), bias.double().numpy()
    b, c, _, _ = x.shape
    c_out, cpg, kh, kw = weight.shape
    h_out, w_out = offset.shape[-2:]
    out = np.zeros((b, c_out, h_out, w_out))
    for n in range(b):
        for o in range(c_out):
            g = o // (c_out // groups)
            for i in range(h_out):
                for j in range(w_out):
                    acc = bias[o]
                    for ci in range(cpg):
                        cin = g * cpg + ci
                        d = cin // (c // dg)
                        for a in range(kh):
                            for bb in range(kw):
                                k = a * kw + bb
                                dy = offset[n, d * 2 * kh * kw + 2 * k, i, j]
                                dx = offset[n, d * 2 * kh * kw + 2 * k + 1, i, j]
                                py = i * stride - padding + a * dilation + dy
                                px = j * stride - padding + bb * dilation + dx
                                m = mask[n, d * kh * kw + k, i, j]
                                acc += weight[o, ci, a, bb] * m * _bilinear(x[n, cin], py, px)
                    out[n, o, i, j] = acc
    return torch.from_numpy(out)


@pytest.mark.parametrize(
    "stride,padding,dilation,groups,dg", [(1, 1, 1, 1, 1), (1, 1, 1, 2, 2), (2, 2, 2, 1, 4)]
)
def test_zero_offset_unit_mask_is_plain_conv(device, stride, padding, dilation, groups, dg):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 9, 11, generator=gen).to(device)
    weight = torch.randn(4, 8 // groups, 3, 3, generator=gen).to(device)
    bias = torch.randn(4, generator=gen).to(device)
    want = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    h_out, w_out = want.shape[-2:]
    offset = torch.zeros(2, 2 * dg * 9, h_out, w_out, device=device)
    mask = torch.ones(2, dg * 9, h_out, w_out, device=device)
    got = modulated_deform_conv2d(
        x, offset, mask, weight, bias, stride, padding, dilation, groups, dg, backend="torch"
    )
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("stride,padding,dilation,groups,dg", [(1, 1, 1, 2, 2), (2, 1, 2, 1, 2)])
def test_random_offsets_match_per_pixel_reference(stride, padding, dilation, groups, dg, grad):
    """Inference masks the columns in place and multiplies them batch by batch: both
    paths, with two windows in the batch, agree with the per-pixel reference."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 5, 6, generator=gen)
    weight = torch.randn(4, 4 // groups, 3, 3, generator=gen)
    bias = torch.randn(4, generator=gen)
    h_out = (5 + 2 * padding - dilation * 2 - 1) // stride + 1
    w_out = (6 + 2 * padding - dilation * 2 - 1) // stride + 1
    # Offsets up to +-3 px push many taps across the border and off whole pixels.
    offset = (torch.rand(2, 2 * dg * 9, h_out, w_out, generator=gen) - 0.5) * 6
    mask = torch.rand(2, dg * 9, h_out, w_out, generator=gen)
    with torch.set_grad_enabled(grad):
        got = modulated_deform_conv2d(
            x, offset, mask, weight, bias, stride, padding, dilation, groups, dg, backend="torch"
        )
    want = _reference(x, offset, mask, weight, bias, stride, padding, dilation, groups, dg)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


def test_gradients_flow_to_input_offset_mask_and_weight():
    layer = ModulatedDeformConv2d(4, 4, 3, padding=1, deform_groups=2)
    x = torch.randn(1, 4, 6, 6, requires_grad=True)
    offset = torch.randn(1, layer.offset_channels, 6, 6, requires_grad=True)
    mask = torch.rand(1, layer.offset_channels // 2, 6, 6, requires_grad=True)
    layer(x, offset, mask).square().sum().backward()
    for t in (x, offset, mask, layer.weight):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_bad_offset_shape_is_named():
    layer = ModulatedDeformConv2d(4, 4, 3, padding=1, deform_groups=2)
    x = torch.randn(1, 4, 6, 6)
    with pytest.raises(ValueError, match="offset must be"):
        layer(x, torch.zeros(1, 18, 6, 6), torch.ones(1, 18, 6, 6))
    with pytest.raises(ValueError, match="not divisible"):
        ModulatedDeformConv2d(6, 4, 3, deform_groups=4)


@pytest.mark.skipif(tv_kernel() is None, reason="torchvision not importable here")
def test_torchvision_kernel_agrees_with_plain_torch(device):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 8, 7, 7, generator=gen).to(device)
    weight = torch.randn(8, 8, 3, 3, generator=gen).to(device)
    offset = torch.randn(1, 2 * 4 * 9, 7, 7, generator=gen).to(device)
    mask = torch.rand(1, 4 * 9, 7, 7, generator=gen).to(device)
    args = (x, offset, mask, weight, None, 1, 1, 1, 1, 4)
    torch.testing.assert_close(
        modulated_deform_conv2d(*args, backend="torchvision"),
        modulated_deform_conv2d(*args, backend="torch"),
        rtol=1e-4,
        atol=1e-4,
    )


def test_half_precision_input_samples_at_full_precision():
    """bf16 positions would snap to 2-px steps past 256 px; sampling must stay float32."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 4, 300, generator=gen)
    weight = torch.randn(2, 2, 3, 3, generator=gen)
    offset = torch.full((1, 18, 4, 300), 0.37)
    mask = torch.ones(1, 9, 4, 300)
    want = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1, backend="torch")
    got = modulated_deform_conv2d(
        x.bfloat16(),
        offset.bfloat16(),
        mask.bfloat16(),
        weight.bfloat16(),
        None,
        1,
        1,
        backend="torch",
    )
    assert got.dtype == torch.bfloat16
    # Only the bf16 rounding of inputs and output remains: a few percent, not a pixel shift.
    err = (got.float() - want).abs()[..., 250:]
    assert err.mean() < 0.05 * want.abs()[..., 250:].mean()


def test_channels_last_offsets_and_masks_as_a_dcn_pack_makes_them_give_the_same_values():
    """A DCN pack slices offsets and masks out of one channels-last conv output; the
    inference path takes that layout as it comes (copying only a band's mask) and gives
    the values of (N, C, H, W) inputs bit for bit, and the per-pixel reference's."""
    gen = torch.Generator().manual_seed(5)
    dg, c = 2, 4
    x = torch.randn(2, c, 9, 7, generator=gen).contiguous(memory_format=torch.channels_last)
    raw = torch.randn(2, 3 * dg * 9, 9, 7, generator=gen) * 2
    raw = raw.contiguous(memory_format=torch.channels_last)
    offset, mask = raw[:, : 2 * dg * 9], torch.sigmoid(raw[:, 2 * dg * 9 :])
    assert not mask.is_contiguous() and not offset.is_contiguous()
    weight = torch.randn(c, c, 3, 3, generator=gen)
    bias = torch.zeros(c)
    args = (weight, bias, 1, 1, 1, 1, dg)
    with torch.no_grad():
        got = modulated_deform_conv2d(x, offset, mask, *args, backend="torch")
        plain = modulated_deform_conv2d(
            x.contiguous(), offset.contiguous(), mask.contiguous(), *args, backend="torch"
        )
    assert torch.equal(got, plain)
    want = _reference(x, offset, mask, weight, bias, 1, 1, 1, 1, dg)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)
