"""FusionSession.serve in-process: a run cut off by shutdown still ends, as 'abort', on the wire."""

from __future__ import annotations

import threading
import time

from xfusion_plans import dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.calibration import load_record
from xfusion_stream.fusion import load_fusion_model
from xfusion_stream.publishing import (
    RAW_PREFIX,
    DocumentCounter,
    ProxyThread,
    dispatch_in_thread,
    make_publisher,
    make_remote_dispatcher,
    stop_dispatcher,
)
from xfusion_stream.testing import wait_until


def test_shutdown_mid_run_ends_the_fused_run_with_abort(
    RE, make_cameras, zmq_scene, tiny_checkpoint, calibration_file, one_torch_thread, tmp_path
):
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    phantom, shimadzu, _ = make_cameras(zmq_scene.replace(n_shimadzu=24), inline=True)
    (raw_uid,) = RE(dual_camera_burst(phantom, shimadzu))
    assert docs[-1][0] == "stop"

    with ProxyThread() as proxy:
        session = FusionSession(load_fusion_model(tiny_checkpoint), load_record(calibration_file))
        counter = DocumentCounter(runs=1)
        listener = make_remote_dispatcher(proxy.out_address)
        listener_thread = dispatch_in_thread(listener, counter)
        result: dict = {}

        def serve() -> None:
            ready = tmp_path / "ready"
            result.update(session.serve(proxy.out_address, proxy.in_address, ready_file=ready))

        serving = threading.Thread(target=serve, daemon=True)
        serving.start()
        publisher = make_publisher(proxy.in_address, RAW_PREFIX)
        try:
            wait_until((tmp_path / "ready").exists, 30, "the server to subscribe")
            time.sleep(0.5)  # slow joiner: let both subscriptions reach the proxy
            for name, doc in docs[:-1]:  # everything but the raw stop
                publisher(name, doc)
            wait_until(lambda: _fused_events(counter) > 0, 30, "a fused frame on the wire")
            session.shutdown("test")
            serving.join(60)
            assert not serving.is_alive()
            wait_until(counter.done.is_set, 10, "the fused stop on the wire")
        finally:
            publisher.close()
            session.shutdown("test")
            stop_dispatcher(listener, listener_thread)

    (run,) = result["runs"]
    assert run["raw_uid"] == raw_uid and run["exit_status"] == "abort"
    assert "before the raw run ended" in run["reason"] and result["stopped_by"] == "test"
    assert result["raw_runs"] == 0
    (seen,) = counter.runs.values()
    assert seen.raw_uid == raw_uid and seen.exit_status == "abort"
    assert seen.events.get("fused", 0) == run["frames"] > 0
    (aborted,) = session.results  # the session reports the same run the same way
    assert aborted.exit_status == "abort" and aborted.frames == run["frames"]


def _fused_events(counter: DocumentCounter) -> int:
    return sum(run.events.get("fused", 0) for run in list(counter.runs.values()))
