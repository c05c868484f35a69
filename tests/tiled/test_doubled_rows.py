"""A lost answer must not leave a fused run with rows stored twice, reported as fine.

When the answer to an append is lost (a timeout, a cut connection) after Tiled did it,
TiledWriter sends it again and notes that rows "may be duplicated". The Tiled sink then
reads the run back: rows found twice fail the run (not ``ok``), and with a spool the
run is rewritten whole, each row once. The fault is real: a TCP forwarder lets the
server do one append and cuts the connection instead of handing back the answer.
"""

from __future__ import annotations

import contextlib

import pytest

from xfusion_stream.publishing import (
    DOUBLED_KEY,
    OffLoopWriter,
    Spool,
    TiledSink,
    doubled_rows,
    make_tiled_writer,
)
from xfusion_stream.testing import flaky_tiled_client, small_run

APPEND = b"PATCH /api/v1/table/partition/"
ROWS = 6


def _rows(client, uid: str) -> list[int]:
    return [int(v) for v in client[uid]["fused"].base["internal"].read()["seq_num"]]


@pytest.mark.timeout(120)
def test_a_run_written_without_a_lost_answer_has_nothing_doubled(tiled_server):
    client = tiled_server.client()
    writer = make_tiled_writer(client, batch_size=2)
    docs = small_run(ROWS, stream="fused", metadata={"purpose": "fused"})
    for name, doc in docs:
        writer(name, doc)
    uid = docs[0][1]["uid"]
    assert _rows(client, uid) == list(range(1, ROWS + 1))
    assert doubled_rows(client, uid) == ""


def _to_sink(sink, uid: str, name: str, doc: dict) -> None:
    sink.submit(uid, name, doc)


def _to_writer(writer, uid: str, name: str, doc: dict) -> None:
    writer(name, doc)  # a stop returns once the run was written and checked


@contextlib.contextmanager
def _one_answer_lost(tiled_server, make_writer, send):
    """A whole run sent (``send``) to ``make_writer(client)``, whose client reaches
    Tiled through a forwarder that loses the answer to the first append; yields the
    writer, the run's uid and the forwarder; closes them afterwards."""
    client, forwarder = flaky_tiled_client(tiled_server.uri)
    writer = make_writer(client)
    docs = small_run(ROWS, stream="fused", metadata={"purpose": "fused"})
    uid = docs[0][1]["uid"]
    try:
        forwarder.lose_answers(APPEND, 1)
        for name, doc in docs:
            send(writer, uid, name, doc)
        yield writer, uid, forwarder
    finally:
        writer.close()
        forwarder.down()
        client.context.close()


@pytest.mark.timeout(180)
def test_rows_stored_twice_after_a_lost_answer_fail_the_run_and_the_spool_rewrites_it(
    tiled_server, tmp_path
):
    check = tiled_server.client()
    spool = Spool(tmp_path / "spool")

    def make_sink(client):
        return TiledSink(client, batch_size=2, spool=spool, retry_after=0.5)

    with _one_answer_lost(tiled_server, make_sink, _to_sink) as (sink, uid, forwarder):
        errors = sink.delivered(uid, timeout=90)
        assert forwarder.answers_lost == 1
        # the append was done, its answer lost, TiledWriter sent it again: two rows twice
        assert any("twice" in e and "fused/internal: 2 of 8 rows" in e for e in errors), errors
        assert any("kept in the spool" in e for e in errors), errors
        # the spool rewrites the run whole (the sink starts that itself once the run has
        # failed; a pass here catches up if it has not): each row once, the stop recorded
        assert sink.wait_reingest(60)
        report = sink.reingest()
        assert not report.failed and sink.reingested == [uid], (report, sink.reingested)
        assert _rows(check, uid) == list(range(1, ROWS + 1))
        assert check[uid].metadata["stop"]["exit_status"] == "success"
        assert doubled_rows(check, uid) == ""


@pytest.mark.timeout(180)
def test_without_a_spool_the_doubled_run_fails_and_is_marked_in_tiled(tiled_server):
    """Nothing can rewrite it here: the run fails, and its metadata says what is doubled,
    so ``xfusion reprocess`` does not count it as fused already."""
    check = tiled_server.client()

    def make_sink(client):
        return TiledSink(client, batch_size=4)

    with _one_answer_lost(tiled_server, make_sink, _to_sink) as (sink, uid, forwarder):
        errors = sink.delivered(uid, timeout=90)
        assert forwarder.answers_lost == 1
        assert len(errors) == 1 and "fused/internal: 4 of 10 rows" in errors[0], errors
        assert "spool" not in errors[0]
        assert check[uid].metadata[DOUBLED_KEY] == "fused/internal: 4 of 10 rows"


@pytest.mark.timeout(180)
def test_the_raw_writer_reports_and_marks_rows_stored_twice(tiled_server):
    """The RunEngine's raw TiledWriter (behind ``OffLoopWriter``) has no spool to rewrite
    from: the run is marked in Tiled and the writer's errors say what is doubled."""
    check = tiled_server.client()

    def make_raw(client):
        return OffLoopWriter(make_tiled_writer(client, batch_size=3))

    with _one_answer_lost(tiled_server, make_raw, _to_writer) as (off, uid, forwarder):
        assert forwarder.answers_lost == 1
        assert len(off.errors) == 1 and "fused/internal: 3 of 9 rows" in off.errors[0]
        assert check[uid].metadata[DOUBLED_KEY] == "fused/internal: 3 of 9 rows"
