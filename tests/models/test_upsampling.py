"""Bicubic upsampling by an integer ratio: torch's values, gradients, and its users."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xfusion_models.ops import bicubic_upsample


def _torchs(x: torch.Tensor, ratio: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=ratio, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("ratio", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 1, 2, 3), (2, 3, 5, 7), (1, 1, 16, 24)])
def test_values_equal_torchs_bicubic_for_every_ratio_and_tiny_sides(device, ratio, shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(ratio)).to(device)
    got = bicubic_upsample(x, ratio)
    assert got.shape == (*shape[:2], shape[2] * ratio, shape[3] * ratio)
    torch.testing.assert_close(got, _torchs(x, ratio), rtol=0, atol=2e-6)


def test_edges_repeat_the_border_as_torch_does():
    """A step at the border: weights reaching past the edge read the edge pixel."""
    x = torch.zeros(1, 1, 4, 4)
    x[..., 0, :] = 1.0
    torch.testing.assert_close(bicubic_upsample(x, 4), _torchs(x, 4), rtol=0, atol=2e-6)


def test_gradients_match_torchs_even_after_a_first_call_under_inference_mode():
    with torch.inference_mode():  # the kernel is first made here, as at a beamline
        bicubic_upsample(torch.rand(1, 1, 3, 3), 4)
    x = torch.rand(2, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    weights = torch.rand(2, 1, 20, 24, dtype=torch.float64)
    (bicubic_upsample(x, 4) * weights).sum().backward()
    (_torchs(y, 4) * weights).sum().backward()
    assert x.grad is not None and y.grad is not None
    torch.testing.assert_close(x.grad, y.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ratio", [0, -4, 2.5])
def test_a_ratio_that_is_not_a_positive_integer_is_refused(ratio):
    with pytest.raises(ValueError, match="integer ratio"):
        bicubic_upsample(torch.rand(1, 1, 4, 4), ratio)


def test_a_frame_without_channels_is_refused():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        bicubic_upsample(torch.rand(4, 4), 4)


def test_the_consistency_step_upsamples_with_it(monkeypatch):
    import xfusion_models.archs._consistency as consistency

    calls = []

    def counting(x, ratio):
        calls.append(ratio)
        return _torchs(x, ratio)

    monkeypatch.setattr(consistency, "bicubic_upsample", counting)
    step = consistency.ShimadzuConsistency(iterations=2)
    with torch.no_grad():
        step(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 4, 4))
    assert calls == [4] * 5  # Shimadzu-only: 1 + 2 steps; projection: 2 steps
