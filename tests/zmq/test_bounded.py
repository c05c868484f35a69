"""Issue 13 item 5 through a session and ``serve``: bounded resources, losses reported.

- a raw event lost on the way is a gap of the fused run (``gaps`` stream, with its
  cause), in the result (``lost``, ``ok`` false) and in the stop's reason;
- ``serve`` ends a run that went silent (``idle_timeout``) and, at shutdown, the runs
  whose stop never came, with ``abort`` and the reason; the summary lists the losses;
- beyond ``max_open_runs`` the oldest run is ended; frames waiting for windows are
  bounded (``max_buffered_mib``);
- our 0MQ sockets carry the high-water marks we chose.
"""

from __future__ import annotations

import threading
import time

import pytest

from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.publishing import (
    RAW_PREFIX,
    RECEIVE_HWM,
    SEND_HWM,
    DocumentCounter,
    ProxyThread,
    dispatch_in_thread,
    make_publisher,
    make_remote_dispatcher,
    stop_dispatcher,
)
from xfusion_stream.testing import DocumentLog, feed, wait_until


def _without_event(docs, stream: str, seq_num: int):
    descriptors = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == stream}
    return [
        (n, d)
        for n, d in docs
        if not (n == "event" and d["descriptor"] in descriptors and d["seq_num"] == seq_num)
    ]


def test_a_lost_raw_event_is_a_gap_of_the_fused_run(
    inline_run, fuzz_model, fuzz_calibration, fresh_uids
):
    log = DocumentLog()
    session = FusionSession(fuzz_model, fuzz_calibration, [log], FusionConfig())
    feed(session.router(), _without_event(fresh_uids(inline_run), "phantom", 5))
    result = session.wait(60)
    session.close()
    assert result is not None and result.lost == (
        f"stream 'phantom' of run {result.raw_uid}: events 5 lost",
    )
    assert result.ok is False and "raw documents were lost" in (result.problem or "")
    assert result.summary()["raw_losses"] == 1
    (gap,) = log.events("gaps")
    assert gap["data"]["window_index"] == -1 and "events 5 lost" in gap["data"]["cause"]
    (stop,) = log.of("stop")
    assert "events 5 lost" in stop["reason"]


def test_a_lost_shimadzu_frame_fails_the_run_and_names_the_loss(
    inline_run, fuzz_model, fuzz_calibration, fresh_uids
):
    session = FusionSession(fuzz_model, fuzz_calibration, [DocumentLog()], FusionConfig())
    feed(session.router(), _without_event(fresh_uids(inline_run), "shimadzu", 4))
    result = session.wait(60)
    session.close()
    assert result is not None and result.exit_status == "fail"
    assert result.lost and "'shimadzu'" in result.lost[0] and "events 4 lost" in result.lost[0]


def _serve(session: FusionSession, proxy: ProxyThread, ready, result: dict) -> threading.Thread:
    def serve() -> None:
        result.update(session.serve(proxy.out_address, proxy.in_address, ready_file=ready))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def _ended(session: FusionSession, i: int) -> bool:
    """The i-th raw run of the session was stopped and its fusion is over."""
    callbacks = session._callbacks
    return len(callbacks) > i and callbacks[i].stopped and callbacks[i].join(0)


