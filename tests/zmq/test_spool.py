"""Issue 13 item 4: nothing announced is lost.

- Tiled down during a run: the 0MQ output still arrives at once, the spool on disk
  holds the fused run, and when Tiled is back (a session starting, a run Tiled takes,
  or the sink's own retries) the run is re-ingested whole, its frames equal to an
  uninterrupted run's;
- a session abandoned mid-run (what ``kill -9`` leaves: a spool file without a stop, a
  partial run in Tiled) is completed by ``recover_partial_runs`` under the same fused
  uid, frames equal to the uninterrupted run, or closed with ``abort`` and the reason
  when its raw run is not in Tiled;
- the spool format: msgpack records with a length and a CRC; a torn tail is ignored.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from xfusion_stream.app import FusionSession, recover_partial_runs
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.publishing import (
    FUSED_PREFIX,
    ProxyThread,
    Spool,
    append_to_spool,
    dispatch_in_thread,
    iter_spool,
    make_publisher,
    make_remote_dispatcher,
    make_tiled_writer,
    reingest_spool,
    spool_files,
    spool_status,
    stop_dispatcher,
)
from xfusion_stream.testing import DocumentLog, feed, flaky_tiled_client, fused_frames, wait_until


@pytest.fixture
def reference(tiled_server, inline_run, fuzz_model, fuzz_calibration, fresh_uids):
    """The fused frames of an uninterrupted run of ``inline_run``, as Tiled holds them."""
    client = tiled_server.client()
    session = FusionSession(
        fuzz_model, fuzz_calibration, [make_tiled_writer(client)], FusionConfig()
    )
    feed(session.router(), fresh_uids(inline_run))
    result = session.wait(60)
    assert result is not None and result.ok, result
    session.close()
    return fused_frames(client, result.fused_uid)


class Arrivals:
    """Fused documents from 0MQ, with when each arrived."""

    def __init__(self) -> None:
        self.log = DocumentLog()
        self.times: list[float] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.log(name, doc)
        self.times.append(time.monotonic())


def test_tiled_down_spools_the_run_and_reingests_it_when_tiled_is_back(
    tiled_server,
    reference,
    inline_run,
    fuzz_model,
    fuzz_calibration,
    fresh_uids,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setattr("tiled.client.utils.TILED_RETRY_ATTEMPTS", 3)  # fail in ~1 s
    client, tiled_link = flaky_tiled_client(tiled_server.uri)
    direct = tiled_server.client()
    spool_dir = tmp_path / "spool"
    session = FusionSession(
        fuzz_model,
        fuzz_calibration,
        [make_tiled_writer(client)],
        FusionConfig(),
        spool_dir=spool_dir,
    )
    arrivals = Arrivals()
    with ProxyThread() as proxy:
        listener = make_remote_dispatcher(proxy.out_address, FUSED_PREFIX)
        listening = dispatch_in_thread(listener, arrivals)
        publisher = make_publisher(proxy.in_address, FUSED_PREFIX)
        try:
            time.sleep(0.5)  # slow joiner
            tiled_link.down()
            router = session.router([publisher])
            docs = fresh_uids(inline_run)
            feed(router, docs)
            raw_stop_at = time.monotonic()
            wait_until(lambda: arrivals.log.of("stop"), 30, "the fused stop on 0MQ")
            result = session.wait(60)
        finally:
            stop_dispatcher(listener, listening)
            session.close()  # the 0MQ publisher's thread too, before the socket goes
            publisher.close()
    # 0MQ: the whole fused run, promptly, although Tiled was failing meanwhile
    assert len(arrivals.log.events()) == 10 and arrivals.times[-1] - raw_stop_at < 10
    assert result is not None and result.frames == 10 and result.exit_status == "success"
    assert result.ok is False and "kept in the spool" in (result.problem or "")
    (spooled,) = spool_files(spool_dir)
    status = spool_status(spooled)
    assert status.complete and status.uid == result.fused_uid and status.documents == 14
    assert result.fused_uid not in direct or "stop" not in direct[result.fused_uid].metadata

    # Tiled is back: the next run it takes triggers the re-ingest of the spooled one
    tiled_link.up()
    later = FusionSession(
        fuzz_model,
        fuzz_calibration,
        [make_tiled_writer(client)],
        FusionConfig(),
        spool_dir=spool_dir,
    )
    later.tiled.wait_reingest(30)  # the start-up re-ingest
    wait_until(lambda: not spool_files(spool_dir), 30, "the spool to empty")
    np.testing.assert_array_equal(fused_frames(direct, result.fused_uid), reference)
    assert later.tiled.reingested == [result.fused_uid]
    later.close()
    tiled_link.down()


def test_the_spool_is_reingested_by_itself_once_tiled_is_back(
    tiled_server, inline_run, fuzz_model, fuzz_calibration, fresh_uids, tmp_path, monkeypatch
):
    monkeypatch.setattr("tiled.client.utils.TILED_RETRY_ATTEMPTS", 2)
    client, tiled_link = flaky_tiled_client(tiled_server.uri)
    spool_dir = tmp_path / "spool"
    session = FusionSession(
        fuzz_model, fuzz_calibration, [make_tiled_writer(client)], spool_dir=spool_dir
    )
    session.tiled.retry_after = 0.0  # try Tiled again at once for the next run
    router = session.router()
    tiled_link.down()
    feed(router, fresh_uids(inline_run))
    first = session.wait(60)
    assert first is not None and not first.ok and len(spool_files(spool_dir)) == 1
    tiled_link.up()
    feed(router, fresh_uids(inline_run))
    second = session.wait(60)
    assert second is not None and second.ok, second
    assert session.tiled.wait_reingest(30) and not spool_files(spool_dir)
    assert session.tiled.reingested == [first.fused_uid]
    direct = tiled_server.client()
    for r in (first, second):
        assert len(fused_frames(direct, r.fused_uid)) == 10
    session.close()
    tiled_link.down()


def _abandoned_run(session: FusionSession, docs, spool_dir) -> str:
    """Feed a raw run but its last event and its stop (the process "died" there)."""
    assert [n for n, _ in docs[-2:]] == ["event", "stop"]
    feed(session.router(), docs[:-2])
    # every window the callback handed over is fused before the "crash": a window still
    # in the worker's hands was emitted (and spooled) after the count below, under load
    (callback,) = session._callbacks
    worker = callback.worker
    assert worker is not None and callback.windows_submitted > 0
    fused = worker.composer
    wait_until(lambda: fused.n_events + fused.n_gaps >= callback.windows_submitted, 60, "fused")
    wait_until(lambda: spool_files(spool_dir), 30, "a spool file")
    (path,) = spool_files(spool_dir)
    in_spool = 3 + fused.n_events + fused.n_gaps  # start and two descriptors first
    wait_until(lambda: spool_status(path).documents == in_spool, 30, "the fused rows spooled")
    tiled = session.tiled
    assert tiled is not None
    wait_until(lambda: tiled.delivered_documents == spool_status(path).documents, 30, "Tiled")
    session.close()  # "kill -9": its threads write nothing more (the worker waits forever)
    return spool_status(path).uid


def test_a_run_cut_off_mid_way_is_completed_under_its_uid(
    tiled_server, reference, inline_run, fuzz_model, fuzz_calibration, fresh_uids, tmp_path
):
    direct = tiled_server.client()
    docs = fresh_uids(inline_run)
    feed(make_tiled_writer(direct), docs)  # the raw run, as the beamline stored it
    spool_dir = tmp_path / "spool"
    crashed = FusionSession(
        fuzz_model,
        fuzz_calibration,
        [make_tiled_writer(direct, batch_size=1)],
        spool_dir=spool_dir,
    )
    fused_uid = _abandoned_run(crashed, docs, spool_dir)
    wait_until(lambda: fused_uid in direct, 10, "the partial run in Tiled")
    assert "stop" not in direct[fused_uid].metadata  # what kill -9 left in Tiled

    restarted = FusionSession(
        fuzz_model, fuzz_calibration, [make_tiled_writer(direct)], spool_dir=spool_dir
    )
    report = recover_partial_runs(restarted, timeout=60)
    assert report.completed == {fused_uid: "success"} and not report.failed
    assert not spool_files(spool_dir)
    np.testing.assert_array_equal(fused_frames(direct, fused_uid), reference)
    start = direct[fused_uid].metadata["start"]
    assert start["raw_uid"] == docs[0][1]["uid"] and "recovered" in start
    restarted.close()


def test_a_run_cut_off_without_its_raw_run_is_closed_with_abort(
    tiled_server, inline_run, fuzz_model, fuzz_calibration, fresh_uids, tmp_path
):
    direct = tiled_server.client()
    docs = fresh_uids(inline_run)  # the raw run never reached Tiled
    spool_dir = tmp_path / "spool"
    crashed = FusionSession(
        fuzz_model, fuzz_calibration, [make_tiled_writer(direct)], spool_dir=spool_dir
    )
    fused_uid = _abandoned_run(crashed, docs, spool_dir)
    n_spooled = sum(1 for n, _ in iter_spool(spool_files(spool_dir)[0]) if n == "event")
    restarted = FusionSession(
        fuzz_model, fuzz_calibration, [make_tiled_writer(direct)], spool_dir=spool_dir
    )
    report = recover_partial_runs(restarted, timeout=60)
    assert list(report.closed) == [fused_uid] and not report.completed
    run = direct[fused_uid]
    stop = run.metadata["stop"]
    assert stop["exit_status"] == "abort" and "is not in Tiled" in stop["reason"]
    assert sum(stop["num_events"].values()) == n_spooled > 0
    assert not spool_files(spool_dir)
    restarted.close()


def test_spool_records_survive_a_torn_tail(tmp_path):
    spool = Spool(tmp_path, sync_every=2)
    docs = [
        ("start", {"uid": "r1", "time": 1.0}),
        ("event", {"uid": "e1", "data": {"img": np.arange(6.0).reshape(2, 3)}, "seq_num": 1}),
        ("stop", {"uid": "s1", "run_start": "r1", "exit_status": "success"}),
    ]
    for name, doc in docs:
        spool.append("r1", name, doc)
    path = spool.path("r1")
    back = list(iter_spool(path))
    assert [n for n, _ in back] == ["start", "event", "stop"]
    np.testing.assert_array_equal(back[1][1]["data"]["img"], docs[1][1]["data"]["img"])
    assert spool_status(path).complete
    data = path.read_bytes()
    path.write_bytes(data[:-5])  # power cut in the middle of the stop
    assert [n for n, _ in iter_spool(path)] == ["start", "event"]
    assert not spool_status(path).complete and spool_status(path).documents == 2
    flipped = bytearray(data)
    flipped[40] ^= 0xFF  # a corrupt record: it and the rest are not trusted
    path.write_bytes(bytes(flipped))
    assert len(list(iter_spool(path))) < 3


def test_reingest_replaces_a_partial_run_in_tiled(tiled_server, tmp_path):
    from event_model import compose_run

    client = tiled_server.client()
    bundle = compose_run(metadata={"purpose": "fused"})
    desc = bundle.compose_descriptor(
        name="fused", data_keys={"x": {"dtype": "number", "shape": [], "source": "t"}}
    )
    docs = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    docs += [
        ("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": 0.0})) for i in range(5)
    ]
    docs.append(("stop", bundle.compose_stop()))
    partial = make_tiled_writer(client, batch_size=1)
    feed(partial, docs[:4])  # start, descriptor, two rows: then Tiled "went away"
    spool = Spool(tmp_path)
    for name, doc in docs:
        spool.append(bundle.start_doc["uid"], name, doc)
    report = reingest_spool(tmp_path, client)
    assert report.runs == [bundle.start_doc["uid"]] and report.documents == len(docs)
    run = client[bundle.start_doc["uid"]]
    assert list(run["fused"]["x"].read()) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert run.metadata["stop"]["exit_status"] == "success" and not spool_files(tmp_path)


def test_records_after_a_spooled_stop_are_not_written(tiled_server, tmp_path, caplog):
    """A writer still holding the file appended a row after the stop recovery added:
    TiledWriter failed the whole run with a KeyError of the descriptor's uid."""
    from event_model import compose_run

    from xfusion_stream.publishing import write_spooled_run

    client = tiled_server.client()
    bundle = compose_run(metadata={"purpose": "fused"})
    desc = bundle.compose_descriptor(
        name="fused", data_keys={"x": {"dtype": "number", "shape": [], "source": "t"}}
    )
    rows = [desc.compose_event(data={"x": float(i)}, timestamps={"x": 0.0}) for i in range(3)]
    docs = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    docs += [("event", row) for row in rows[:2]]
    docs += [("stop", bundle.compose_stop(exit_status="abort")), ("event", rows[2])]
    spool = Spool(tmp_path)
    for name, doc in docs:
        spool.append(bundle.start_doc["uid"], name, doc)
    spool.close()
    assert write_spooled_run(spool.path(bundle.start_doc["uid"]), client) == len(docs) - 1
    run = client[bundle.start_doc["uid"]]
    assert list(run["fused"]["x"].read()) == [0.0, 1.0]
    assert run.metadata["stop"]["exit_status"] == "abort"
    assert "records after the run's stop" in caplog.text


