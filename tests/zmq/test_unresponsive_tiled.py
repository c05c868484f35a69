"""Issue 13 item 4, the quiet outage: a Tiled that accepts connections but never answers,
or answers very slowly.

A refused connection fails at once; a server that takes the request and says nothing
holds the HTTP client for its whole read timeout and retries. Neither the live
FusionCallback nor ``xfusion serve`` may wait for it: after ``delivery_timeout`` the
run's result names the Tiled sink and the spool, the 0MQ stream has had every fused
document all along, the run's documents are in the spool, and once Tiled answers again
they are re-ingested whole.

The fault is a real socket server (``testing.TcpForwarder`` in its ``hang`` and ``slow`` modes): it listens on a port of its own in
front of the session's embedded Tiled and either forwards (Tiled is fine), accepts and
reads but never replies (``hang``), or forwards each request only after a delay
(``slow``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.publishing import (
    FUSED_PREFIX,
    ProxyThread,
    dispatch_in_thread,
    make_publisher,
    make_remote_dispatcher,
    make_tiled_writer,
    spool_files,
    spool_status,
    stop_dispatcher,
)
from xfusion_stream.testing import DocumentLog, TcpForwarder, feed, fused_frames, wait_until


def _client_via(port: TcpForwarder, uri: str, read_timeout: float | None = None):
    """A Tiled client of ``uri``'s server (its API key) through ``port``."""
    import httpx
    from tiled.client import from_uri

    parts = urlsplit(uri)
    via = urlunsplit(parts._replace(netloc=f"127.0.0.1:{port.port}"))
    kw = {} if read_timeout is None else {"timeout": httpx.Timeout(5.0, read=read_timeout)}
    return from_uri(via, **kw)


@pytest.fixture
def tiled_port(tiled_server):
    parts = urlsplit(tiled_server.uri)
    port = TcpForwarder(parts.hostname or "127.0.0.1", parts.port or 80)
    yield port
    port.close()


class _Listening:
    """Fused documents from a 0MQ proxy, in a thread (``stop()`` ends it)."""

    def __init__(self, address: str) -> None:
        self.log = DocumentLog()
        self._dispatcher = make_remote_dispatcher(address, FUSED_PREFIX)
        self._thread = dispatch_in_thread(self._dispatcher, self.log)

    def stop(self) -> None:
        stop_dispatcher(self._dispatcher, self._thread)


def _spooled_session(model, calibration, client, spool_dir, delivery_timeout):
    return FusionSession(
        model,
        calibration,
        [make_tiled_writer(client)],
        FusionConfig(),
        spool_dir=spool_dir,
        delivery_timeout=delivery_timeout,
    )


def test_live_fusion_with_a_tiled_that_never_answers(
    tiled_server, tiled_port, inline_run, fuzz_model, fuzz_calibration, fresh_uids, tmp_path
):
    """The live path (the session's RunRouter, as a RunEngine calls it), with Tiled's
    own client timeouts (30 s a read, retried): the result comes after the delivery
    timeout, 0MQ has every frame, the spool the whole run, and once Tiled answers the
    same session writes the run whole."""
    client = _client_via(tiled_port, tiled_server.uri)
    spool_dir = tmp_path / "spool"
    session = _spooled_session(fuzz_model, fuzz_calibration, client, spool_dir, 2.0)
    with ProxyThread() as proxy:
        heard = _Listening(proxy.out_address)
        publisher = make_publisher(proxy.in_address, FUSED_PREFIX)
        try:
            time.sleep(0.5)  # slow joiner
            tiled_port.set_mode("hang")
            t0 = time.monotonic()
            feed(session.router([publisher]), fresh_uids(inline_run))
            result = session.wait(60)
            took = time.monotonic() - t0
            wait_until(lambda: heard.log.of("stop"), 10, "the fused stop on 0MQ")
            assert tiled_port.connections >= 1  # Tiled was asked, and said nothing
            assert result is not None and result.frames == 10, result
            assert result.exit_status == "success" and took < 2.0 + 20, took
            assert len(heard.log.events()) == 10  # 0MQ: every fused frame, meanwhile
            problem = result.problem or ""
            assert not result.ok and "Tiled: fused run" in problem
            assert "not delivered within 2 s" in problem and "kept in the spool" in problem
            (spooled,) = spool_files(spool_dir)
            status = spool_status(spooled)
            assert status.complete and status.uid == result.fused_uid
            assert status.documents == 14

            # Tiled answers again: the run is written whole from the spool, not from the
            # queue (the documents left there were skipped), by this same session
            tiled_port.set_mode("forward")
            wait_until(lambda: not spool_files(spool_dir), 90, "the spool to empty")
            assert session.tiled is not None and session.tiled.wait_reingest(30)
            assert session.tiled.reingested == [result.fused_uid]
            frames = fused_frames(tiled_server.client(), result.fused_uid)
            assert len(frames) == 10
            delivery = session.delivery()["spool"]
            assert delivery["documents_spooled"] == 14 and delivery["runs_reingested"] == 1
        finally:
            heard.stop()
            session.close(timeout=5.0)
            publisher.close()


