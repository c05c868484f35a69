"""Motion-compensated Phantom frames: flow, warping, and the time fraction read from the
Shimadzu frame, checked against scenes whose true motion is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xfusion_models.metrics import psnr
from xfusion_models.ops import PhantomMotionCache, dense_flow, phantom_at_t, warp


def _texture(shape=(96, 128), seed=0) -> np.ndarray:
    """Smooth random texture with fine detail, values in [0.1, 0.9]."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((shape[0] // 4, shape[1] // 4)).astype(np.float32)
    img = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    img = cv2.GaussianBlur(img, (0, 0), 1.2)
    return (0.1 + 0.8 * (img - img.min()) / (img.max() - img.min())).astype(np.float32)


def _shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img moved by (dx, dy): out(y, x) = img(y - dy, x - dx)."""
    import cv2

    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[::-1], flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT101)  # fmt: skip


def _window(tau: float, shift=(6.0, -4.0), seed=0):
    """Phantom frames at 0 and 1 of a uniformly moving texture, truth and Shimadzu at tau."""
    base = _texture(seed=seed)
    frames = [_shifted(base, s * shift[0], s * shift[1]) for s in (0.0, 1.0, tau)]
    hq = torch.from_numpy(np.stack(frames[:2]))[None, :, None]
    truth = torch.from_numpy(frames[2])[None, None]
    lq = F.avg_pool2d(truth, 4)
    return hq, lq, frames[2]


def test_warp_with_zero_and_integer_flow():
    img = torch.rand(2, 1, 12, 16)
    flow = torch.zeros(2, 2, 12, 16)
    torch.testing.assert_close(warp(img, flow), img, rtol=0, atol=1e-5)
    flow[:, 0] = 3.0  # sample 3 columns to the right
    flow[:, 1] = -2.0  # and 2 rows up
    out = warp(img, flow)
    torch.testing.assert_close(out[..., 2:, :-3], img[..., :-2, 3:], rtol=0, atol=1e-5)


def test_dense_flow_finds_a_known_translation():
    base = _texture()
    f01, f10 = dense_flow(base, _shifted(base, 2.5, -1.5))
    inner = (slice(None), slice(16, -16), slice(16, -16))
    assert f01.shape == f10.shape == (2, 96, 128)
    assert np.median(f01[inner][0]) == pytest.approx(2.5, abs=0.15)
    assert np.median(f01[inner][1]) == pytest.approx(-1.5, abs=0.15)
    assert np.median(f10[inner][0]) == pytest.approx(-2.5, abs=0.15)
    with pytest.raises(ValueError, match="two \\(H, W\\) frames of one shape"):
        dense_flow(base, base[:-4])


@pytest.mark.parametrize("tau", [0.15, 0.5, 0.8])
def test_tau_is_read_from_the_shimadzu_frame_and_the_warp_beats_both_frames(tau):
    hq, lq, truth = _window(tau)
    at_t = phantom_at_t(hq, lq)
    assert at_t.tau.shape == (1,)
    assert at_t.tau.item() == pytest.approx(tau, abs=0.03)
    blend = at_t.blend()[0, 0].clamp(0, 1).numpy()
    nearest = hq[0, 0 if tau < 0.5 else 1, 0].numpy()
    inner = (slice(16, -16), slice(16, -16))
    assert psnr(blend[inner], truth[inner]) > psnr(nearest[inner], truth[inner]) + 8.0
    assert psnr(blend[inner], truth[inner]) > 38.0


def test_tau_ignores_camera_gain_and_offset_and_can_be_given():
    hq, lq, _ = _window(0.35, seed=1)
    plain = phantom_at_t(hq, lq).tau
    scaled = phantom_at_t(hq, 0.4 * lq + 0.2).tau
    torch.testing.assert_close(plain, scaled, rtol=0, atol=0.021)
    given = phantom_at_t(hq, lq, tau=torch.tensor([0.7]))
    assert given.tau.item() == pytest.approx(0.7)
    assert not torch.equal(given.before, phantom_at_t(hq, lq).before)


def test_batch_windows_are_independent():
    (hq_a, lq_a, _), (hq_b, lq_b, _) = _window(0.2), _window(0.9, shift=(-3.0, 5.0), seed=2)
    both = phantom_at_t(torch.cat((hq_a, hq_b)), torch.cat((lq_a, lq_b)))
    one = phantom_at_t(hq_b, lq_b)
    assert both.tau[1] == one.tau[0]
    torch.testing.assert_close(both.after[1:], one.after, rtol=0, atol=1e-6)


def test_bad_shapes_name_the_tensor():
    hq, lq, _ = _window(0.5)
    with pytest.raises(ValueError, match=r"hr_frames must be \(B,2,1,H,W\)"):
        phantom_at_t(hq[:, :1], lq)
    with pytest.raises(ValueError, match="lr_centre must be"):
        phantom_at_t(hq, lq[:, :, :-1])


def test_flow_is_computed_once_per_phantom_pair_by_the_callers_cache(monkeypatch):
    import xfusion_models.ops._phantom_motion as motion

    calls = []
    real = motion.dense_flow
    monkeypatch.setattr(motion, "dense_flow", lambda a, b: calls.append(1) or real(a, b))
    cache = PhantomMotionCache(size=2)
    hq, lq, _ = _window(0.3, seed=3)
    first = phantom_at_t(hq, lq, cache=cache)
    lq_later = F.avg_pool2d(torch.from_numpy(_window(0.6, seed=3)[2])[None, None], 4)
    again = phantom_at_t(hq, lq_later, cache=cache)
    assert len(calls) == 1  # two windows between one Phantom pair: one flow
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    assert again.tau.item() > first.tau.item() + 0.2
    for seed in (4, 5):  # two other pairs push the first out of a 2-entry cache
        phantom_at_t(*_window(0.5, seed=seed)[:2], cache=cache)
    assert len(cache) == 2
    replay = phantom_at_t(hq, lq, cache=cache)
    assert len(calls) == 4 and cache.misses == 4
    torch.testing.assert_close(replay.before, first.before, rtol=0, atol=0)


def test_the_pair_looked_up_last_is_recognised_in_place_without_a_digest(monkeypatch):
    """Consecutive windows share their Phantom pair: a tensor equal to the last one is a
    hit found by comparing it where it lives (on a GPU: no copy to the host, no ~15 ms
    digest of a full-size pair per window); anything else goes by the bytes' digest."""
    import hashlib

    import xfusion_models.ops._phantom_motion as motion

    digests = []
    real = hashlib.blake2b
    monkeypatch.setattr(
        motion.hashlib, "blake2b", lambda *a, **k: digests.append(1) or real(*a, **k)
    )
    cache = PhantomMotionCache(size=2)
    hq, lq, _ = _window(0.3, seed=3)
    pair = hq[0, :, 0]
    first, _ = cache.lookup(pair)
    assert (len(digests), cache.misses) == (1, 1)
    again, _ = cache.lookup(pair.clone())  # a new tensor, equal values
    assert (len(digests), cache.hits) == (1, 1)
    assert all(a is b for a, b in zip(first, again))
    changed = pair.clone()
    changed[1, 5, 5] += 0.25
    other, _ = cache.lookup(changed)
    assert (len(digests), cache.misses) == (2, 2)
    assert not np.array_equal(other[0], first[0])
    back, _ = cache.lookup(pair)  # not the last one any more: found by its digest
    assert (len(digests), cache.hits, cache.misses) == (3, 2, 2)
    assert all(a is b for a, b in zip(first, back))
    array_hit, _ = cache.lookup(pair.numpy())  # arrays always go by the digest
    assert (len(digests), cache.hits) == (4, 3)
    assert all(a is b for a, b in zip(first, array_hit))
    for seed in (4, 5):  # arrays evict the tensor looked up last from a 2-pair cache
        cache.lookup(_window(0.5, seed=seed)[0][0, :, 0].numpy())
    assert cache.misses == 4
    evicted, _ = cache.lookup(pair)
    assert cache.misses == 5  # recomputed, not taken from a stale reference
    np.testing.assert_array_equal(evicted[0], first[0])


