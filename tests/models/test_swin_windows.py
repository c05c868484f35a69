"""SWIN-XVR specifics: shifted windows do not leak across the wrap-around, padding works."""

from __future__ import annotations

import torch

import xfusion_models as xm
from xfusion_models.archs._swin3d import SwinBlock3D, effective_window, shifted_window_mask


def _shifted_block_output(x: torch.Tensor, masked: bool) -> torch.Tensor:
    torch.manual_seed(0)
    block = SwinBlock3D(dim=6, num_heads=2, window=(5, 4, 4), mlp_ratio=2.0, drop_path=0.0)
    size = tuple(x.shape[1:4])
    window, shift = effective_window(size, (5, 4, 4))
    assert shift == (0, 2, 2)
    mask = shifted_window_mask(size, window, shift, x.device) if masked else None
    if not masked:  # an all-zero mask: attention runs but nothing is blocked
        mask = torch.zeros_like(shifted_window_mask(size, window, shift, x.device))
    with torch.no_grad():
        return block(x, window, shift, mask)


def test_shifted_window_mask_stops_wraparound_mixing():
    """Rolling by -2 puts rows 0-1 next to rows 6-7; the mask must keep them apart."""
    x = torch.randn(1, 5, 8, 8, 6)
    bumped = x.clone()
    bumped[:, :, 0] += 3.0 * torch.randn(1, 5, 8, 6)  # not constant: LayerNorm would undo that
    last_rows = slice(6, 8)
    masked = _shifted_block_output(bumped, True) - _shifted_block_output(x, True)
    assert masked[:, :, last_rows].abs().max() < 1e-5
    unmasked = _shifted_block_output(bumped, False) - _shifted_block_output(x, False)
    assert unmasked[:, :, last_rows].abs().max() > 1e-3  # the test can tell the difference


def test_window_and_shift_shrink_to_small_stacks():
    assert effective_window((5, 8, 16), (5, 8, 8)) == ((5, 8, 8), (0, 0, 4))
    assert effective_window((5, 16, 16), (8, 8, 8)) == ((5, 8, 8), (0, 4, 4))


def test_sizes_that_are_not_window_multiples_are_padded(make_window):
    torch.manual_seed(0)
    model = xm.swin_xvr("tiny", window_size=[5, 8, 8]).eval()
    lq, hq = make_window(1, 12, 20)
    with torch.no_grad():
        out = model(lq, hq)
        lr = model.encode_lr(lq[0]).unsqueeze(0)
        hr = model.encode_hr(hq[0]).unsqueeze(0)
        cached = model.fuse(lr, hr, lq[:, 1]).image
    assert out.shape == (1, 1, 48, 80) and torch.isfinite(out).all()
    torch.testing.assert_close(cached, out, rtol=1e-5, atol=1e-5)


def test_drop_path_is_identity_in_eval_and_random_in_training(make_window):
    torch.manual_seed(0)
    model = xm.swin_xvr("tiny", drop_path_rate=0.5)
    lq, hq = make_window(2, 8, 8)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(lq, hq), model(lq, hq))
        model.train()
        assert not torch.allclose(model(lq, hq), model(lq, hq))
