"""Issue 13 item 4: sinks are independent. Each has a delivery thread of its own, so a
sink that hangs or raises never stalls another sink or the model; each sink still
sees every run's documents in order, and the run's result waits (bounded) for every
sink and says what each one lost."""

from __future__ import annotations

import threading
import time

import numpy as np

from xfusion_stream.fusion import FusedRunComposer, FusedRunResult, FusionWorker, WindowJob
from xfusion_stream.publishing import SinkThread
from xfusion_stream.testing import DocumentLog

H, W = 8, 12


def _jobs(n: int) -> list[WindowJob]:
    rng = np.random.default_rng(1)
    lr = [rng.random((H, W), dtype=np.float32) for _ in range(n + 2)]
    hr = [rng.random((4 * H, 4 * W), dtype=np.float32) for _ in range(2)]
    return [
        WindowJob(
            i, i, 200 * i, (i, i + 1, i + 2), (0, 1), (lr[i], lr[i + 1], lr[i + 2]), (hr[0], hr[1])
        )
        for i in range(n)
    ]


def _run(model, sinks, n: int = 4) -> FusionWorker:
    worker = FusionWorker(model, FusedRunComposer(sinks, {}), queue_size=64, when_full="block")
    worker.start_run((4 * H, 4 * W), "fused")
    for job in _jobs(n):
        worker.submit(job)
    worker.stop_run()
    return worker


class Hanging:
    """A sink that blocks on its first document until released (a Tiled that hangs)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.docs: list[str] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.release.wait(30)
        self.docs.append(name)


class Raising:
    def __call__(self, name: str, doc: dict) -> None:
        if name == "descriptor":
            raise ConnectionError("Tiled is down")


def test_a_hanging_sink_stalls_neither_the_other_sink_nor_the_model(tiny_model):
    hanging, log = Hanging(), DocumentLog()
    slow = SinkThread(hanging, label="hanging", delivery_timeout=1.0)
    fast = SinkThread(log, label="log")
    t0 = time.monotonic()
    worker = _run(tiny_model, [slow, fast])
    deadline = time.monotonic() + 30
    while not log.of("stop") and time.monotonic() < deadline:
        time.sleep(0.01)
    arrived = time.monotonic() - t0
    assert log.of("stop") and len(log.events()) == 4 and not hanging.docs
    assert worker.join(30)  # the result waited for the hanging sink, at most 1 s
    result_at = time.monotonic() - t0
    assert result_at - arrived < 10
    assert worker.report.frames == 4
    errors = worker.composer.sink_errors
    assert len(errors) == 1 and "hanging: fused run" in errors[0] and "within 1 s" in errors[0]
    assert worker.report.stop_doc["exit_status"] == "success"
    hanging.release.set()  # the hanging sink gets its documents later, in order
    assert slow.close(10) and fast.close(10)
    assert hanging.docs[0] == "start" and hanging.docs[-1] == "stop" and len(hanging.docs) == 8


def test_a_raising_sink_is_given_up_for_the_run_and_reported(tiny_model):
    log = DocumentLog()
    bad, good = SinkThread(Raising(), label="Tiled"), SinkThread(log, label="0MQ")
    worker = _run(tiny_model, [bad, good])
    assert worker.join(60)
    assert len(log.events()) == 4 and log.of("stop")[0]["exit_status"] == "success"
    (error,) = worker.composer.sink_errors
    assert "Tiled failed on descriptor" in error and "Tiled is down" in error
    assert bad.errors(worker.composer.uid) == []  # delivered() collected and forgot it
    for sink in (bad, good):
        assert sink.close(10)


def test_each_sink_sees_each_run_in_order_from_one_thread(tiny_model):
    """Two runs fused at once share the sinks: per run the order holds, and no sink is
    ever entered by two threads at once."""
    inside, overlaps, seen = [0], [0], []
    lock = threading.Lock()

    def sink(name: str, doc: dict) -> None:
        with lock:
            inside[0] += 1
            overlaps[0] += inside[0] > 1
        time.sleep(0.002)
        seen.append((name, doc))
        with lock:
            inside[0] -= 1

    shared = SinkThread(sink, label="shared")
    workers = [_run(tiny_model, [shared], n=6) for _ in range(2)]
    assert all(w.join(60) for w in workers)
    assert overlaps[0] == 0
    for w in workers:
        names, windows = _of_run(seen, w.composer.uid)
        assert names[0] == "start" and names[1:3] == ["descriptor"] * 2
        assert names[-1] == "stop" and names.count("event") == 6
        assert windows == list(range(6))
    assert shared.close(10)


def test_a_sink_that_falls_behind_is_given_up_for_the_run_not_waited_for(tiny_model):
    hanging = Hanging()
    small = SinkThread(hanging, label="small", max_documents=2, delivery_timeout=0.5)
    worker = _run(tiny_model, [small], n=4)
    assert worker.join(30)
    (error,) = worker.composer.sink_errors
    assert "small fell behind (2 documents" in error
    result = FusedRunResult.from_callback(_Finished(worker))
    assert result.ok is False and "fell behind" in (result.problem or "")
    hanging.release.set()
    assert small.close(10)
    # only the one in the sink when it hung: the run was given up, the rest never goes
    assert hanging.docs == ["start"]


def _of_run(seen: list[tuple[str, dict]], uid: str) -> tuple[list[str], list[int]]:
    """The document names of fused run ``uid`` as a sink saw them, and its windows."""
    descriptors = {d["uid"] for n, d in seen if n == "descriptor" and d["run_start"] == uid}
    names, windows = [], []
    for name, doc in seen:
        if doc.get("uid") == uid or doc.get("run_start") == uid:
            names.append(name)
        elif name == "event" and doc["descriptor"] in descriptors:
            names.append(name)
            windows.append(doc["data"]["window_index"])
    return names, windows


class _Finished:
    """The bits of a FusionCallback that ``FusedRunResult.from_callback`` reads."""

    def __init__(self, worker: FusionWorker) -> None:
        self.worker = worker
        self.raw_uid = "raw"
        self.fused_uid = worker.composer.uid


def test_documents_still_queued_for_a_given_up_run_are_never_sent():
    """A run given up (and reported) while its events wait behind another run's slow
    document: those events are skipped, not sent to the sink afterwards."""
    hold = threading.Event()
    got: list[tuple[str, str]] = []

    def sink(name: str, doc: dict) -> None:
        if doc.get("uid") == "bad-start":
            raise ConnectionError("down")
        if doc.get("uid") == "slow-start":
            hold.wait(10)
        got.append((name, doc["uid"]))

    thread = SinkThread(sink, label="sink")
    thread.submit("bad", "start", {"uid": "bad-start"})
    thread.submit("slow", "start", {"uid": "slow-start"})
    for i in range(3):
        thread.submit("bad", "event", {"uid": f"bad-e{i}"})
    deadline = time.monotonic() + 10
    while not thread.errors("bad") and time.monotonic() < deadline:
        time.sleep(0.01)
    thread.submit("bad", "stop", {"uid": "bad-stop"})
    (error,) = thread.delivered("bad", 5)
    assert "sink failed on start" in error
    hold.set()
    thread.submit("slow", "stop", {"uid": "slow-stop"})
    assert thread.delivered("slow", 5) == []
    assert got == [("start", "slow-start"), ("stop", "slow-stop")]
    assert thread.close(5)
