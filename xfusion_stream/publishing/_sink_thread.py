"""One delivery thread per fused-run sink: a slow or dead sink never stalls another.

Why: the workers of a session used to call every sink in turn behind one lock, so a
Tiled server retrying (~25 s per run) stalled the 0MQ output and the model with it.
A :class:`SinkThread` takes documents into a bounded queue without blocking and calls
its sink from a thread of its own, in order. A sink that fails, or falls so far behind
that its queue is full, is given up for the rest of that run only, and says so per run
(``errors``/``delivered``) for the run's result.

A run whose stop has not reached the sink ``delivery_timeout`` s after it was composed
(a server that accepts the connection and never answers, or answers very slowly) is
reported as not delivered. Where the sink keeps the run elsewhere (``_kept``: the
Tiled sink's spool) it is also given up: its queued documents are skipped, and it is
re-ingested from there; a sink that keeps nothing gets the documents late, in order.
``close`` waits (bounded) only for documents it may still deliver, never for a call
stuck on a run already given up.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "DEFAULT_DELIVERY_TIMEOUT",
    "DEFAULT_QUEUE_BYTES",
    "DEFAULT_QUEUE_DOCUMENTS",
    "DeliveringSink",
    "SinkThread",
    "document_bytes",
]

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_DOCUMENTS = 1024
DEFAULT_QUEUE_BYTES = 1 << 30  # 1 GiB of arrays waiting per sink
DEFAULT_DELIVERY_TIMEOUT = 120.0  # > Tiled's own retry budget (45 s per request)
_DROPPED_KEPT = 1024


@runtime_checkable
class DeliveringSink(Protocol):
    """A sink that delivers on its own: ``submit`` never blocks; ``delivered`` waits
    (bounded) until the run's stop was delivered or given up, and says what failed."""

    def submit(self, run: str, name: str, doc: dict) -> None: ...

    def errors(self, run: str) -> list[str]: ...

    def delivered(self, run: str, timeout: float | None = None) -> list[str]: ...


def document_bytes(doc: dict) -> int:
    """The array bytes a document holds (its event data), plus a little for the rest."""
    data = doc.get("data")
    size = 512
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, np.ndarray):
                size += value.nbytes
    return size


@dataclass
class _RunState:
    errors: list[str] = field(default_factory=list)
    abandoned: bool = False
    ending: bool = False  # its stop is being finished (``_end``): moments from done
    done: threading.Event = field(default_factory=threading.Event)


#: how long ``delivered`` waits for a stop that is being finished when its time ran out
_ENDING_WAIT = 10.0