def test_without_a_cache_nothing_is_kept_and_the_result_is_the_same(monkeypatch):
    import xfusion_models.ops._phantom_motion as motion

    calls = []
    real = motion.dense_flow
    monkeypatch.setattr(motion, "dense_flow", lambda a, b: calls.append(1) or real(a, b))
    hq, lq, _ = _window(0.3, seed=3)
    cached = phantom_at_t(hq, lq, cache=PhantomMotionCache())
    plain = [phantom_at_t(hq, lq) for _ in range(2)]
    assert len(calls) == 3  # one per call without a cache: no hidden process-wide state
    for field in ("before", "after", "tau", "before_error", "after_error"):
        torch.testing.assert_close(getattr(plain[1], field), getattr(cached, field), rtol=0, atol=0)
    assert not hasattr(motion, "_FLOWS")
    with pytest.raises(ValueError, match="at least one pair"):
        PhantomMotionCache(size=0)


def test_the_one_warp_serves_calibration_and_carries_flow_gradients():
    """Calibration trains a flow net through ``warp``: the flow must get gradients, and the
    calibration package must call this warp, not a copy with other conventions."""
    import xfusion_models.calibration as calibration
    import xfusion_models.calibration._train as calibration_train
    import xfusion_models.calibration._virtual_pairs as calibration_pairs

    assert calibration.warp is warp
    assert calibration_train.warp is warp and calibration_pairs.warp is warp
    img = torch.rand(1, 1, 12, 16)
    flow = torch.full((1, 2, 12, 16), 0.25, requires_grad=True)
    warp(img, flow).sum().backward()
    assert flow.grad is not None and flow.grad.abs().sum() > 0