def test_live_fusion_with_a_tiled_that_answers_very_slowly(
    tiled_server, tiled_port, inline_run, fuzz_model, fuzz_calibration, fresh_uids, tmp_path
):
    """Every request reaches Tiled 0.4 s late: the run outlasts its delivery timeout, is
    reported so, and still ends up in Tiled whole (re-ingested); ``close`` does not
    wait for the slow call in progress."""
    client = _client_via(tiled_port, tiled_server.uri)
    spool_dir = tmp_path / "spool"
    session = _spooled_session(fuzz_model, fuzz_calibration, client, spool_dir, 1.0)
    log = DocumentLog()
    tiled_port.set_mode("slow", delay=0.4)
    feed(session.router([log]), fresh_uids(inline_run))
    result = session.wait(60)
    assert result is not None and result.frames == 10 and len(log.events()) == 10
    assert not result.ok and "not delivered within 1 s" in (result.problem or "")
    wait_until(lambda: not spool_files(spool_dir), 120, "the slow re-ingest")
    # the spool empties run by run; the re-ingest records its runs when it ends
    assert session.tiled is not None and session.tiled.wait_reingest(60)
    assert session.tiled.reingested == [result.fused_uid]
    assert len(fused_frames(tiled_server.client(), result.fused_uid)) == 10
    t0 = time.monotonic()
    session.close(timeout=30.0)
    assert time.monotonic() - t0 < 10


CLI = [sys.executable, "-c", "import sys; from xfusion_stream.cli import main; sys.exit(main())"]


def test_serve_with_a_tiled_that_never_answers(
    tiled_server,
    tiled_port,
    inline_run,
    fuzz_calibration,
    tiny_checkpoint,
    fresh_uids,
    child_env,
    tmp_path,
):
    """``xfusion serve`` (the real command, in its own process): Tiled goes silent once
    it is serving. It publishes every fused frame on 0MQ, ends promptly after its run,
    exits 1 with a summary naming the Tiled sink and the spool, and ``xfusion spool``
    writes the run into Tiled once it answers."""
    from xfusion_stream.cli import main
    from xfusion_stream.publishing import RAW_PREFIX

    calibration = fuzz_calibration.save(tmp_path / "calibration.json")
    parts = urlsplit(tiled_server.uri)
    via = urlunsplit(parts._replace(netloc=f"127.0.0.1:{tiled_port.port}"))
    spool_dir, ready = tmp_path / "spool", tmp_path / "ready"
    docs = fresh_uids(inline_run)
    with ProxyThread() as proxy:
        heard = _Listening(proxy.out_address)
        command = [
            *CLI, "serve", "--json", "--quiet",
            "--in-address", proxy.in_address, "--out-address", proxy.out_address,
            "--calibration", str(calibration), "--model_file", str(tiny_checkpoint),
            "--tiled-uri", via, "--spool-dir", str(spool_dir),
            "--delivery-timeout", "2", "--max-runs", "1", "--ready-file", str(ready),
        ]  # fmt: skip
        serve = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env
        )
        publisher = make_publisher(proxy.in_address, RAW_PREFIX)
        try:
            wait_until(lambda: ready.exists() or serve.poll() is not None, 120, "serve")
            assert serve.poll() is None, serve.communicate()
            tiled_port.set_mode("hang")
            time.sleep(0.5)  # slow joiner
            for name, doc in docs:
                publisher(name, doc)
            raw_stop_at = time.monotonic()
            out, err = serve.communicate(timeout=120)
            took = time.monotonic() - raw_stop_at
            wait_until(lambda: heard.log.of("stop"), 10, "the fused stop on 0MQ")
        finally:
            publisher.close()
            heard.stop()
            if serve.poll() is None:
                serve.kill()
                serve.communicate()
    assert serve.returncode == 1, err[-3000:]
    assert took < 45, took  # fusion + the 2 s delivery timeout, not Tiled's retries
    assert "Traceback" not in err and tiled_server.api_key not in err + out
    summary = json.loads(out)
    (run,) = summary["runs"]
    assert run["frames"] == 10 and run["exit_status"] == "success" and run["ok"] is False
    assert "not delivered within 2 s" in run["problem"] and "spool" in run["problem"]
    assert summary["delivery"]["spool"]["documents_spooled"] == 14
    assert summary["spool_waiting"] == [run["fused_uid"]]
    assert len(heard.log.events()) == 10  # 0MQ carried on
    (spooled,) = spool_files(spool_dir)
    assert spool_status(spooled).complete

    tiled_port.set_mode("forward")  # Tiled answers again: the documented command
    assert main(["spool", "--spool-dir", str(spool_dir), "--tiled-uri", via, "--json"]) == 0
    assert not spool_files(spool_dir)
    assert len(fused_frames(tiled_server.client(), run["fused_uid"])) == 10


def test_one_spool_file_is_reingested_by_one_writer_at_a_time(tmp_path, monkeypatch):
    """Two re-ingests of one spool in one process (two sessions, or a closed session's
    last pass beside a new one): ``lockf`` does not tell them apart, the claim does."""
    from xfusion_stream.publishing import Spool, reingest_spool

    spool = Spool(tmp_path)
    spool.append("r1", "start", {"uid": "r1", "time": 0.0})
    spool.append("r1", "stop", {"uid": "s1", "run_start": "r1", "exit_status": "success"})
    writing = threading.Event()

    def slow_write(path, client, **kw) -> int:
        writing.set()
        time.sleep(0.5)
        return 2

    monkeypatch.setattr("xfusion_stream.publishing._tiled_sink.write_spooled_run", slow_write)
    reports: list = []
    first = threading.Thread(target=lambda: reports.append(reingest_spool(tmp_path, None)))
    first.start()
    assert writing.wait(10)
    second = reingest_spool(tmp_path, None)  # while the first writes
    first.join(10)
    assert second.left == ["r1"] and not second.runs
    assert reports[0].runs == ["r1"] and not spool_files(tmp_path)
    assert reingest_spool(tmp_path, None).runs == []  # claimed and released: nothing left
