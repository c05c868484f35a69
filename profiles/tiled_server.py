"""The server side of xfusion's Tiled: Tiled's catalog with a table store that serves
one request thread at a time.

Why: Tiled keeps event columns in a DuckDB file and gives every request thread the same
DuckDB connection at once (a ``StaticPool``). Two runs written at once (reprocess
workers, a viewer reading while fusion writes) then share one transaction: one thread's
commit commits another's half-written rows, the other's commit fails ("No active
transaction"), its request answers 500, TiledWriter forces a retry of the append and
the rows are stored twice; a reset's rollback can undo rows a third thread was told
were written. A pool of exactly one connection makes the other threads wait their turn
instead; each use is a few milliseconds. (SQLite is no way out: Tiled's SQLite store
has no list columns, which fused runs carry.)

Used by ``EmbeddedTiled`` and by the facility config ``tiled/config.yml``
(``tree: xfusion_profiles.tiled_server:catalog``). Imports only what a Tiled server
already has (Tiled, SQLAlchemy), and only when called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["catalog", "serialize_table_storage"]


def serialize_table_storage(storage: Any, *, timeout: float = 300.0) -> bool:
    """Give Tiled's DuckDB ``storage`` a pool of one connection; True if it was one.

    Anything else (a PostgreSQL store with a real pool, a file folder, None) is left as
    it is. ``timeout``: how long a request waits for its turn before it fails.
    """
    if getattr(storage, "dialect", None) != "duckdb" or not hasattr(storage, "_adbc_connection"):
        return False
    import sqlalchemy.pool

    # ``_connection_pool`` is a functools.cached_property: replace the cached value
    old = storage.__dict__.pop("_connection_pool", None)
    if old is not None:
        old.dispose()
    storage.__dict__["_connection_pool"] = sqlalchemy.pool.QueuePool(
        storage._adbc_connection.adbc_clone, pool_size=1, max_overflow=0, timeout=timeout
    )
    return True


def catalog(uri: str, **kwargs: Any) -> Any:
    """``tiled.catalog.from_uri(uri, **kwargs)`` (what ``tree: catalog`` gives), its
    DuckDB table stores serialized."""
    from tiled.catalog import from_uri

    adapter = from_uri(uri, **kwargs)
    for storage in adapter.context.writable_storage.values():
        serialize_table_storage(storage)
    return adapter