class SinkThread:
    """``sink`` called from one thread of its own, fed through a bounded queue.

    ``max_documents``/``max_bytes`` bound the queue: a document that does not fit gives
    the sink up for the rest of its run (recorded), never blocks the caller.
    ``delivery_timeout`` bounds ``delivered``. The thread starts with the first document.
    """

    def __init__(
        self,
        sink: Callable[[str, dict], Any],
        *,
        label: str | None = None,
        max_documents: int = DEFAULT_QUEUE_DOCUMENTS,
        max_bytes: int = DEFAULT_QUEUE_BYTES,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
    ) -> None:
        if max_documents < 1 or max_bytes < 1:
            raise ValueError("a sink's queue must hold at least one document")
        self.sink = sink
        self.label = label or f"sink {type(sink).__name__}"
        self.max_documents = int(max_documents)
        self.max_bytes = int(max_bytes)
        self.delivery_timeout = float(delivery_timeout)
        self.delivered_documents = 0
        self._queue: collections.deque[tuple[str, str, dict, int]] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._runs: dict[str, _RunState] = {}
        # runs given up and already reported: documents of theirs still queued are skipped
        self._dropped: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = False  # close() ran out of time: the thread ends after its call
        self._busy: str | None = None  # the run whose document the sink has now

    def __repr__(self) -> str:
        return f"<{self.label} (own thread)>"

    # ---- producer side (fusion workers) ---------------------------------------------
    def submit(self, run: str, name: str, doc: dict) -> None:
        """Queue ``doc`` of fused run ``run``; never blocks, never raises."""
        state = self._state(run)
        try:
            self._accept(run, name, doc)
        except Exception as exc:  # noqa: BLE001 - recorded for the run, never raised
            self._give_up(run, state, f"{self.label} refused a {name}: {exc!r}")
        size = document_bytes(doc)
        refused = ""
        with self._cond:
            if not state.abandoned and (self._closed or self._full(size)):
                refused = "is closed" if self._closed else self._behind()
            elif not state.abandoned:  # queued: the delivery thread ends the run
                self._queue.append((run, name, doc, size))
                self._bytes += size
                self._cond.notify()
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name=f"xfusion-{self.label}", daemon=True
                    )
                    self._thread.start()
                return
        if refused:
            message = f"{self.label} {refused}: the rest of fused run {run} is not sent to it"
            self._give_up(run, state, message)
        if name == "stop":
            self._end(run, state)

    def _full(self, size: int) -> bool:
        return len(self._queue) >= self.max_documents or (
            bool(self._queue) and self._bytes + size > self.max_bytes
        )

    def _behind(self) -> str:
        mib = self._bytes / 2**20
        return f"fell behind ({len(self._queue)} documents, {mib:.0f} MiB queued)"

    def errors(self, run: str) -> list[str]:
        """What failed for ``run`` so far (a snapshot; delivery may still be going on)."""
        state = self._runs.get(run)
        return list(state.errors) if state is not None else []

    def delivered(self, run: str, timeout: float | None = None) -> list[str]:
        """Wait until ``run``'s stop was delivered or given up (at most ``timeout``, default
        ``delivery_timeout``); the run's errors, one more if time ran out."""
        state = self._runs.get(run)
        if state is None:
            return []
        wait = self.delivery_timeout if timeout is None else timeout
        if not state.done.wait(wait):
            message = f"{self.label}: fused run {run} not delivered within {wait:g} s"
            self._timed_out(run, state, message)
        self._runs.pop(run, None)
        if state.abandoned:
            self._forget(run)
        return list(state.errors)

    def _timed_out(self, run: str, state: _RunState, message: str) -> None:
        """``run``'s stop did not reach the sink in time: say so; give the run up when
        the sink keeps it elsewhere (its queued documents are then skipped)."""
        if self._kept(run):
            if not self._give_up(run, state, message, unless_ending=True) and state.ending:
                state.done.wait(_ENDING_WAIT)  # delivered just now: nothing to report
            return
        logger.error("%s", message)
        state.errors.append(message)

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued (at most ``timeout`` s), then end the thread.

        Returns True when nothing deliverable is left: a thread still stuck in a call
        for a run already given up (and kept elsewhere) is not waited for; it ends once
        that call returns. After ``timeout`` whatever is still queued is not delivered.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        deadline = time.monotonic() + timeout
        while thread.is_alive() and self._work_left():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            thread.join(min(left, 0.05))
        done = not thread.is_alive() or not self._work_left()
        if thread.is_alive():
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
        return done

    def _work_left(self) -> bool:
        """Documents queued for a run not given up, or a call in the sink that is not
        stuck on a run given up and kept elsewhere."""
        with self._cond:
            busy = self._busy
            if busy is not None and (self._live(busy) or not self._kept(busy)):
                return True
            return any(self._live(item[0]) for item in self._queue)

    def _live(self, run: str) -> bool:
        """Documents of ``run`` are still to be delivered (not given up)."""
        if run in self._dropped:
            return False
        state = self._runs.get(run)  # None: reported late, delivered late
        return state is None or not state.abandoned

    # ---- hooks for subclasses (a spooled Tiled sink) ------------------------------------
    def _accept(self, run: str, name: str, doc: dict) -> None:
        """Called in the producer's thread before queueing (e.g. write a spool)."""

    def _deliver(self, run: str, name: str, doc: dict) -> None:
        self.sink(name, doc)

    def _gave_up(self, run: str) -> None:
        """Called once when the sink is given up for ``run`` (any thread)."""

    def _finished(self, run: str, ok: bool) -> None:
        """Called once per run when its stop was delivered (``ok``) or given up."""

    def _kept(self, run: str) -> str:
        """Where the run's documents are kept although this sink lost them ('' : nowhere)."""
        return ""

    # ---- delivery thread ------------------------------------------------------------------
    def _state(self, run: str) -> _RunState:
        state = self._runs.get(run)
        if state is None:
            state = self._runs.setdefault(run, _RunState())
        return state

    def _note(self, run: str, message: str) -> None:
        """Record an error for ``run`` without giving the sink up for it."""
        logger.error("%s", message)
        self._state(run).errors.append(message)

    def _give_up(
        self, run: str, state: _RunState, message: str, *, unless_ending: bool = False
    ) -> bool:
        """Give the sink up for ``run`` (once); False if it was already, or (with
        ``unless_ending``) if the run's stop is being finished right now."""
        with self._cond:
            if state.abandoned or (unless_ending and state.ending):
                return False
            state.abandoned = True
        message += self._kept(run)
        logger.error("%s", message)
        state.errors.append(message)
        self._safely(self._gave_up, run)
        return True

    def _forget(self, run: str) -> None:
        """``run`` is given up and reported: documents of it still queued are skipped."""
        with self._cond:
            self._dropped[run] = None
            while len(self._dropped) > _DROPPED_KEPT:
                self._dropped.popitem(last=False)

    def _end(self, run: str, state: _RunState | None) -> None:
        with self._cond:
            ok = state is None or not state.abandoned
            if state is not None:
                state.ending = True
        self._safely(self._finished, run, ok)
        if state is not None:
            state.done.set()

    def _next(self) -> tuple[str, str, dict, int] | None:
        with self._cond:
            self._busy = None
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue or self._stopping:
                return None
            item = self._queue.popleft()
            self._bytes -= item[3]
            self._busy = item[0]
            return item

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            run, name, doc, _ = item
            state = self._runs.get(run)
            if state is None and run in self._dropped:  # given up and reported already
                if name == "stop":
                    self._safely(self._finished, run, False)
                continue
            if state is None or not state.abandoned:
                try:
                    self._deliver(run, name, doc)
                    self.delivered_documents += 1
                except Exception as exc:  # noqa: BLE001 - the sink is given up for this run
                    if state is None:  # reported already (timed out): skip the rest quietly
                        state = _RunState()
                        self._forget(run)
                    self._give_up(run, state, f"{self.label} failed on {name}: {exc!r}")
            if name == "stop":
                self._end(run, state)

    def _safely(self, hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args)
        except Exception:  # noqa: BLE001 - a hook must not end the delivery thread
            logger.exception("%s: a step after delivery failed", self.label)
