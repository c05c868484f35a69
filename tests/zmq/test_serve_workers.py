"""Issue 16, Build 2: ``xfusion serve --workers 2`` behind a real ``bluesky-0MQ-proxy``.

Two fusion processes fuse the windows; the fused run arrives over 0MQ in frame order,
its frames those of fusing in one process. One fusion process is killed with SIGKILL in
the middle of the raw run (after the first fused frames left, before the rest of the
raw run was published, so the kill lands mid-run by construction): it is replaced and
the run completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from xfusion_plans import dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.calibration import load_record
from xfusion_stream.fusion import load_fusion_model
from xfusion_stream.publishing import (
    RAW_PREFIX,
    dispatch_in_thread,
    make_publisher,
    make_remote_dispatcher,
    stop_dispatcher,
)
from xfusion_stream.testing import DocumentLog, feed, wait_until

XFUSION = Path(sys.executable).parent / "xfusion"


def _fusion_processes(pid: int) -> list[int]:
    """The multiprocessing children of ``pid`` that fuse (not its resource tracker)."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmdline:
            found.append(child.pid)
    return found


def _first_windows_end(docs: list[tuple[str, dict]]) -> int:
    """Index just past the first Phantom event that follows a Shimadzu event: the
    documents up to there complete the first windows, not the run."""
    names = {d["uid"]: d["name"] for n, d in docs if n == "descriptor"}
    seen_shimadzu = False
    for i, (name, doc) in enumerate(docs):
        if name != "event":
            continue
        stream = names[doc["descriptor"]]
        if "shimadzu" in stream:
            seen_shimadzu = True
        elif seen_shimadzu:
            return i + 1
    raise AssertionError("no Phantom event after the Shimadzu events")


@pytest.mark.timeout(240)
def test_two_fusion_processes_fuse_in_order_like_one_and_survive_a_killed_one(
    proxy, RE, make_cameras, tiny_checkpoint, calibration_file, child_env, tmp_path
):
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    phantom, shimadzu, _ = make_cameras(inline=True)
    (raw_uid,) = RE(dual_camera_burst(phantom, shimadzu))

    # the frames of one process: the session fusing in its own worker thread
    single = DocumentLog()
    session = FusionSession(
        load_fusion_model(tiny_checkpoint), load_record(calibration_file), [single]
    )
    feed(session.router(), docs)
    assert session.wait(120).ok
    session.close()
    want = single.events()

    in_address, out_address = proxy
    fused = DocumentLog()
    listener = make_remote_dispatcher(out_address)
    listening = dispatch_in_thread(listener, fused)
    ready = tmp_path / "ready"
    argv = [
        str(XFUSION), "serve", "--json", "--quiet", "--workers", "2", "--torch-threads", "1",
        "--in-address", in_address, "--out-address", out_address, "--max-runs", "1",
        "--calibration", str(calibration_file), "--model_file", str(tiny_checkpoint),
        "--ready-file", str(ready),
    ]  # fmt: skip
    out, err = tmp_path / "serve.json", tmp_path / "serve.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        serve = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=child_env)
    publisher = make_publisher(in_address, RAW_PREFIX)
    try:
        wait_until(ready.exists, 120, "serve to load its fusion processes and subscribe")
        time.sleep(0.5)  # slow joiner: both subscriptions reach the proxy
        workers = _fusion_processes(serve.pid)
        assert len(workers) == 2 and serve.pid not in workers
        cut = _first_windows_end(docs)
        for name, doc in docs[:cut]:
            publisher(name, doc)
        wait_until(lambda: len(fused.events()) > 0, 60, "the first fused frames on the wire")
        assert len(fused.events()) < len(want)  # the run is under way, not over
        os.kill(workers[0], signal.SIGKILL)
        for name, doc in docs[cut:]:
            publisher(name, doc)
        assert serve.wait(120) == 0, err.read_text()[-3000:]
        wait_until(lambda: fused.of("stop"), 30, "the fused stop on the wire")
    finally:
        publisher.close()
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
        stop_dispatcher(listener, listening)

    summary = json.loads(out.read_text())
    (run,) = summary["runs"]
    assert summary["ok"] is True and run["ok"] is True and run["raw_uid"] == raw_uid
    processes = summary["fusion_processes"]
    assert processes["processes"] == 2 and processes["replaced"] == 1
    assert workers[0] not in processes["pids"] and workers[1] in processes["pids"]
    assert "died" in err.read_text()  # the replacement is logged

    (start,) = fused.of("start")
    assert start["raw_uid"] == raw_uid and fused.of("stop")[0]["exit_status"] == "success"
    got = fused.events()
    assert [e["seq_num"] for e in got] == list(range(1, len(want) + 1))
    indices = [e["data"]["shimadzu_index"] for e in got]
    assert indices == sorted(indices) == [e["data"]["shimadzu_index"] for e in want]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a["data"]["fused_image"], b["data"]["fused_image"])