def test_a_spool_file_never_replaces_a_run_that_is_not_fused(tiled_server, tmp_path):
    """A spool file whose start names a raw run already in Tiled made re-ingest delete
    that raw run and write the spooled documents in its place, ``ok``."""
    from event_model import compose_run

    client = tiled_server.client()
    raw = compose_run(metadata={"plan_name": "dual_camera_burst"})
    feed(make_tiled_writer(client), [("start", raw.start_doc), ("stop", raw.compose_stop())])
    uid = raw.start_doc["uid"]
    forged = {**raw.start_doc, "purpose": "fused", "time": raw.start_doc["time"] + 1}
    stop = {"uid": "s", "run_start": uid, "time": 0.0, "exit_status": "success"}
    for name in (uid, "another-name"):  # named after the raw run, or after nothing
        folder = tmp_path / name
        folder.mkdir()
        for kind, doc in (("start", forged), ("stop", stop)):
            append_to_spool(folder / f"{name}.xfspool", kind, doc)
        report = reingest_spool(folder, client)
        assert not report.runs and list(report.failed) == [name], report
        why = report.failed[name]
        assert ("not a fused run" in why) if name == uid else ("names another run" in why)
    assert client[uid].metadata["start"] == raw.start_doc  # the raw run as it was
    assert "stop" in client[uid].metadata


