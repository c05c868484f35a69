"""A RunEngine subscription that writes from a thread of its own, in order.

Why: bluesky calls its subscriptions on the RunEngine's event loop, so a TiledWriter's
HTTP requests made there (a StreamResource creates array nodes, a batch of events is
one request) stop the loop. During a burst over Channel Access that measured 1.2-2.7 s
(``xfusion bench event_loop``); the cameras' own coroutines and any monitor wait that
long. ``OffLoopWriter`` queues each document and calls the writer from its thread.

A raw run must still be whole in Tiled when ``RE(plan)`` returns, as it was when the
writer ran on the loop: the stop document waits (at most ``drain_timeout``) until every
document before it was written. Raw documents are never dropped: a full queue holds
the RunEngine back instead (back-pressure, like a slow callback on the loop).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ._doubled import mark_doubled_rows
from ._tiled_sink import is_tiled_writer

__all__ = ["OffLoopWriter"]

logger = logging.getLogger(__name__)


class OffLoopWriter:
    """``writer`` called for every document from one thread of its own, in order.

    ``max_documents`` queued documents hold the caller back; ``drain_timeout`` bounds
    how long a stop waits for the run before it. A document the writer raises on is
    logged with its run and counted (``errors``), never raised into the RunEngine.
    """

    def __init__(
        self,
        writer: Callable[[str, dict], Any],
        *,
        label: str = "raw TiledWriter",
        max_documents: int = 4096,
        drain_timeout: float = 120.0,
    ) -> None:
        if max_documents < 1:
            raise ValueError("the queue must hold at least one document")
        self.writer = writer
        #: a TiledWriter's client: its runs are read back when it had to re-send rows
        self._tiled = writer.client if is_tiled_writer(writer) else None  # type: ignore[attr-defined]
        self.label = label
        self.max_documents = int(max_documents)
        self.drain_timeout = float(drain_timeout)
        self.errors: list[str] = []
        self._queue: collections.deque[tuple[str, dict]] = collections.deque()
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<{self.label} (own thread)>"

    def __call__(self, name: str, doc: dict) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.label} is closed")
            while len(self._queue) >= self.max_documents:
                self._cond.wait()
            self._queue.append((name, doc))
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"xfusion-{self.label}", daemon=True
                )
                self._thread.start()
        if name == "stop":
            self.drain(self.drain_timeout, f"run {doc.get('run_start')}")

    def drain(self, timeout: float, what: str = "its documents") -> bool:
        """Wait until every queued document was written (at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    message = (
                        f"{self.label} has not written {what} within {timeout:g} s "
                        f"({len(self._queue)} documents still queued)"
                    )
                    logger.error("%s", message)
                    self.errors.append(message)
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Write what is queued (at most ``timeout`` s), then end the thread."""
        done = self.drain(timeout, "the documents queued at close")
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and done:
            thread.join(timeout)
        return done

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                name, doc = self._queue.popleft()
                self._busy = True
                self._cond.notify_all()  # room in the queue
            try:
                self.writer(name, doc)
                if name == "stop":
                    self._check_rows(doc)
            except Exception as exc:  # noqa: BLE001 - logged and counted, never raised
                message = f"{self.label} failed on a {name} document: {exc!r}"
                logger.error("%s", message)
                self.errors.append(message)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _check_rows(self, stop: dict) -> None:
        """A TiledWriter's run read back when it had to send an append again: rows found
        twice are an error of this writer, and marked in Tiled (``mark_doubled_rows``)."""
        if self._tiled is None:
            return
        uid = stop.get("run_start", "")
        if doubled := mark_doubled_rows(self._tiled, uid):
            message = (
                f"{self.label}: Tiled holds rows of run {uid} twice ({doubled}): "
                "TiledWriter sent appends again whose answers were lost"
            )
            logger.error("%s", message)
            self.errors.append(message)
