"""Runs written into the embedded Tiled at the same time keep every row exactly once.

Tiled's stock table store (DuckDB) hands every request thread one shared connection;
two runs written at once shared a transaction, so a commit failed, TiledWriter forced a
retry and the rows were stored twice (a CI run read 36 index rows beside 12 fused
frames), or were rolled back by another thread. ``EmbeddedTiled`` gives the store to
one thread at a time (``serialize_table_storage``).
"""

from __future__ import annotations

import threading

import pytest
from xfusion_profiles.tiled_server import serialize_table_storage

from xfusion_stream.publishing import EmbeddedTiled
from xfusion_stream.testing import write_runs_at_once


def _duckdb_storage(path):
    from tiled.storage import EmbeddedSQLStorage

    return EmbeddedSQLStorage(uri=f"duckdb:///{path}")


def _second_checkout(storage, got: threading.Event, release: threading.Event) -> None:
    conn = storage.connect()
    got.set()
    release.wait(10)
    conn.close()


def test_the_stock_duckdb_store_shares_one_connection_between_threads(tmp_path):
    """What the fix is for: as Tiled makes it, a second thread gets the store while
    the first still holds it (if Tiled stops doing this, the fix can go)."""
    storage = _duckdb_storage(tmp_path / "stock.duckdb")
    try:
        first = storage.connect()
        got, release = threading.Event(), threading.Event()
        thread = threading.Thread(target=_second_checkout, args=(storage, got, release))
        thread.start()
        assert got.wait(5), "the stock pool made the second thread wait"
        release.set()
        thread.join(10)
        first.close()
    finally:
        storage.dispose()


def test_a_serialized_store_makes_the_second_thread_wait_its_turn(tmp_path):
    storage = _duckdb_storage(tmp_path / "serial.duckdb")
    try:
        assert serialize_table_storage(storage) is True
        first = storage.connect()
        got, release = threading.Event(), threading.Event()
        thread = threading.Thread(target=_second_checkout, args=(storage, got, release))
        thread.start()
        assert not got.wait(0.5), "a second thread got the store while the first held it"
        first.close()
        assert got.wait(10), "the second thread never got the store back"
        release.set()
        thread.join(10)
        # the store still works after the swap: a query on the one connection
        with storage.connect() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 41 + 1")
            assert cursor.fetchone() == (42,)
    finally:
        storage.dispose()


def test_only_duckdb_stores_are_touched():
    class NotDuckdb:
        dialect = "postgresql"

    assert serialize_table_storage(NotDuckdb()) is False
    assert serialize_table_storage(None) is False


def test_the_embedded_server_serializes_its_table_store(tiled_server):
    assert tiled_server.serialized_tables is True


@pytest.mark.timeout(180)
def test_runs_written_at_once_into_the_embedded_server_keep_each_row_once(tmp_path):
    with EmbeddedTiled(tmp_path / "tiled") as server:
        out = write_runs_at_once(server.uri, writers=4, runs=3, rows=8, batch_size=2)
        assert out.errors == []
        assert len(out.uids) == 12
        assert out.wrong_runs(server.client()) == {}
