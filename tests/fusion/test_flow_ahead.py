"""Work a GPU would otherwise wait for, moved out of its way: the next Phantom pair's
motion starts in the motion cache's thread while the model fuses the windows before it,
and a Phantom pair is copied to the device once, not once a window. Frames unchanged."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from xfusion_stream.app._bench_model import synthetic_run
from xfusion_stream.fusion import FusionModel
from xfusion_stream.fusion._inference import WindowInference


def _model(hr_warp: bool) -> FusionModel:
    import xfusion_models as xm

    torch.manual_seed(0)
    net = xm.edvr_stf("tiny", hr_warp=hr_warp, hr_warp_feat=4).eval()
    return FusionModel(net, "t", "edvr_stf", "0" * 64, torch.device("cpu"))


@pytest.fixture
def motion_threads(monkeypatch):
    """Names of the threads each pair's motion was computed in."""
    import xfusion_models.ops._phantom_motion as motion

    names: list[str] = []
    real = motion.pair_motion

    def recording(first, second):
        names.append(threading.current_thread().name)
        return real(first, second)

    monkeypatch.setattr(motion, "pair_motion", recording)
    return names


def test_the_next_pair_is_computed_ahead_and_the_frames_do_not_change(motion_threads):
    torch.set_num_threads(1)
    model = _model(hr_warp=True)
    jobs = synthetic_run((16, 24), 16, phantom_every=4)  # 4 Phantom pairs
    plain = WindowInference(model, flow_ahead=False)
    expected = [out.image for out in plain.run_each(jobs)]
    assert motion_threads == ["MainThread"] * 4
    motion_threads.clear()

    ahead = WindowInference(model, flow_ahead=True)
    cache = ahead.motion_cache
    try:
        got = [out.image for out in ahead.run_each(jobs)]
        # the first pair is needed at once; the other three were started ahead
        assert motion_threads[0] == "MainThread"
        assert len(motion_threads) == 4
        assert all(name.startswith("xfusion-flow-ahead") for name in motion_threads[1:])
        assert (ahead.motion_cache.misses, ahead.motion_cache.hits) == (4, 12)
    finally:
        ahead.release()
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
    assert cache._ahead is None  # release stopped the run's thread
    alive = [t.name for t in threading.enumerate() if t.name.startswith("xfusion-flow-ahead")]
    assert alive == []


def test_off_on_the_cpu_by_default_and_never_for_a_model_without_motion(motion_threads):
    torch.set_num_threads(1)
    jobs = synthetic_run((16, 24), 6, phantom_every=2)
    assert not WindowInference(_model(hr_warp=True)).flow_ahead  # CPU: the cores are busy
    no_motion = WindowInference(_model(hr_warp=False), flow_ahead=True)
    no_motion.run_each(jobs)
    assert motion_threads == []  # nothing computed, ahead or not
    assert no_motion.motion_cache._ahead is None  # and no thread started


def test_the_live_worker_looks_ahead_into_its_queue(motion_threads):
    from xfusion_stream.fusion import FusedRunComposer, FusionWorker
    from xfusion_stream.testing import DocumentLog

    torch.set_num_threads(1)
    out = DocumentLog()
    worker = FusionWorker(
        _model(hr_warp=True),
        FusedRunComposer([out], {"purpose": "fused"}),
        queue_size=64,
        when_full="block",
    )
    worker.inference.flow_ahead = True  # as on a GPU
    cache = worker.inference.motion_cache
    jobs = synthetic_run((16, 24), 16, phantom_every=4)
    worker.start_run((64, 96), "fused")
    for job in jobs:  # queued far faster than windows are fused
        worker.submit(job)
    worker.stop_run()
    assert worker.join(60)
    assert len(out.events()) == len(jobs)
    assert len(motion_threads) == 4  # one motion per Phantom pair, wherever computed
    assert sum(name.startswith("xfusion-flow-ahead") for name in motion_threads) >= 2
    assert cache._ahead is None  # the run's end stopped the thread


@pytest.mark.parametrize("cached", [True, False])
def test_a_phantom_pair_goes_to_the_device_once_when_features_are_cached(cached, monkeypatch):
    torch.set_num_threads(1)
    model = _model(hr_warp=True)
    jobs = synthetic_run((16, 24), 8, phantom_every=4)  # 2 Phantom pairs, 8 windows
    moved = []
    real = FusionModel.to_tensor

    def counting(self, frames):
        if frames[0].shape == jobs[0].hr_frames[0].shape:
            moved.append(len(frames))
        return real(self, frames)

    expected = [o.image for o in WindowInference(model, feature_cache=False).run_each(jobs)]
    monkeypatch.setattr(FusionModel, "to_tensor", counting)
    inference = WindowInference(model, feature_cache=cached, motion_cache=cached)
    got = [o.image for o in inference.run_each(jobs)]
    pairs = moved.count(2)
    assert pairs == (2 if cached else 8)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
