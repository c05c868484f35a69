"""Non-finite inputs and outputs never become a ``success``; ``ok`` says what happened."""

from __future__ import annotations

import time

import numpy as np
import pytest
from xfusion_plans import dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import (
    FusedRunComposer,
    FusedRunResult,
    FusionConfig,
    FusionWorker,
    WindowJob,
)
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.testing import DocumentLog as Collector

H, W = 8, 12


def _jobs(n: int) -> list[WindowJob]:
    rng = np.random.default_rng(0)
    lr = [rng.random((H, W), dtype=np.float32) for _ in range(n + 2)]
    hr = [rng.random((4 * H, 4 * W), dtype=np.float32) for _ in range(2)]
    return [
        WindowJob(
            i, i, 200 * i, (i, i + 1, i + 2), (0, 1), (lr[i], lr[i + 1], lr[i + 2]), (hr[0], hr[1])
        )
        for i in range(n)
    ]


def _wait_stop(log: Collector, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while not log.of("stop") and time.monotonic() < deadline:
        time.sleep(0.05)
    (stop,) = log.of("stop")
    return stop


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_raw_frame_fails_the_fused_run_not_the_raw_run(
    RE, cameras, tiny_model, calibration, tiled_client, bad
):
    fused, raw = Collector(), Collector()
    router = FusionSession(tiny_model, calibration, [fused], FusionConfig()).router()

    def poisoning(name, doc):
        if name == "event" and doc["seq_num"] == 9 and "shimadzu_image" in doc["data"]:
            frame = np.asarray(doc["data"]["shimadzu_image"], dtype=np.float64).copy()
            frame[3, 5] = bad
            doc = {**doc, "data": {**doc["data"], "shimadzu_image": frame}}
        router(name, doc)

    RE.subscribe(raw)
    RE.subscribe(make_tiled_writer(tiled_client))
    RE.subscribe(poisoning)
    phantom, shimadzu = cameras(inline=True)
    (uid,) = RE(dual_camera_burst(phantom, shimadzu))
    assert raw.of("stop")[0]["exit_status"] == "success"
    assert tiled_client[uid].metadata["stop"]["exit_status"] == "success"
    stop = _wait_stop(fused)
    assert stop["exit_status"] == "fail"
    assert "non-finite values in Shimadzu HPV-X2 frame 8" in stop["reason"]
    assert all(np.isfinite(e["data"]["fused_image"]).all() for e in fused.events())


def test_non_finite_fused_frame_is_not_emitted_and_fails_the_run(tiny_model):
    out = Collector()
    worker = FusionWorker(tiny_model, FusedRunComposer([out], {}), queue_size=64, when_full="block")
    real_run = worker.inference.run

    def poisoned(jobs):
        outputs = real_run(jobs)
        for job, o in zip(jobs, outputs):
            if job.index == 3:
                o.image[2, 2] = np.nan
        return outputs

    worker.inference.run = poisoned  # type: ignore[method-assign]
    worker.start_run((4 * H, 4 * W), "fused")
    for job in _jobs(6):
        worker.submit(job)
    worker.stop_run()
    assert worker.join(60)
    assert [e["data"]["window_index"] for e in out.events("fused")] == [0, 1, 2]
    (stop,) = out.of("stop")
    assert stop["exit_status"] == "fail"
    assert "non-finite values in the fused frame of window 3" in stop["reason"]
    assert worker.report.frames == 3


def _result(**kw) -> FusedRunResult:
    base = dict(
        raw_uid="r",
        fused_uid="f",
        frames=5,
        gaps=(),
        exit_status="success",
        reason="",
        model_seconds=0.1,
        latencies=(),
    )
    return FusedRunResult(**(base | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"exit_status": "fail", "reason": "boom"}, "ended with fail: boom"),
        ({"exit_status": "abort", "reason": ""}, "ended with abort"),
        ({"frames": 0}, "0 frames"),
        ({"fused_uid": None, "exit_status": None, "frames": 0, "reason": "no camera"}, "no camera"),
        ({"sink_errors": ("sink tiled failed",)}, "sink tiled failed"),
    ],
)
def test_ok_is_false_with_the_reason_unless_success_with_frames(kw, words):
    result = _result(**kw)
    assert result.ok is False and words in (result.problem or "")
    summary = result.summary()
    assert summary["ok"] is False and words in summary["problem"]
    assert _result().ok is True and _result().summary()["problem"] is None


def test_run_without_cameras_is_not_ok(RE, tiny_model, calibration):
    from bluesky.plans import count
    from ophyd.sim import det

    session = FusionSession(tiny_model, calibration, [Collector()], FusionConfig())
    session.subscribe(RE)
    RE(count([det], num=2))
    (result,) = session.results
    assert result.ok is False and "nothing was fused" in (result.problem or "")


def test_a_run_that_failed_before_its_fused_run_began_says_why():
    """A raw run whose fusion failed before the fused run began (no fusion slot came
    free, the model could not measure the Shimadzu) was reported as having no Phantom
    or Shimadzu stream; the result is built from a stand-in callback in that state."""
    from types import SimpleNamespace

    failed = SimpleNamespace(worker=None, raw_uid="r1", failure="no fusion slot came free")
    result = FusedRunResult.from_callback(failed)  # type: ignore[arg-type]
    assert not result.ok and "no fusion slot came free" in (result.problem or "")
    assert "no Phantom or Shimadzu stream" not in (result.problem or "")
    quiet = SimpleNamespace(worker=None, raw_uid="r2", failure=None)
    assert "no Phantom or Shimadzu stream" in (FusedRunResult.from_callback(quiet).problem or "")  # type: ignore[arg-type]
