"""FusionSession on its own: one session, every entry point, one lock for its sinks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from xfusion_plans import dual_camera_burst

from xfusion_stream.app import FusionSession, close_run_engine, new_run_engine
from xfusion_stream.core import XFusionError
from xfusion_stream.fusion import FusionConfig, fusion_router
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.testing import DocumentLog, expected_table


def _fused_run(log: DocumentLog, fused_uid: str) -> list[dict]:
    """The fused events of one fused run, from a log that holds several."""
    descriptors = {
        d["uid"]
        for d in log.of("descriptor")
        if d["run_start"] == fused_uid and d["name"] == "fused"
    }
    return [e for e in log.of("event") if e["descriptor"] in descriptors]


def test_subscribe_run_plan_and_replay_fuse_the_same_run_alike(
    RE, cameras, tiny_model, calibration, scene, tiled_client
):
    log = DocumentLog()
    session = FusionSession(tiny_model, calibration, [log], FusionConfig())
    phantom, shimadzu = cameras()
    RE.subscribe(make_tiled_writer(tiled_client))  # raw runs, for the replay

    session.subscribe(RE)
    (raw_uid,) = RE(dual_camera_burst(phantom, shimadzu))
    live = session.wait(120)
    assert live is not None and live.raw_uid == raw_uid
    # a plan run on the RunEngine the session is subscribed to is fused once, not twice
    planned = session.run_plan(dual_camera_burst(phantom, shimadzu), RE=RE, timeout=120)
    assert len(session.results) == 2 and planned.raw_uid != raw_uid
    assert planned.wall_seconds is not None and live.wall_seconds is None
    session.unsubscribe()
    (other_uid,) = RE(dual_camera_burst(phantom, shimadzu))  # no longer fused
    assert len(session.results) == 2
    replayed = session.replay(tiled_client, raw_uid, timeout=120)

    assert [r.fused_uid for r in session.results] == [
        live.fused_uid,
        planned.fused_uid,
        replayed.fused_uid,
    ]
    assert replayed.raw_uid == raw_uid and other_uid not in {r.raw_uid for r in session.results}
    n_windows = len(expected_table(scene, "continuous").windows)
    for result in (live, planned, replayed):
        assert result.exit_status == "success", result.reason
        assert result.frames == n_windows > 0 and result.gaps == ()
        assert len(result.latencies) == result.frames and result.model_seconds > 0
        summary = result.summary()
        assert summary["frames_fused"] == n_windows and summary["gaps"] == 0
    events = {r.fused_uid: _fused_run(log, r.fused_uid) for r in (live, planned, replayed)}
    reference = events[live.fused_uid]
    for run in events.values():
        assert [e["data"]["window_index"] for e in run] == [
            e["data"]["window_index"] for e in reference
        ]
        for a, b in zip(reference, run, strict=True):
            np.testing.assert_array_equal(a["data"]["fused_image"], b["data"]["fused_image"])
            for key in ("shimadzu_residual_rms", "shimadzu_residual_p99"):
                assert a["data"][key] == b["data"][key]
            np.testing.assert_array_equal(
                a["data"]["shimadzu_residual_map"], b["data"]["shimadzu_residual_map"]
            )
    # every entry point reports the run's mean residual against the Shimadzu frames
    rms = [e["data"]["shimadzu_residual_rms"] for e in reference]
    for result in (live, planned, replayed):
        assert result.summary()["shimadzu_residual"] == round(float(np.mean(rms)), 3)
        assert result.summary()["shimadzu_residual_p99"] >= result.shimadzu_residual > 0


class ReentryDetector:
    """A sink that notices being called from two threads at once.

    Its first call holds on for up to ``hold`` s, waiting for another thread to come
    in: without a lock between the workers of two runs, one always does.
    """

    def __init__(self, hold: float = 2.0) -> None:
        self.hold = hold
        self.overlaps = 0
        self.log = DocumentLog()
        self._inside = 0
        self._first = True
        self._state = threading.Lock()
        self._entered = threading.Event()

    def __call__(self, name: str, doc: dict) -> None:
        with self._state:
            self._inside += 1
            if self._inside > 1:
                self.overlaps += 1
                self._entered.set()
            first, self._first = self._first, False
        try:
            if first:
                self._entered.wait(self.hold)
            self.log(name, doc)
        finally:
            with self._state:
                self._inside -= 1


def _two_raw_runs(RE, cameras) -> list[tuple[str, dict]]:
    """The documents of two bursts, interleaved as two RunEngines on one proxy send them."""
    runs: list[DocumentLog] = [DocumentLog(), DocumentLog()]
    phantom, shimadzu = cameras(inline=True)
    for log in runs:
        token = RE.subscribe(log)
        RE(dual_camera_burst(phantom, shimadzu))
        RE.unsubscribe(token)
    a, b = runs[0].docs, runs[1].docs
    assert len(a) == len(b)
    return [doc for pair in zip(a, b) for doc in pair]


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "fusion did not finish"
        time.sleep(0.05)


def test_overlapping_runs_never_call_a_sink_concurrently(RE, cameras, tiny_model, calibration):
    docs = _two_raw_runs(RE, cameras)

    # the setup does overlap: two workers, sinks without a lock, re-entry seen
    unguarded = ReentryDetector()
    router = fusion_router(tiny_model, calibration, [unguarded], FusionConfig())
    for name, doc in docs:
        router(name, doc)
    _wait_for(lambda: len(unguarded.log.of("stop")) == 2)
    assert unguarded.overlaps > 0

    # through one session the same documents never enter a sink twice at once
    guarded = ReentryDetector()
    session = FusionSession(tiny_model, calibration, [guarded], FusionConfig())
    router = session.router()
    for name, doc in docs:
        router(name, doc)
    _wait_for(lambda: len(session.results) == 2)
    assert guarded.overlaps == 0
    first, second = session.results
    assert first.raw_uid != second.raw_uid and first.frames == second.frames > 0
    assert {first.exit_status, second.exit_status} == {"success"}
    assert len(guarded.log.of("stop")) == 2


def test_run_plan_without_a_camera_run_is_an_error(tiny_model, calibration):
    from bluesky.plan_stubs import null

    session = FusionSession(tiny_model, calibration)
    with pytest.raises(XFusionError, match="no run that fusion could take"):
        session.run_plan(null())  # no run at all, on a RunEngine of its own (closed again)
    assert session.wait(0) is None and session.results == []


def test_close_run_engine_ends_its_loop_thread():
    before = set(threading.enumerate())
    RE = new_run_engine({"purpose": "test"})
    (loop_thread,) = [
        t for t in threading.enumerate() if t not in before and t.name == "bluesky-run-engine"
    ]
    close_run_engine(RE)
    assert RE.loop.is_closed() and not loop_thread.is_alive()
    close_run_engine(RE)  # idempotent


def test_a_session_carries_an_extended_schema_to_its_fused_runs(
    RE, cameras, tiny_model, calibration
):
    """One FrameField given to the session reaches every fused event of a live run."""
    from xfusion_stream.fusion import FUSED_FRAME, FrameField

    def phantom_gap(job) -> int:
        return int(job.hr[1] - job.hr[0])

    schema = FUSED_FRAME.extended(
        FrameField("phantom_gap", "<i8", "job", phantom_gap, description="after - before")
    )
    log = DocumentLog()
    session = FusionSession(tiny_model, calibration, [log], FusionConfig(), schema=schema)
    phantom, shimadzu = cameras()
    result = session.run_plan(dual_camera_burst(phantom, shimadzu), RE=RE, timeout=120)
    assert result.exit_status == "success" and result.frames > 0
    (descriptor,) = [d for d in log.of("descriptor") if d["name"] == "fused"]
    assert descriptor["data_keys"]["phantom_gap"]["dtype"] == "integer"
    events = _fused_run(log, result.fused_uid)
    assert len(events) == result.frames
    gaps = [e["data"]["phantom_gap"] for e in events]
    assert gaps == [int(e["data"]["hr_indices"][1] - e["data"]["hr_indices"][0]) for e in events]
    assert all(g > 0 for g in gaps)


def test_a_stored_run_without_its_stop_is_fused_to_its_end_not_waited_for(
    RE, cameras, tiny_model, calibration, tiled_client
):
    """Every stored document was read, yet replay waited for a stop that could not come
    (an hour by default); the run ends as cut off, with the frames it has."""
    writer = make_tiled_writer(tiled_client, batch_size=1)  # rows stored as they come
    RE.subscribe(lambda name, doc: None if name == "stop" else writer(name, doc))
    (raw_uid,) = RE(dual_camera_burst(*cameras()))
    assert "stop" not in tiled_client[raw_uid].metadata
    session = FusionSession(tiny_model, calibration, [DocumentLog()], FusionConfig())
    result = session.replay(tiled_client, raw_uid, timeout=120)
    assert result.exit_status == "abort" and "has no valid stop" in result.reason
    assert result.frames > 0 and not result.ok