def test_reingest_leaves_runs_being_written_and_runs_without_a_stop(tmp_path):
    spool = Spool(tmp_path)
    spool.append("live", "start", {"uid": "live", "time": 0.0})  # written in this process
    spool.append("live", "stop", {"uid": "s", "run_start": "live", "exit_status": "success"})
    spool.append("cut", "start", {"uid": "cut", "time": 0.0})  # no stop: recovery's job
    spool.release("cut")
    report = reingest_spool(tmp_path, None, skip={"live"})  # Tiled is never asked
    assert sorted(report.left) == ["cut", "live"] and not report.runs and not report.failed
    spool.close()


def test_the_spool_command_writes_waiting_runs_into_tiled(tiled_server, tmp_path, capsys):
    """``xfusion spool`` (the documented re-ingest command) empties the folder into Tiled."""
    import json

    from event_model import compose_run

    from xfusion_stream.cli import main

    bundle = compose_run(metadata={"purpose": "fused"})
    desc = bundle.compose_descriptor(
        name="fused", data_keys={"x": {"dtype": "number", "shape": [], "source": "t"}}
    )
    docs = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    docs += [("event", desc.compose_event(data={"x": 1.0}, timestamps={"x": 0.0}))]
    docs.append(("stop", bundle.compose_stop()))
    spool = Spool(tmp_path)
    for name, doc in docs:
        spool.append(bundle.start_doc["uid"], name, doc)
    spool.close()
    base = ["spool", "--spool-dir", str(tmp_path), "--json"]
    assert main([*base, "--list"]) == 0
    assert len(json.loads(capsys.readouterr().out)["files"]) == 1
    assert main([*base, "--tiled-uri", tiled_server.uri]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    run = tiled_server.client()[bundle.start_doc["uid"]]
    assert run.metadata["stop"]["exit_status"] == "success" and not spool_files(tmp_path)
    assert main(["spool", "--spool-dir", str(tmp_path / "none"), "--tiled-uri", "x"]) == 2
