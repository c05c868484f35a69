"""The figures of ``xfusion bench``: each measured thing is real and each check can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xfusion_stream.app._bench import TARGETS, _targets_met
from xfusion_stream.app._bench_model import (
    flop_efficiency,
    matmul_peak,
    streaming_speedup,
    synthetic_job,
    time_windows,
)
from xfusion_stream.app._bench_pipeline import persistence_rates
from xfusion_stream.core import ThreadBudget
from xfusion_stream.fusion import FusionModel, WindowJob


@pytest.fixture(scope="module")
def tiny() -> FusionModel:
    import xfusion_models as xm

    torch.manual_seed(0)
    net = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4).eval()
    return FusionModel(net, "tiny_hrwarp", "edvr_stf", "0" * 64, torch.device("cpu"))


def _sequence_jobs(n: int, lr_shape=(12, 16)) -> list[WindowJob]:
    """Continuous-mode windows over one Shimadzu sequence and one Phantom pair."""
    rng = np.random.default_rng(1)
    lr = [rng.random(lr_shape, dtype=np.float32) for _ in range(n + 2)]
    hr = [rng.random((4 * lr_shape[0], 4 * lr_shape[1]), dtype=np.float32) for _ in range(2)]
    return [
        WindowJob(
            index=i,
            shimadzu_index=i + 1,
            shimadzu_time_ns=200 * (i + 1),
            lr=(i, i + 1, i + 2),
            hr=(0, 1),
            lr_frames=(lr[i], lr[i + 1], lr[i + 2]),
            hr_frames=(hr[0], hr[1]),
        )
        for i in range(n)
    ]


def test_caches_change_no_fused_frame_and_are_used(tiny):
    jobs = _sequence_jobs(5)
    figures = streaming_speedup(tiny, jobs)
    assert figures["identical_output"] is True
    assert figures["windows"] == 5
    assert figures["streaming_speedup"] > 0
    # the cached path really reuses features: 3 LR + 2 HR the first window, 1 LR after
    _, cached = time_windows(tiny, jobs, cached=True)
    assert len(cached) == 5 and all(img.shape == (48, 64) for img in cached)


def test_flop_efficiency_counts_the_forward(tiny):
    peak = matmul_peak(torch.device("cpu"), n=256, repeats=2)
    small = flop_efficiency(tiny, synthetic_job((8, 8)), peak, repeats=1)
    large = flop_efficiency(tiny, synthetic_job((16, 16)), peak, repeats=1)
    assert peak > 1e8
    assert 0 < small["efficiency"] < 2
    # convolutions scale with the pixels: four times the pixels, about four times the FLOPs
    assert 3.5 < large["gflop_per_window"] / small["gflop_per_window"] < 4.5


def test_persistence_moves_every_frame(tmp_path):
    rates = persistence_rates(tmp_path, {"raw": ((25, 40), "uint16")}, n=4)["raw"]
    for key in ("tiled_fps", "zmq_fps", "h5py_fps"):
        assert math.isfinite(rates[key]) and rates[key] > 0, key  # NaN: messages were lost
    assert rates["shape"] == [25, 40]


def _figures(**changes):
    out = {
        "efficiency": {"a": {"efficiency": 0.6}},
        "streaming": {"streaming_speedup": 1.6, "identical_output": True},
        "pipeline": {"pipeline_ratio": 0.95, "sys_over_user": 0.05},
        "persistence": {"raw_400x250_uint16": {"tiled_fps": 250.0}},
        "precision": {"psnr_change_db": -0.05},
    }
    for path, value in changes.items():
        section, key = path.split("__")
        out[section][key] = value
    return out


def test_targets_are_judged_one_by_one():
    assert all(_targets_met(_figures()).values())
    assert not _targets_met(_figures(streaming__identical_output=False))["streaming_speedup"]
    assert not _targets_met(_figures(pipeline__sys_over_user=0.5))["sys_over_user"]
    assert not _targets_met(_figures(precision__psnr_change_db=-0.2))["precision"]
    assert not _targets_met(_figures(efficiency__b={"efficiency": 0.1}))["efficiency"]
    assert TARGETS["pipeline_ratio"] == 0.9


def test_thread_budget_sets_torch_and_opencv(monkeypatch):
    import cv2

    before = (torch.get_num_threads(), cv2.getNumThreads())
    monkeypatch.setenv("XFUSION_TORCH_THREADS", "1")
    budget = ThreadBudget.for_this_process()
    assert budget.torch_threads == 1 and budget.opencv_threads == 1
    assert ThreadBudget.for_this_process(torch_threads=2).torch_threads == 2
    try:
        budget.apply()
        assert torch.get_num_threads() == 1
        assert cv2.getNumThreads() == 1
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
    with pytest.raises(ValueError, match="torch_threads"):
        ThreadBudget(0)
