"""The run's registration residual reaches each window, so the position step knows where
no motion is: measured at the simultaneous frames before the window is cut, carried by
the job (through the fusion processes' wire too), applied to that window alone."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from xfusion_plans import dual_camera_burst

import xfusion_models as xm
from xfusion_models.ops import ShimadzuMeasurement
from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import FusionModel, WindowInference
from xfusion_stream.fusion._alignment import AlignmentCheck, AlignmentMonitor
from xfusion_stream.fusion._window_wire import job_from, job_message
from xfusion_stream.publishing import pack_document, unpack_document
from xfusion_stream.testing import random_window_jobs

NAN2 = (math.nan, math.nan)


def _check(offset) -> AlignmentCheck:
    return AlignmentCheck(1.0, 1.0, (0, 0), 5.0, 0.9, offset)


def test_the_reference_is_the_median_of_the_checks_up_to_the_window():
    monitor = AlignmentMonitor(ShimadzuMeasurement(), tolerance_ns=10)
    assert np.isnan(monitor.reference(10**9)).all()
    monitor.checks.append(_check(NAN2))  # a flat pair measures nothing
    monitor.checks += [_check((0.4, -0.2)), _check((0.1, 0.3)), _check((0.5, -0.1))]
    monitor.check_times += [0, 4000, 8000, 12000]
    assert np.isnan(monitor.reference(3999)).all()
    assert monitor.reference(4000) == pytest.approx((0.4, -0.2))
    assert monitor.reference(12000) == pytest.approx((0.4, -0.1))


@pytest.mark.parametrize("offset", [(0.25, -0.5), NAN2])
def test_the_wire_carries_a_jobs_offset(offset):
    job = dataclasses.replace(random_window_jobs(1)[0], shimadzu_offset=offset)
    back = job_from(unpack_document(job_message("run-1", {}, job)))
    np.testing.assert_array_equal(back.shimadzu_offset, offset)


@pytest.mark.parametrize("garbled", [[0.1, 0.2, 0.3], ["0.1", 0.2], [True, 0.0], 0.5])
def test_a_garbled_offset_on_the_wire_is_refused(garbled):
    msg = unpack_document(job_message("run-1", {}, random_window_jobs(1)[0]))
    msg["shimadzu_offset"] = garbled
    with pytest.raises(ValueError, match="shimadzu_offset must be two numbers"):
        job_from(unpack_document(pack_document(msg)))


def _shift_model() -> FusionModel:
    torch.manual_seed(0)
    net = xm.edvr_stf("tiny", consistency=True, consistency_shift=True).eval()
    return FusionModel(net, "tiny_shift", "edvr_stf", "0" * 64, torch.device("cpu"))


def test_each_window_is_fused_with_its_own_offset():
    """Jobs that carry different offsets in one batch give what each gives alone; the
    offset changes what the position step does (or the test could not fail)."""
    model = _shift_model()
    jobs = random_window_jobs(4, (16, 24), seed=2)
    offsets = [(0.0, 0.0), (0.2, 0.1), (0.6, -0.4), NAN2]  # each fused at batch 1
    jobs = [dataclasses.replace(j, shimadzu_offset=o) for j, o in zip(jobs, offsets)]
    together = WindowInference(model, feature_cache=False).run(jobs)
    alone = [WindowInference(model, feature_cache=False).run([j])[0] for j in jobs]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
    other = dataclasses.replace(jobs[2], shimadzu_offset=(0.0, 0.0))
    moved = WindowInference(model, feature_cache=False).run([other])[0]
    assert not np.array_equal(moved.image, together[2].image)


@pytest.mark.parametrize("interleave", [True, False])
def test_a_fused_run_hands_each_window_the_residual_measured_up_to_it(
    cameras, tiny_model, calibration, interleave
):
    """Live the cameras' frames come in time order; replayed from Tiled, stream by stream.
    Each window gets the same offset either way (so fused frames stay bit-identical)."""
    offsets = {}
    for order in (True, interleave):
        seen = offsets.setdefault(order, {})
        result = FusionSession(
            tiny_model,
            calibration,
            on_frame=lambda frame, job, seen=seen: seen.update({job.index: job.shimadzu_offset}),
        ).run_plan(dual_camera_burst(*cameras(), interleave=order))
        assert result.ok, result.problem
    measured = [o for o in result.calibration_check["shimadzu_offset_px"] if o is not None]
    first = offsets[True][min(offsets[True])]
    # the first simultaneous pair is checked before the first window is cut
    np.testing.assert_allclose(first, measured[0], atol=5e-4)
    assert all(np.isfinite(o).all() and max(map(abs, o)) < 0.3 for o in offsets[True].values())
    # the same pairs (to float rounding: the check's sums follow torch's thread count,
    # which the suite changes between tests)
    assert offsets[interleave].keys() == offsets[True].keys()
    for index, offset in offsets[True].items():
        np.testing.assert_allclose(offsets[interleave][index], offset, rtol=0, atol=1e-6)