def test_serve_ends_a_silent_run_and_at_shutdown_the_open_ones(
    inline_run, fuzz_model, fuzz_calibration, fresh_uids, tmp_path
):
    session = FusionSession(fuzz_model, fuzz_calibration, [], FusionConfig(), idle_timeout=1.0)
    silent, cut = fresh_uids(inline_run), fresh_uids(inline_run)
    result: dict = {}
    with ProxyThread() as proxy:
        counter = DocumentCounter(runs=None)
        listener = make_remote_dispatcher(proxy.out_address)
        listening = dispatch_in_thread(listener, counter)
        serving = _serve(session, proxy, tmp_path / "ready", result)
        publisher = make_publisher(proxy.in_address, RAW_PREFIX)
        try:
            wait_until((tmp_path / "ready").exists, 30, "serve to subscribe")
            time.sleep(0.5)  # slow joiner
            for name, doc in silent[:-2]:  # its last event and its stop were lost
                publisher(name, doc)
            wait_until(lambda: _ended(session, 0), 30, "the idle run to end")
            for name, doc in cut[:8]:  # still open when serve stops
                publisher(name, doc)
            wait_until(lambda: len(session._callbacks) == 2, 30, "the second run")
            time.sleep(0.3)
            session.shutdown("test")
            serving.join(60)
            assert not serving.is_alive()
        finally:
            publisher.close()
            stop_dispatcher(listener, listening)
    idle, stopped = result["runs"]
    assert idle["exit_status"] == "abort" and "idle_timeout 1 s" in idle["reason"]
    assert idle["frames"] > 0  # the windows that could be formed were fused
    assert stopped["exit_status"] == "abort" and "before the raw run ended" in stopped["reason"]
    assert result["raw_runs"] == 1 and result["raw_losses"] == 2
    assert any("idle_timeout" in why for why in result["losses"])
    assert any("xfusion serve stopped (test)" in why for why in result["losses"])
    assert {r.raw_uid: r.exit_status for r in session.results} == {
        silent[0][1]["uid"]: "abort",
        cut[0][1]["uid"]: "abort",
    }


def test_beyond_max_open_runs_the_oldest_run_is_ended(
    inline_run, fuzz_model, fuzz_calibration, fresh_uids
):
    session = FusionSession(fuzz_model, fuzz_calibration, [], FusionConfig(), max_open_runs=2)
    router = session.router()
    a, b, c = (fresh_uids(inline_run) for _ in range(3))
    feed(router, a[:6])
    feed(router, b[:6])
    feed(router, c)  # its start ends run a
    wait_until(lambda: _ended(session, 0) and _ended(session, 2), 60, "runs a and c")
    by_raw = {r.raw_uid: r for r in session.results}
    ended = by_raw[a[0][1]["uid"]]
    assert ended.exit_status == "abort" and "max_open_runs=2" in ended.reason
    assert by_raw[c[0][1]["uid"]].exit_status == "success"
    feed(router, a[6:])  # the tail of the ended run is refused, nothing reopens it
    assert len(session._callbacks) == 3 and not session._callbacks[1].stopped
    session.close()


def test_frames_waiting_for_windows_are_bounded(
    inline_run, fuzz_model, fuzz_calibration, fresh_uids
):
    config = FusionConfig(max_buffered_mib=0.1)  # the run needs ~0.2 MiB in hand
    session = FusionSession(fuzz_model, fuzz_calibration, [DocumentLog()], config)
    feed(session.router(), fresh_uids(inline_run))
    result = session.wait(60)
    session.close()
    assert result is not None and result.exit_status == "fail"
    assert "max_buffered_mib=0.1" in result.reason and "wait for windows" in result.reason
    (callback,) = session._callbacks
    assert callback._ring.nbytes == 0 and not any(callback._ring.frames.values())


def test_our_sockets_carry_the_chosen_high_water_marks():
    import zmq

    assert SEND_HWM == RECEIVE_HWM == 10_000
    with ProxyThread() as proxy:
        assert proxy._frontend.getsockopt(zmq.RCVHWM) == RECEIVE_HWM
        assert proxy._backend.getsockopt(zmq.SNDHWM) == SEND_HWM
        publisher = make_publisher(proxy.in_address, RAW_PREFIX, linger_ms=0)
        try:
            assert publisher._socket.getsockopt(zmq.SNDHWM) == SEND_HWM
        finally:
            publisher.close()
        dispatcher = make_remote_dispatcher(proxy.out_address)
        thread = dispatch_in_thread(dispatcher, lambda name, doc: None)
        try:
            wait_until(lambda: dispatcher._socket is not None, 10, "the dispatcher's socket")
            assert dispatcher._socket.getsockopt(zmq.RCVHWM) == RECEIVE_HWM
        finally:
            stop_dispatcher(dispatcher, thread)


@pytest.mark.parametrize("bad", [0, -1.0])
def test_max_buffered_mib_must_be_positive(bad):
    from xfusion_stream.core import ConfigError

    with pytest.raises((ConfigError, ValueError)):
        FusionConfig(max_buffered_mib=bad)
