"""``OffLoopWriter``: documents written in order from another thread; a stop returns
only once its run was written; a full queue holds the caller back, never drops."""

from __future__ import annotations

import threading
import time

import pytest

from xfusion_stream.publishing import OffLoopWriter


class SlowWriter:
    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.seen: list[tuple[str, str]] = []
        self.threads: set[str] = set()

    def __call__(self, name: str, doc: dict) -> None:
        time.sleep(self.delay)
        self.threads.add(threading.current_thread().name)
        if name == self.fail_on:
            raise OSError("Tiled said no")
        self.seen.append((name, doc["uid"]))


def _run(n: int) -> list[tuple[str, dict]]:
    docs = [("start", {"uid": "s"})]
    docs += [("event", {"uid": f"e{i}"}) for i in range(n)]
    return [*docs, ("stop", {"uid": "t", "run_start": "s"})]


def test_the_caller_does_not_wait_for_the_writer_but_the_stop_does():
    writer = SlowWriter(delay=0.05)
    off = OffLoopWriter(writer)
    docs = _run(6)
    t0 = time.monotonic()
    for name, doc in docs[:-1]:
        off(name, doc)
    queued = time.monotonic() - t0
    assert queued < 0.05 and len(writer.seen) < len(docs) - 1  # nothing waited on the writer
    off(*docs[-1])  # the stop: back only once the whole run is written
    assert writer.seen == [(name, doc["uid"]) for name, doc in docs]
    assert threading.current_thread().name not in writer.threads
    assert off.close(5)


def test_a_full_queue_holds_the_caller_back_and_drops_nothing():
    writer = SlowWriter(delay=0.02)
    off = OffLoopWriter(writer, max_documents=2)
    t0 = time.monotonic()
    for name, doc in _run(8):
        off(name, doc)
    assert time.monotonic() - t0 >= 0.1  # held back while the queue was full
    assert len(writer.seen) == 10 and off.errors == []
    off.close(5)


def test_a_failing_document_is_logged_and_counted_not_raised(caplog):
    writer = SlowWriter(fail_on="event")
    off = OffLoopWriter(writer)
    for name, doc in _run(2):
        off(name, doc)
    assert [n for n, _ in writer.seen] == ["start", "stop"]
    assert len(off.errors) == 2 and "Tiled said no" in off.errors[0]
    assert "failed on a event document" in caplog.text
    off.close(5)


def test_a_stuck_writer_makes_the_stop_give_up_after_the_timeout(caplog):
    release = threading.Event()
    off = OffLoopWriter(lambda name, doc: release.wait(10), drain_timeout=0.2)
    off("start", {"uid": "s"})
    t0 = time.monotonic()
    off("stop", {"uid": "t", "run_start": "s"})
    assert 0.2 <= time.monotonic() - t0 < 2
    assert "has not written run s within 0.2 s" in off.errors[0] and "run s" in caplog.text
    release.set()
    assert off.close(5)
    with pytest.raises(RuntimeError, match="closed"):
        off("start", {"uid": "x"})
