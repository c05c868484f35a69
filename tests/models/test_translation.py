"""Whole-frame sub-pixel translation and its least-squares fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xfusion_models.ops import estimate_translation, measure, translate


def _texture(size: int = 64, seed: int = 0, cell: int = 4) -> torch.Tensor:
    """Random values every ``cell`` pixels, bicubic in between: detail of that scale."""
    rng = np.random.default_rng(seed)
    grid = (size // cell, size // cell)
    coarse = torch.from_numpy(rng.uniform(0.2, 0.9, grid).astype(np.float32))
    return torch.nn.functional.interpolate(coarse[None, None], size=(size, size), mode="bicubic")


def test_translate_moves_content_by_whole_pixels_exactly():
    x = _texture()
    moved = translate(x, torch.tensor([2.0]), torch.tensor([-3.0]))
    torch.testing.assert_close(moved[..., 2:, :-3], x[..., :-2, 3:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("move", [(0.3, -0.45), (-1.2, 0.7), (0.0, 0.0)])
def test_the_fit_finds_a_sub_pixel_move_of_a_noisy_frame(move):
    x = _texture(seed=1)
    truth = torch.tensor([move[0]]), torch.tensor([move[1]])
    rng = np.random.default_rng(2)
    target = translate(x, *truth) + torch.from_numpy(
        rng.normal(0.0, 0.01, x.shape).astype(np.float32)
    )
    found = estimate_translation(
        lambda m: translate(x, m[:, 0], m[:, 1]), target, torch.full_like(x, 1e4), steps=8
    )
    assert found.shape == (1, 2)
    np.testing.assert_allclose(found[0].numpy(), move, atol=0.03)


def test_a_flat_frame_gives_no_move_and_the_move_is_bounded():
    flat = torch.full((2, 1, 16, 16), 0.5)
    found = estimate_translation(
        lambda m: translate(flat, m[:, 0], m[:, 1]), flat + 0.1, torch.ones_like(flat)
    )
    assert torch.equal(found, torch.zeros(2, 2))
    x = _texture(seed=3)
    far = translate(x, torch.tensor([9.0]), torch.tensor([9.0]))
    found = estimate_translation(
        lambda m: translate(x, m[:, 0], m[:, 1]), far, torch.ones_like(x), max_px=1.5
    )
    assert float(found.abs().max()) <= 1.5


def test_a_measured_frame_moves_like_its_source():
    """Moving the frame by 4r pixels and measuring it at ratio 4 moves the measurement by
    r pixels: the fit on measured frames speaks the Shimadzu's pixels."""
    x = _texture(96, seed=4, cell=12)  # what a Shimadzu pixel (4) can still resolve
    shifted = measure(translate(x, torch.tensor([2.0]), torch.tensor([-2.0])), 4)
    found = estimate_translation(
        lambda m: measure(translate(x, 4 * m[:, 0], 4 * m[:, 1]), 4),
        shifted,
        torch.full_like(shifted, 1e4),
        steps=6,
    )
    np.testing.assert_allclose(found[0].numpy(), (0.5, -0.5), atol=0.03)
