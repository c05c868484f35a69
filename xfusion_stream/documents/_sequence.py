"""Check a document stream's order and references before a router sees it.

Why: event-model's RunRouter trusts its input (an unknown run or descriptor is a
KeyError, a second start a ValueError): escaping into a RunEngine that aborts the
acquisition, into the 0MQ loop it stops the service. :class:`RunGuard` checks each
document against the runs it has seen, passes the good ones on, and turns every
refusal, and every exception of the wrapped callback, into one logged DocumentError.

It bounds what open runs may hold and says what was lost: beyond ``max_open_runs`` the
oldest open run is ended, a run silent for ``idle_timeout`` s is ended, and so is one
whose stop is refused, each with an ``abort`` stop and the reason; a jump in ``seq_num``,
a stop announcing more events than came, a document the callback failed on, and one of
a run whose start never came are losses (``on_loss``, ``losses``, its own logger).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..core import DocumentError
from ..publishing import DOCUMENT_NAMES

__all__ = ["DOCUMENT_NAMES", "RunGuard"]

logger = logging.getLogger(__name__)
loss_logger = logging.getLogger("xfusion_stream.documents.losses")

#: losses remembered for reports (the count ``n_lost`` goes on)
MAX_LOSSES_KEPT = 256
EXIT_STATUSES = ("success", "abort", "fail")  # a stop's, by the event-model schema
MAX_PAGE_ROWS = 100_000  # more than any burst; each row unpacks to an event of its own


def _text(value: Any) -> str:
    return repr(value)[:80]


def _uid(doc: dict[str, Any], name: str, key: str = "uid") -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise DocumentError(name, None, f"{key} must be a non-empty string, got {_text(value)}")
    return value


class _Recent:
    """A set that forgets its oldest members beyond ``size`` (O(1) membership)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[str, None] = {}

    def add(self, item: str) -> None:
        self._items[item] = None
        if len(self._items) > self._size:
            del self._items[next(iter(self._items))]

    def __contains__(self, item: object) -> bool:
        return item in self._items


class _Run:
    """What one open run has announced: the uids later documents may refer to, the
    last ``seq_num`` of each event stream, when it was last heard of."""

    def __init__(self, now: float) -> None:
        self.descriptors: set[str] = set()
        self.resources: set[str] = set()
        self.stream_resources: set[str] = set()
        self.stream_names: dict[str, str] = {}  # descriptor uid -> stream name
        self.seq: dict[str, int] = {}  # descriptor uid -> last seq_num seen
        self.datum_seq: dict[str, int] = {}  # ... a StreamDatum covers (fly scans)
        self.last_seen = now


