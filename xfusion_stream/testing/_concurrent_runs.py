"""Several runs written into one Tiled at the same time, and a check that each kept
every row exactly once: what reprocess workers, or a viewer reading while fusion
writes, do to a server. Writers are threads, each with its own Tiled client and
TiledWriter; a small ``batch_size`` makes many appends, so they overlap."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConcurrentRuns", "small_run", "write_runs_at_once"]


@dataclass
class ConcurrentRuns:
    """What the writers did: the uids of the runs they finished, their errors."""

    rows: int
    uids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def wrong_runs(self, client: Any) -> dict[str, list[int]]:
        """uid -> the ``index`` column Tiled holds, for each run whose column is not
        0..rows-1 once each (rows lost, stored twice, or from another run)."""
        wrong = {}
        for uid in self.uids:
            stored = [int(i) for i in client[uid]["primary"]["index"].read()]
            if stored != list(range(self.rows)):
                wrong[uid] = stored
        return wrong


def small_run(
    rows: int, *, stream: str = "primary", metadata: dict[str, Any] | None = None
) -> list[tuple[str, dict]]:
    """The documents of a run of ``rows`` events in ``stream`` (``index`` 0..rows-1 and
    a ``value``), from its start to its stop."""
    from event_model import compose_run

    bundle = compose_run(metadata=metadata or {})
    keys = {
        "index": {"source": "test", "dtype": "integer", "shape": []},
        "value": {"source": "test", "dtype": "number", "shape": []},
    }
    descriptor = bundle.compose_descriptor(name=stream, data_keys=keys)
    docs: list[tuple[str, dict]] = [
        ("start", dict(bundle.start_doc)),
        ("descriptor", dict(descriptor.descriptor_doc)),
    ]
    for i in range(rows):
        data = {"index": i, "value": i / rows}
        now = time.time()
        event = descriptor.compose_event(data=data, timestamps=dict.fromkeys(data, now))
        docs.append(("event", dict(event)))
    return [*docs, ("stop", dict(bundle.compose_stop()))]


def _write(uri: str, worker: int, runs: int, rows: int, batch: int, out: ConcurrentRuns) -> None:
    from tiled.client import from_uri

    from ..publishing import make_tiled_writer

    client = from_uri(uri)
    try:
        for _ in range(runs):
            writer = make_tiled_writer(client, batch_size=batch)
            docs = small_run(rows, metadata={"writer": worker})
            for name, doc in docs:
                writer(name, doc)
            out.uids.append(docs[0][1]["uid"])
    except Exception as exc:  # noqa: BLE001 - the test reports every writer's failure
        out.errors.append(f"writer {worker}: {exc!r}")
    finally:
        client.context.close()


def write_runs_at_once(
    uri: str, *, writers: int = 4, runs: int = 3, rows: int = 8, batch_size: int = 2
) -> ConcurrentRuns:
    """``writers`` threads each write ``runs`` runs of ``rows`` events (``batch_size``
    rows per append) into the Tiled node at ``uri`` (API key included), all at once."""
    out = ConcurrentRuns(rows=rows)
    threads = [
        threading.Thread(
            target=_write, args=(uri, k, runs, rows, batch_size, out), name=f"writer-{k}"
        )
        for k in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out
