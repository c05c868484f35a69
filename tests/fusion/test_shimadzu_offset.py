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


def test_the_reference_is_the_median_of_the_checks_that_measured_one():
    monitor = AlignmentMonitor(ShimadzuMeasurement(), tolerance_ns=10)
    assert np.isnan(monitor.reference).all()
    monitor.checks.append(_check(NAN2))  # a flat pair measures nothing
    assert np.isnan(monitor.reference).all()
    monitor.checks += [_check((0.4, -0.2)), _check((0.1, 0.3)), _check((0.5, -0.1))]
    assert monitor.reference == pytest.approx((0.4, -0.1))


@pytest.mark.parametrize("offset", [(0.25, -0.5), NAN2])
def test_the_wire_carries_a_jobs_offset(offset):
    job = dataclasses.replace(random_window_jobs(1)[0], shimadzu_offset=offset)
    back = job_from(unpack_document(job_message("run-1", {}, job)))
    np.testing.assert_array_equal(back.shimadzu_offset, offset)


def test_a_garbled_offset_on_the_wire_is_refused():
    msg = unpack_document(job_message("run-1", {}, random_window_jobs(1)[0]))
    msg["shimadzu_offset"] = [0.1, 0.2, 0.3]
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


def test_a_fused_run_hands_each_window_the_residual_measured_so_far(
    cameras, tiny_model, calibration
):
    seen = []
    result = FusionSession(
        tiny_model, calibration, on_frame=lambda frame, job: seen.append(job.shimadzu_offset)
    ).run_plan(dual_camera_burst(*cameras()))
    assert result.ok, result.problem
    measured = [o for o in result.calibration_check["shimadzu_offset_px"] if o is not None]
    assert measured and seen
    # the first simultaneous pair is checked before the first window is cut
    np.testing.assert_allclose(seen[0], measured[0], atol=5e-4)
    assert all(np.isfinite(o).all() and abs(o[0]) < 0.3 and abs(o[1]) < 0.3 for o in seen)
