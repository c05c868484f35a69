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


def _textured(seed: int = 0, size: int = 96) -> torch.Tensor:
    """``_scene`` with fine detail (a 2-px checker of +-0.05) the Shimadzu cannot resolve."""
    truth = _scene(seed, size)
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return truth + 0.05 * (((rows // 2 + cols // 2) % 2) * 2 - 1).float()


@pytest.mark.parametrize("gain", [0.8, 1.25])
def test_level_follows_a_beam_the_phantom_did_not_see_and_keeps_the_detail(gain):
    """The Shimadzu frame lit ``gain`` times as brightly as the proposal (beam flicker):
    without step 0 the disagreement overrules the whole frame and its detail is lost;
    with it, the brightness follows the Shimadzu and the detail stays."""
    lit = _textured()
    proposal = lit / gain  # lit as the Phantom frames were
    lr = _shimadzu(lit)
    plain = ShimadzuConsistency()(proposal, lr)
    levelled = ShimadzuConsistency(level=True)(proposal, lr)
    assert _psnr(levelled, lit) > _psnr(plain, lit) + 6.0
    assert _psnr(levelled, lit) > 40.0
    assert float(residual_in_noise_units(levelled, lr, 4).square().mean().sqrt()) < 1.5
    # the detail within a Shimadzu pixel keeps its contrast (the fallback blurs it away)
    kept = float(_detail(levelled).std() / _detail(lit).std())
    assert 0.8 < kept < 1.2
    assert float(_detail(plain).std() / _detail(lit).std()) < kept


def _detail(image: torch.Tensor) -> torch.Tensor:
    """What a Shimadzu pixel cannot see: the frame minus its 4x4 block means."""
    blocks = torch.nn.functional.avg_pool2d(image, 4)
    return image - blocks.repeat_interleave(4, -1).repeat_interleave(4, -2)


def test_level_leaves_no_halo_around_an_event_the_proposal_lacks():
    """Spatter the proposal lacks (a 2x2-Shimadzu-px dark spot) is steps 1-2's business:
    the regional level must not spread its residual over the correct surroundings."""
    truth = _scene(3)
    proposal = truth.clone()
    truth = truth.clone()
    truth[..., 40:48, 40:48] -= 0.15
    lr = _shimadzu(truth)
    plain = ShimadzuConsistency()(proposal, lr)
    levelled = ShimadzuConsistency(level=True)(proposal, lr)
    ring = torch.zeros_like(truth, dtype=torch.bool)
    ring[..., 20:68, 20:68] = True
    ring[..., 32:56, 32:56] = False  # 3 Shimadzu px and more from the spot
    halo = float((levelled - plain)[ring].abs().max())
    assert halo < 0.005, f"the level step moved the surroundings by {halo:.4f}"
    spot = (slice(None), slice(None), slice(40, 48), slice(40, 48))
    assert float((levelled[spot] - truth[spot]).abs().mean()) < 0.1


def test_level_leaves_a_supported_proposal_alone_and_handles_black_regions():
    truth = _textured(5)
    lr = _shimadzu(truth)
    plain = ShimadzuConsistency()(truth, lr)
    levelled = ShimadzuConsistency(level=True)(truth, lr)
    assert float((levelled - plain).abs().max()) < 0.01
    # a black region (no gain can brighten it) the Shimadzu sees lit: an offset does
    black = torch.zeros_like(truth)
    out = ShimadzuConsistency(level=True)(black, _shimadzu(torch.full_like(truth, 0.3)))
    assert torch.isfinite(out).all() and abs(float(out.mean()) - 0.3) < 0.02


@pytest.mark.parametrize("step", ["level", "shift"])
def test_the_level_and_position_steps_belong_to_consistency_and_are_recorded_when_on(step):
    flag = f"consistency_{step}"
    with pytest.raises(ValueError, match=f"{flag} is a step of consistency"):
        xm.edvr_stf("tiny", **{flag: True})
    assert flag not in xm.edvr_stf("tiny", consistency=True).config
    model = xm.edvr_stf("tiny", consistency=True, **{flag: True})
    assert model.config[flag] is True
    assert model.consistency is not None and getattr(model.consistency, step)


def _moved(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    from xfusion_models.ops import translate

    return translate(x, torch.tensor([dy]), torch.tensor([dx]))


@pytest.mark.parametrize("move", [(2.0, -2.0), (-3.0, 1.0)])
def test_position_follows_a_field_the_phantom_did_not_see_moved(move):
    """The sample shook between Phantom frames: the Shimadzu saw it ``move`` fused-grid
    pixels (half to three quarters of a Shimadzu pixel) from where the proposal has it."""
    proposal = _textured(7)
    truth = _moved(proposal, *move)
    lr = _shimadzu(truth)
    plain = ShimadzuConsistency(level=True)(proposal, lr)
    moved = ShimadzuConsistency(level=True, shift=True)(proposal, lr)
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    assert _psnr(moved[inner], truth[inner]) > _psnr(plain[inner], truth[inner]) + 5.0
    assert _psnr(moved[inner], truth[inner]) > 35.0


def test_position_leaves_a_frame_in_place_unless_a_move_fits_beyond_noise():
    truth = _textured(8)
    lr = _shimadzu(truth)
    assert torch.equal(ShimadzuConsistency(shift=True)(truth, lr), ShimadzuConsistency()(truth, lr))
    # a local event (a dark spot the proposal lacks) is no reason to move the whole frame
    spotted = truth.clone()
    spotted[..., 40:48, 40:48] -= 0.15
    lr = _shimadzu(spotted)
    assert torch.equal(ShimadzuConsistency(shift=True)(truth, lr), ShimadzuConsistency()(truth, lr))


def test_position_takes_the_runs_registration_residual_as_the_place_of_no_motion():
    """The Shimadzu sees every frame of the run half a Shimadzu pixel off (the calibration's
    residual, measured at the simultaneous frames). A frame where the sample stood still
    stays where the Phantom has it; a shake beyond the residual moves it by the shake
    alone; with the residual not measured, nothing moves."""
    from xfusion_models.ops import ShimadzuMeasurement

    truth = _textured(7)
    residual = (0.5, -0.5)  # Shimadzu px
    fused = (2.0, -2.0)  # the same, in fused-grid px
    step = ShimadzuConsistency(shift=True)
    measured = ShimadzuMeasurement(offset=residual)
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))

    def position(lr: torch.Tensor, shimadzu: ShimadzuMeasurement) -> torch.Tensor:
        return step.match_position(truth, lr, shimadzu.sigma(lr), shimadzu)

    still = _shimadzu(_moved(truth, *fused))
    assert torch.equal(position(still, measured), truth)
    # nor by the error of that measurement (0.07 px at worst where it can be made)
    slightly_off = ShimadzuMeasurement(offset=(0.5 + 0.06, -0.5 + 0.04))
    assert torch.equal(position(still, slightly_off), truth)
    # without the reference the step follows the residual, away from where the sample is
    followed = position(still, ShimadzuMeasurement())
    assert _psnr(followed[inner], truth[inner]) < 30.0
    shaken_truth = _moved(truth, -3.0, 1.0)
    shaken = _shimadzu(_moved(shaken_truth, *fused))
    assert _psnr(position(shaken, measured)[inner], shaken_truth[inner]) > 35.0
    unknown = ShimadzuMeasurement(offset=(float("nan"), float("nan")))
    assert torch.equal(position(shaken, unknown), truth)
    # a registration pixels off is the run check's business (it flags the run), not a move's
    assert torch.equal(position(shaken, ShimadzuMeasurement(offset=(2.5, 0.0))), truth)


def test_a_registration_residual_beyond_its_accuracy_is_measured_with_not_overruled():
    """Every Shimadzu frame of the run sees the field half a Shimadzu pixel off. Compared
    on the registered grid, the proposal (where the sample is) would contradict it at
    every edge and be rebuilt where the Shimadzu misplaced it; measured where the
    Shimadzu saw it, it passes. A residual within what its measurement can tell is left
    to the registered grid."""
    from xfusion_models.ops import OFFSET_ACCURACY, ShimadzuMeasurement

    truth = _textured(7)
    lr = _shimadzu(_moved(truth, 2.0, -2.0))  # (0.5, -0.5) Shimadzu px
    step = ShimadzuConsistency(level=True, shift=True)
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    measured = ShimadzuMeasurement(offset=(0.5, -0.5))
    unknown = ShimadzuMeasurement(offset=(float("nan"), float("nan")))
    kept, rebuilt = step(truth, lr, measured), step(truth, lr, unknown)
    assert _psnr(kept[inner], truth[inner]) > _psnr(rebuilt[inner], truth[inner]) + 10.0
    assert _psnr(kept[inner], truth[inner]) > 40.0
    residual = measured.residual(kept, lr)[..., 3:-3, 3:-3]
    assert float(residual.square().mean().sqrt()) < 1.5  # noise, where it was measured
    small = ShimadzuMeasurement(offset=(0.6 * OFFSET_ACCURACY, 0.6 * OFFSET_ACCURACY))
    assert small.modelled_offset == (0.0, 0.0)
    assert torch.equal(small.measure(truth), ShimadzuMeasurement().measure(truth))