class RunGuard:
    """``callback(name, doc)`` behind order and reference checks; never raises.

    ``rejected`` counts refused documents (and documents the callback failed on);
    ``recent`` is how many finished run uids are remembered to refuse a replayed start.
    ``max_open_runs``/``idle_timeout`` (None: no limit) bound the open runs; ``on_loss``
    (run uid, message) hears of raw documents lost; ``losses`` keeps the latest, ``n_lost``
    counts them. Thread safe (one lock), so ``expire`` may run from a timer.
    """

    def __init__(
        self,
        callback: Callable[[str, dict], Any],
        *,
        recent: int = 1024,
        max_open_runs: int | None = None,
        idle_timeout: float | None = None,
        on_loss: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_open_runs is not None and max_open_runs < 1:
            raise ValueError(f"max_open_runs must be at least 1, got {max_open_runs}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        self.callback = callback
        self.max_open_runs = max_open_runs
        self.idle_timeout = idle_timeout
        self.on_loss = on_loss
        self.rejected = 0
        self.n_lost = 0
        self.losses: collections.deque[str] = collections.deque(maxlen=MAX_LOSSES_KEPT)
        self.ended: collections.deque[tuple[str, str]] = collections.deque(maxlen=MAX_LOSSES_KEPT)
        self._clock = clock
        self._lock = threading.RLock()
        self._runs: dict[str, _Run] = {}
        self._descriptors: dict[str, str] = {}  # descriptor uid -> run uid
        self._resources: dict[str, str] = {}  # (stream) resource uid -> run uid
        self._unlabeled = _Recent(10_000)  # legacy resources: no run_start
        self._finished = _Recent(recent)
        self._orphans = _Recent(recent)  # runs whose start never came, reported once

    def __call__(self, name: str, doc: Any) -> None:
        with self._lock:
            try:
                self._check(name, doc)
            except DocumentError as exc:
                self._reject(exc)
                ended = name == "stop" and isinstance(doc, dict) and self._run_uid_of(name, doc)
                if ended:
                    self.end_run(ended, f"its stop was refused: {exc}")  # not left open
                return
            self._touch(name, doc)
            try:
                self.callback(name, doc)
            except Exception as exc:  # noqa: BLE001 - nothing may escape into the caller
                uid = doc.get("uid") if isinstance(doc.get("uid"), str) else None
                refused = DocumentError(name, uid, f"{type(exc).__name__}: {exc}"[:300])
                self._reject(refused)
                run_uid = self._run_uid_of(name, doc)  # failed downstream: the run lost it
                if run_uid is not None and name != "stop":
                    self._lost(run_uid, f"run {run_uid}: {refused} (not used)")
            finally:
                if name == "stop":
                    self._close(doc["run_start"])
            if self.idle_timeout is not None:
                self.expire()

    def __repr__(self) -> str:
        return f"RunGuard({self.callback!r})"

    @property
    def open_runs(self) -> list[str]:
        """Uids of the runs started and not yet stopped, oldest first."""
        with self._lock:
            return list(self._runs)

    # ---- limits ---------------------------------------------------------------------------
    def expire(self, now: float | None = None) -> list[str]:
        """End every run silent for longer than ``idle_timeout``; their uids."""
        if self.idle_timeout is None:
            return []
        with self._lock:
            now = self._clock() if now is None else now
            idle = [u for u, r in self._runs.items() if now - r.last_seen > self.idle_timeout]
            for uid in idle:
                silent = now - self._runs[uid].last_seen
                self.end_run(
                    uid, f"no document for {silent:.0f} s (idle_timeout {self.idle_timeout:g} s)"
                )
            return idle

    def end_run(self, run_uid: str, reason: str) -> bool:
        """End an open run as if its stop had come: ``abort`` with ``reason``."""
        with self._lock:
            if run_uid not in self._runs:
                return False
            stop_uid = str(uuid.uuid4())
            stop = {
                "uid": stop_uid,
                "run_start": run_uid,
                "time": time.time(),
                "exit_status": "abort",
                "reason": reason,
                "num_events": {},
            }
            self._lost(run_uid, f"run {run_uid} ended without its stop: {reason}")
            self.ended.append((run_uid, reason))
            try:
                self.callback("stop", stop)
            except Exception as exc:  # noqa: BLE001 - nothing may escape
                self._reject(DocumentError("stop", stop_uid, f"{type(exc).__name__}: {exc}"))
            finally:
                self._close(run_uid)
            return True

    def end_all(self, reason: str) -> list[str]:
        """End every open run (shutdown): their uids."""
        with self._lock:
            uids = list(self._runs)
            for uid in uids:
                self.end_run(uid, reason)
            return uids

    def _lost(self, run_uid: str | None, message: str) -> None:
        self.n_lost += 1
        self.losses.append(message)
        loss_logger.warning("lost raw documents: %s", message)
        if run_uid is not None and self.on_loss is not None:
            try:
                self.on_loss(run_uid, message)
            except Exception:  # noqa: BLE001 - a report must not break the stream
                loss_logger.exception("reporting a loss of run %s failed", run_uid)

    def _run_uid_of(self, name: str, doc: dict) -> str | None:
        """The open run ``doc`` belongs to, or None."""
        run_uid = doc.get("uid") if name == "start" else doc.get("run_start")
        if name in ("event", "event_page", "stream_datum"):
            run_uid = self._descriptors.get(doc.get("descriptor"))  # type: ignore[arg-type]
        return run_uid if isinstance(run_uid, str) and run_uid in self._runs else None

    def _touch(self, name: str, doc: dict) -> None:
        run_uid = self._run_uid_of(name, doc)
        if run_uid is not None:
            self._runs[run_uid].last_seen = self._clock()

    def _reject(self, exc: DocumentError) -> None:
        self.rejected += 1
        logger.warning("rejected document %s", exc)

    def _run_of(self, name: str, doc: dict[str, Any], key: str = "run_start") -> _Run:
        uid = _uid(doc, name, key)
        run = self._runs.get(uid)
        if run is None:
            seen = uid in self._finished
            if not seen and uid not in self._orphans:  # the start was lost, not refused
                self._orphans.add(uid)
                what = "a stop" if name == "stop" else f"a {name}"
                self._lost(None, f"{what} of run {_text(uid)} came without its start")
            why = " (already stopped)" if seen else ""
            raise DocumentError(name, doc.get("uid"), f"unknown run {_text(uid)}{why}")
        return run

    def _known(self, table: dict[str, str], name: str, doc: dict, key: str, what: str) -> str:
        uid = _uid(doc, name, key)
        if uid not in table:
            raise DocumentError(name, doc.get("uid"), f"unknown {what} {_text(uid)}")
        return table[uid]

    def _check(self, name: str, doc: Any) -> None:
        """Refuse ``doc`` (DocumentError) or record what it announces."""
        if name not in DOCUMENT_NAMES:
            raise DocumentError(str(name)[:40], None, "not an event-model document name")
        if not isinstance(doc, dict):
            raise DocumentError(name, None, f"a document is a map, got {type(doc).__name__}")
        getattr(self, "_" + name)(doc)

    def _start(self, doc: dict) -> None:
        uid = _uid(doc, "start")
        if uid in self._runs or uid in self._finished:
            raise DocumentError("start", uid, "duplicate start: this run was already started")
        if self.max_open_runs is not None:
            while len(self._runs) >= self.max_open_runs:
                oldest = next(iter(self._runs))
                self.end_run(
                    oldest,
                    f"more than max_open_runs={self.max_open_runs} runs open: the oldest "
                    f"was ended to make room for run {uid}",
                )
        self._runs[uid] = _Run(self._clock())

    def _descriptor(self, doc: dict) -> None:
        uid = _uid(doc, "descriptor")
        run = self._run_of("descriptor", doc)
        if uid in self._descriptors:
            raise DocumentError("descriptor", uid, "duplicate descriptor")
        if not isinstance(doc.get("data_keys"), dict):
            raise DocumentError("descriptor", uid, "data_keys must be a map")
        run.descriptors.add(uid)
        run.stream_names[uid] = str(doc.get("name", "?"))[:40]
        self._descriptors[uid] = doc["run_start"]

    def _event(self, doc: dict) -> None:
        run_uid = self._known(self._descriptors, "event", doc, "descriptor", "descriptor")
        if not isinstance(doc.get("data"), dict) or not isinstance(doc.get("timestamps"), dict):
            raise DocumentError("event", doc.get("uid"), "data and timestamps must be maps")
        seq_num = doc.get("seq_num")
        if isinstance(seq_num, bool) or not isinstance(seq_num, int) or seq_num < 1:
            raise DocumentError("event", doc.get("uid"), f"bad seq_num {_text(seq_num)}")
        self._sequence(run_uid, doc["descriptor"], seq_num, seq_num, doc.get("uid"))

    def _sequence(self, run_uid: str, descriptor: str, first: int, last: int, uid: Any) -> None:
        """Refuse events that come again or late; a jump forward is a loss."""
        run = self._runs[run_uid]
        before = run.seq.get(descriptor, 0)
        stream = run.stream_names.get(descriptor, "?")
        if first <= before:
            raise DocumentError(
                "event",
                uid,
                f"seq_num {first} of stream {stream!r} after {before}: repeated or late",
            )
        if first > before + 1:
            missing = f"{before + 1}" if first == before + 2 else f"{before + 1}-{first - 1}"
            self._lost(run_uid, f"stream {stream!r} of run {run_uid}: events {missing} lost")
        run.seq[descriptor] = last

    def _event_page(self, doc: dict) -> None:
        run_uid = self._known(self._descriptors, "event_page", doc, "descriptor", "descriptor")
        for key in ("data", "timestamps"):
            if not isinstance(doc.get(key), dict):
                raise DocumentError("event_page", None, f"{key} must be a map")
        seq = doc.get("seq_num")
        if not isinstance(seq, list) or not isinstance(doc.get("uid"), list):
            raise DocumentError("event_page", None, "seq_num and uid must be lists")
        if not 0 < len(seq) <= MAX_PAGE_ROWS or not all(type(n) is int for n in seq):
            why = f"seq_num must be a list of 1 to {MAX_PAGE_ROWS} ints"  # rows cost 35x
            raise DocumentError("event_page", None, why)
        if seq != list(range(seq[0], seq[0] + len(seq))):
            raise DocumentError("event_page", None, "seq_num of a page must be consecutive")
        self._sequence(run_uid, doc["descriptor"], seq[0], seq[-1], None)

    def _stop(self, doc: dict) -> None:
        run = self._run_of("stop", doc)
        if (status := doc.get("exit_status")) not in EXIT_STATUSES:  # a worker failed on it
            why = f"exit_status {_text(status)} is not success, abort or fail"
            raise DocumentError("stop", doc.get("uid"), why)
        announced = doc.get("num_events")
        if not isinstance(announced, dict):
            return
        seen: dict[str, int] = {}
        for descriptor in run.seq.keys() | run.datum_seq.keys():
            last = max(run.seq.get(descriptor, 0), run.datum_seq.get(descriptor, 0))
            name = run.stream_names.get(descriptor, "?")
            seen[name] = max(seen.get(name, 0), last)
        for name, count in announced.items():
            if isinstance(count, int) and not isinstance(count, bool) and count > seen.get(name, 0):
                self._lost(
                    doc["run_start"],
                    f"stream {str(name)[:40]!r} of run {doc['run_start']}: the stop announces "
                    f"{count} events, {seen.get(name, 0)} came",
                )

    def _resource(self, doc: dict) -> None:
        uid = _uid(doc, "resource")
        if uid in self._resources or uid in self._unlabeled:
            raise DocumentError("resource", uid, "duplicate resource")
        if "run_start" not in doc:  # legacy: belongs to whichever run is open
            if not self._runs:
                raise DocumentError("resource", uid, "no run is open")
            self._unlabeled.add(uid)
            return
        self._run_of("resource", doc).resources.add(uid)
        self._resources[uid] = doc["run_start"]

    def _datum(self, doc: dict) -> None:
        resource = _uid(doc, "datum", "resource")
        _uid(doc, "datum", "datum_id")
        if resource not in self._resources and resource not in self._unlabeled:
            raise DocumentError("datum", doc["datum_id"], f"unknown resource {_text(resource)}")

    def _datum_page(self, doc: dict) -> None:
        resource = _uid(doc, "datum_page", "resource")
        if resource not in self._resources and resource not in self._unlabeled:
            raise DocumentError("datum_page", None, f"unknown resource {_text(resource)}")

    def _stream_resource(self, doc: dict) -> None:
        uid = _uid(doc, "stream_resource")
        run = self._run_of("stream_resource", doc)
        if uid in self._resources:
            raise DocumentError("stream_resource", uid, "duplicate stream_resource")
        _uid(doc, "stream_resource", "data_key")
        run.stream_resources.add(uid)
        self._resources[uid] = doc["run_start"]

    def _stream_datum(self, doc: dict) -> None:
        run_uid = self._known(
            self._resources, "stream_datum", doc, "stream_resource", "stream_resource"
        )
        descriptor = self._known(self._descriptors, "stream_datum", doc, "descriptor", "descriptor")
        if descriptor != run_uid:
            raise DocumentError(
                "stream_datum", doc.get("uid"), "its stream_resource and descriptor are of two runs"
            )
        stop = (
            doc.get("seq_nums", {}).get("stop") if isinstance(doc.get("seq_nums"), dict) else None
        )
        if isinstance(stop, int) and not isinstance(stop, bool):  # [start, stop): stop - 1 covered
            run = self._runs[run_uid]
            key = doc["descriptor"]
            run.datum_seq[key] = max(run.datum_seq.get(key, 0), stop - 1)

    def _close(self, run_uid: str) -> None:
        run = self._runs.pop(run_uid, None)
        if run is None:
            return
        self._finished.add(run_uid)
        for uid in run.descriptors:
            self._descriptors.pop(uid, None)
        for uid in run.resources | run.stream_resources:
            self._resources.pop(uid, None)
