"""Measurement consistency: a supported proposal passes, a contradicted one is overruled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xfusion_models as xm
from xfusion_models.archs._consistency import ShimadzuConsistency
from xfusion_models.ops import measure, residual_in_noise_units

PHOTONS = 1000.0


def _scene(seed: int = 0, size: int = 96) -> torch.Tensor:
    """A smooth textured truth (1, 1, size, size) in [0.2, 0.9]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.2, 0.9, (size // 8, size // 8)).astype(np.float32)
    img = torch.from_numpy(coarse)[None, None]
    img = torch.nn.functional.interpolate(img, size=(size, size), mode="bicubic")
    return img.clamp(0.2, 0.9)


def _shimadzu(truth: torch.Tensor, seed: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    clean = measure(truth, 4).numpy()
    return torch.from_numpy((rng.poisson(clean * PHOTONS) / PHOTONS).astype(np.float32))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / (a - b).square().mean()))


def test_a_supported_proposal_passes_almost_unchanged():
    truth = _scene()
    out = ShimadzuConsistency()(truth, _shimadzu(truth))
    assert _psnr(out, truth) > 45.0  # noise in S is not copied into a supported frame
    assert float((out - truth).abs().max()) < 0.05


def test_a_contradicted_state_is_overruled_and_the_frame_measures_back():
    truth = _scene()
    wrong = truth.clone()
    wrong[..., 32:64, 32:64] -= 0.25  # a dark blob the Shimadzu did not see
    lr = _shimadzu(truth)
    before = residual_in_noise_units(wrong, lr, 4)
    out = ShimadzuConsistency()(wrong, lr)
    after = residual_in_noise_units(out, lr, 4)
    blob = (slice(None), slice(None), slice(8, 16), slice(8, 16))
    assert float(before[blob].abs().mean()) > 5.0
    assert float(after[blob].abs().mean()) < 2.0  # within noise where it was contradicted
    region = (slice(None), slice(None), slice(32, 64), slice(32, 64))
    assert _psnr(out[region], truth[region]) > _psnr(wrong[region], truth[region]) + 10.0
    outside = (slice(None), slice(None), slice(72, 96), slice(0, 96))
    assert float((out[outside] - wrong[outside]).abs().max()) < 0.05


def test_tiny_and_noise_free_frames_stay_finite():
    truth = _scene(size=8)
    out = ShimadzuConsistency()(truth, measure(truth, 4))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("flag", [False, True])
def test_consistency_adds_no_parameters_and_is_recorded_only_when_on(flag):
    plain = xm.edvr_stf("tiny")
    model = xm.edvr_stf("tiny", consistency=flag)
    assert set(model.state_dict()) == set(plain.state_dict())
    assert ("consistency" in model.config) is flag
    model.load_state_dict(plain.state_dict())
    # Phantom frames far darker than the Shimadzu saw: whatever the random weights, the
    # output contradicts the measurement (random frames sometimes agreed within noise)
    hq = 0.1 * torch.rand(1, 2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    lq = torch.full((1, 3, 1, 8, 8), 0.9)
    with torch.no_grad():
        same = torch.equal(model(lq, hq), plain(lq, hq))
    assert same is not flag