def test_reduced_precision_inputs_are_searched_in_float32():
    hq, lq, truth = _window(0.4, seed=6)
    full = phantom_at_t(hq, lq)
    half = phantom_at_t(hq.bfloat16(), lq.bfloat16())
    assert half.before.dtype == torch.bfloat16 and half.tau.dtype == torch.float32
    assert half.tau.item() == pytest.approx(full.tau.item(), abs=0.021)
    inner = (slice(16, -16), slice(16, -16))
    assert psnr(half.blend()[0, 0].float().numpy()[inner], truth[inner]) > 36.0


def test_a_bf16_autocast_does_not_reach_the_search_or_the_warps():
    """A model run under autocast (``--precision bf16``) gets the float32 result: the
    tau search's grid products and correlation are matrix products, which autocast
    would otherwise run in 16 bits."""
    from xfusion_models.ops._tau_search import TauViews, search_tau

    hq, lq, _ = _window(0.37, seed=8)
    full = phantom_at_t(hq, lq)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = phantom_at_t(hq, lq, cache=PhantomMotionCache())
    for field in ("tau", "before", "after", "before_error"):
        torch.testing.assert_close(getattr(under, field), getattr(full, field), rtol=0, atol=0)
    # the views the search compares, on a sensor-sized pair: 16-bit grids would move
    # samples by up to ~1.5 px there
    gen = torch.Generator().manual_seed(3)
    pair = torch.rand(2, 256, 384, generator=gen)
    f01, f10 = torch.randn(2, 2, 256, 384, generator=gen)
    frame = F.avg_pool2d(pair[:1], 4)
    memos = [TauViews(), TauViews()]
    search_tau(pair, f01, f10, frame, memos[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        search_tau(pair, f01, f10, frame, memos[1])
    assert memos[0].views.keys() == memos[1].views.keys()
    for key, views in memos[0].views.items():
        torch.testing.assert_close(memos[1].views[key], views, rtol=0, atol=0)


def test_hot_pixels_do_not_spoil_the_flow():
    base = _texture()
    moved = _shifted(base, 2.5, -1.5)
    base[10, 10] = moved[50, 70] = 40.0  # zingers far above the image's range
    f01, _ = dense_flow(base, moved)
    inner = (slice(None), slice(16, -16), slice(16, -16))
    # mean error per pixel, measured 0.023 / 0.033 px (as without zingers); a min/max
    # stretch squeezes the texture into a few grey levels and gives 0.107 / 0.075 px
    assert np.abs(f01[inner][0] - 2.5).mean() < 0.05
    assert np.abs(f01[inner][1] + 1.5).mean() < 0.05


def test_round_trip_error_marks_what_the_flow_cannot_follow():
    hq, lq, _ = _window(0.4)
    smooth = phantom_at_t(hq, lq)
    assert smooth.before_error is not None and smooth.after_error is not None
    assert smooth.before_error.shape == smooth.before.shape
    assert float(smooth.before_error[..., 16:-16, 16:-16].median()) < 0.05
    appeared = hq.clone()
    appeared[0, 1, 0, 40:60, 50:70] = 0.95  # a bright patch only in the frame after
    errors = phantom_at_t(appeared, lq).after_error[0, 0]
    assert float(errors[40:60, 50:70].mean()) > 3 * float(errors[:30].mean())


def test_a_pairs_tau_views_are_memoised_and_give_the_same_tau(monkeypatch):
    """Windows between one Phantom pair share the pair's warped views at each candidate
    tau; only the correlation with each Shimadzu frame is per window. The memo is kept
    for the latest pair only, and what it gives equals what is computed afresh."""
    import xfusion_models.ops._tau_search as search

    made: list[float] = []
    real = search._PairGrids.views
    monkeypatch.setattr(
        search._PairGrids, "views", lambda self, t, s: made.extend(t.tolist()) or real(self, t, s)
    )
    cache = PhantomMotionCache()
    hq = _window(0.0, seed=6)[0]
    taus = (0.12, 0.14, 0.5, 0.86)
    frames = [F.avg_pool2d(torch.from_numpy(_window(t, seed=6)[2])[None, None], 4) for t in taus]
    memoised = [phantom_at_t(hq, lq, cache=cache) for lq in frames]
    by_memo = list(made)
    fresh = [phantom_at_t(hq, lq) for lq in frames]
    for a, b in zip(memoised, fresh):
        torch.testing.assert_close(a.tau, b.tau, rtol=0, atol=0)
        torch.testing.assert_close(a.before, b.before, rtol=0, atol=0)
    got = [round(r.tau.item(), 2) for r in memoised]
    assert got == pytest.approx(taus, abs=0.03)
    # fresh: 11 coarse views and 8 fine ones per window (the fine pass shares three
    # coarse ones); memoised: each tau of the 0.02 lattice once a pair (0.1 serves 0.12
    # and 0.14; its fine pass and 0.5's and 0.9's each add 8 views)
    assert len(made) - len(by_memo) == 19 * len(taus)
    assert len(set(by_memo)) == len(by_memo) == 11 + 3 * 8
    other = _window(0.4, seed=7)[:2]
    phantom_at_t(*other, cache=cache)
    made.clear()
    phantom_at_t(hq, frames[0], cache=cache)
    assert len(made) == 11 + 8  # the first pair's memo went when another pair came
