"""The fused runs' way into Tiled: own thread, a spool on disk, re-ingest when Tiled is back.

Why: a Tiled outage must neither stall the other sinks nor lose a fused row.
:class:`TiledSink` spools every document (``Spool``) before queueing it, writes each
run with a TiledWriter of its own (a run given up leaves nothing behind in memory),
deletes the run's spool file once Tiled took its stop, and after such a success
re-ingests what earlier runs left in the spool. After a failure Tiled is not tried
again for new runs during ``retry_after`` s (they are spooled only), so a dead server
costs one retry budget, not one per run.

A Tiled that takes connections and never answers (or answers very slowly) costs the
same: a run whose stop Tiled has not taken ``delivery_timeout`` s after it was composed
is given up here and counts as a failure (its result names the spool file); its
documents still queued are skipped, and it is re-ingested whole from the spool (any
partial copy replaced) once Tiled answers. ``close`` never waits for a call stuck on
such a run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._doubled import mark_doubled_rows
from ._sink_thread import DEFAULT_DELIVERY_TIMEOUT, DEFAULT_QUEUE_BYTES, SinkThread, _RunState
from ._spool import SPOOL_SUFFIX, Spool, iter_spool, spool_files, spool_status, try_lock
from ._tiled import make_tiled_writer

__all__ = [
    "ReingestReport",
    "TiledSink",
    "is_tiled_writer",
    "reingest_spool",
    "write_spooled_run",
]

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 30.0
#: rows per TiledWriter batch (``make_tiled_writer``'s default): one write per row is
#: ~100 ms, and a burst's rows all exist once the camera is read out
DEFAULT_BATCH_SIZE = 64


def _refuse_doubled(client: Any, uid: str) -> None:
    """Raise if fused run ``uid`` holds rows twice (marked so in Tiled)."""
    if not (doubled := mark_doubled_rows(client, uid)):
        return
    raise RuntimeError(
        f"Tiled holds rows of fused run {uid} twice ({doubled}): TiledWriter sent "
        "appends again whose answers were lost"
    )


def is_tiled_writer(sink: Any) -> bool:
    """True for a bluesky ``TiledWriter`` (what ``make_tiled_writer`` returns)."""
    from bluesky_tiled_plugins import TiledWriter

    return isinstance(sink, TiledWriter)


@dataclass
class ReingestReport:
    """One pass over a spool directory: runs written whole into Tiled, documents in
    them, runs that failed (uid -> why), runs left (partial, or in use)."""

    runs: list[str] = field(default_factory=list)
    documents: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "runs_reingested": len(self.runs),
            "documents_reingested": self.documents,
            "failed": dict(self.failed),
            "left_in_spool": len(self.left),
        }


def write_spooled_run(
    path: str | os.PathLike[str], client: Any, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Write the run of one spool file into Tiled, replacing any partial copy there.

    A partial copy is deleted first (``delete_contents``, recursive, internal data too),
    so the final run is the spooled one, whole, as an uninterrupted write would give.
    Returns the number of documents written.
    """
    docs = iter_spool(path)
    first = next(docs, None)
    if first is None or first[0] != "start":
        raise ValueError(f"{path}: the spooled run does not begin with its start")
    uid = first[1].get("uid")
    if Path(path).stem != uid:  # <uid>.xfspool, or set aside by recovery
        raise ValueError(f"{path}: the spooled run's start names another run ({uid!r})")
    if uid in client:  # only a fused run's partial (or doubled) copy is ever replaced
        held = client[uid].metadata.get("start", {})
        if held.get("purpose") != "fused":
            raise ValueError(
                f"{path}: Tiled holds run {uid} and it is not a fused run "
                f"(purpose {held.get('purpose')!r}); the spooled run does not replace it"
            )
        client.delete_contents(uid, recursive=True, external_only=False)
    writer = make_tiled_writer(client, batch_size=batch_size)
    writer(*first)
    n = 1
    for name, doc in docs:
        writer(name, doc)
        n += 1
        if name == "stop":  # a record after it is no part of the run (TiledWriter: KeyError)
            if next(docs, None) is not None:
                logger.warning("%s: records after the run's stop; not written", path)
            break
    if "stop" not in client[uid].metadata:
        raise RuntimeError(f"Tiled did not record the stop of fused run {uid}")
    _refuse_doubled(client, uid)
    return n


def reingest_spool(
    spool_dir: str | os.PathLike[str],
    tiled_client: Any,
    *,
    skip: set[str] | frozenset[str] = frozenset(),
    batch_size: int = DEFAULT_BATCH_SIZE,
    cancel: threading.Event | None = None,
) -> ReingestReport:
    """Write every complete spooled run (one that has its stop) into Tiled, deleting
    each spool file Tiled confirmed; stops at the first failure (Tiled is down again).

    Runs in ``skip`` (being written in this process) and files another process holds
    are left; so are partial runs (no stop): ``recover_partial_runs`` completes those.
    ``cancel`` set: no further run is begun (a sink closing).
    """
    report = ReingestReport()
    for path in spool_files(spool_dir):
        uid = path.name.removesuffix(SPOOL_SUFFIX)
        if uid in skip or (cancel is not None and cancel.is_set()):
            report.left.append(uid)
            continue
        fd = _claim(path)
        if fd is None:
            report.left.append(uid)
            continue
        try:
            if not spool_status(path).complete:
                report.left.append(uid)
                continue
            report.documents += write_spooled_run(path, tiled_client, batch_size=batch_size)
            path.unlink(missing_ok=True)
            report.runs.append(uid)
            logger.info("re-ingested fused run %s from the spool", uid)
        except Exception as exc:  # noqa: BLE001 - reported; the file stays for next time
            report.failed[uid] = repr(exc)[:300]
            logger.error("re-ingest of fused run %s failed: %r; kept in %s", uid, exc, path)
            break
        finally:
            _release(path, fd)
    return report


# spool files being re-ingested in this process: ``lockf`` keeps other processes out,
# not a second session (or a closed one's last pass) of this one
_claimed: set[str] = set()
_claimed_lock = threading.Lock()


def _claim(path: Path) -> int | None:
    """A locked fd of ``path``, or None while this or another process re-ingests it."""
    key = os.path.realpath(path)
    with _claimed_lock:
        if key in _claimed:
            return None
        fd = try_lock(path)
        if fd is not None:
            _claimed.add(key)
        return fd


def _release(path: Path, fd: int) -> None:
    with _claimed_lock:
        _claimed.discard(os.path.realpath(path))
        os.close(fd)


class TiledSink(SinkThread):
    """Fused runs into Tiled from a thread of its own, through ``spool`` when given.

    ``client``: a Tiled client (e.g. a TiledWriter's ``.client``); ``batch_size``: rows
    per write. ``reingested`` lists runs written later from the spool.
    """

    def __init__(
        self,
        client: Any,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        spool: Spool | None = None,
        retry_after: float = DEFAULT_RETRY_AFTER,
        max_documents: int = 4096,
        max_bytes: int = DEFAULT_QUEUE_BYTES,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
    ) -> None:
        super().__init__(
            self._unused,
            label="Tiled",
            max_documents=max_documents,
            max_bytes=max_bytes,
            delivery_timeout=delivery_timeout,
        )
        self.client = client
        self.batch_size = int(batch_size)
        self.spool = spool
        self.retry_after = float(retry_after)
        self.reingested: list[str] = []
        self.documents_reingested = 0
        self._writers: dict[str, Any] = {}
        self._in_flight: set[str] = set()
        self._spool_failed: set[str] = set()
        self._down_until = 0.0
        self._reingesting: threading.Thread | None = None
        self._reingest_lock = threading.Lock()
        self._again = False  # a re-ingest was asked for while one was running
        self._looping = False  # the re-ingest thread is in its loop
        self._loop_lock = threading.Lock()
        self._closing = threading.Event()

    @classmethod
    def from_writer(cls, writer: Any, spool: Spool | None = None, **kw: Any) -> TiledSink:
        """The TiledSink of an existing TiledWriter: its client (public ``.client``); the
        batch size is ``batch_size`` if given, else ``DEFAULT_BATCH_SIZE`` (TiledWriter
        has no public way to read its own)."""
        return cls(writer.client, spool=spool, **kw)

    @staticmethod
    def _unused(name: str, doc: dict) -> None:
        raise NotImplementedError("TiledSink delivers through _deliver")

    # ---- SinkThread hooks ---------------------------------------------------------------
    def _accept(self, run: str, name: str, doc: dict) -> None:
        if name == "start":
            self._in_flight.add(run)
        if self.spool is not None:
            try:
                self.spool.append(run, name, doc)
            except Exception as exc:  # noqa: BLE001 - Tiled may still take the run
                if run not in self._spool_failed:
                    self._spool_failed.add(run)
                    self._note(run, f"spool {self.spool.directory} failed on a {name}: {exc!r}")

    def _deliver(self, run: str, name: str, doc: dict) -> None:
        if name == "start":
            if time.monotonic() < self._down_until:
                raise ConnectionError(
                    f"Tiled failed or did not answer less than {self.retry_after:g} s ago; "
                    "not tried for this run"
                )
            self._writers[run] = make_tiled_writer(self.client, batch_size=self.batch_size)
        writer = self._writers.get(run)
        if writer is None:
            raise RuntimeError(f"no Tiled writer for fused run {run} (its start was not written)")
        try:
            writer(name, doc)
        except Exception:
            self._down_until = time.monotonic() + self.retry_after
            raise
        if name == "stop":
            self._writers.pop(run, None)
            # a copy with rows twice is a failure: the spool (if any) rewrites it whole
            _refuse_doubled(self.client, run)

    def _gave_up(self, run: str) -> None:
        self._writers.pop(run, None)

    def _timed_out(self, run: str, state: _RunState, message: str) -> None:
        # Tiled took the connection but not the run in time: like a failure, new runs
        # are spooled only for ``retry_after`` s instead of queueing behind this one
        self._down_until = max(self._down_until, time.monotonic() + self.retry_after)
        super()._timed_out(run, state, message)

    def _finished(self, run: str, ok: bool) -> None:
        self._in_flight.discard(run)
        self._spool_failed.discard(run)
        if self.spool is None:
            return
        if ok:
            self._down_until = 0.0
            self.spool.confirmed(run)
        else:
            self.spool.release(run)
        self.reingest_in_background()  # Tiled is back, or keep trying until it is

    def _kept(self, run: str) -> str:
        if self.spool is None:
            return ""
        return f"; kept in the spool ({self.spool.path(run)}) for re-ingest"

    # ---- re-ingest ----------------------------------------------------------------------
    def reingest(self) -> ReingestReport:
        """Write the complete runs of the spool into Tiled now (none without a spool)."""
        if self.spool is None:
            return ReingestReport()
        with self._reingest_lock:
            report = reingest_spool(
                self.spool.directory,
                self.client,
                skip=set(self._in_flight),
                batch_size=self.batch_size,
                cancel=self._closing,
            )
            self.reingested += report.runs
            self.documents_reingested += report.documents
        return report

    def reingest_in_background(self) -> threading.Thread | None:
        """``reingest`` in a daemon thread, again every ``retry_after`` s (at least 1 s)
        while Tiled fails, until the spool holds no complete run that is not in flight.
        None if nothing is spooled; asked while running, it goes round once more."""
        if self.spool is None or not spool_files(self.spool.directory):
            return None
        with self._loop_lock:
            self._again = True
            if self._looping:
                return None
            self._looping = True
            thread = threading.Thread(
                target=self._reingest_loop, name="xfusion-reingest", daemon=True
            )
            self._reingesting = thread
        thread.start()
        return thread

    def _reingest_loop(self) -> None:
        while True:
            with self._loop_lock:
                if not self._again or self._closing.is_set():
                    self._looping = False
                    return
                self._again = False
            try:
                failed = bool(self.reingest().failed)
            except Exception:  # noqa: BLE001 - logged; the spool stays for next time
                logger.exception("re-ingest from %s failed", self.spool)
                failed = True
            if failed:  # Tiled is still down: try again in a while
                self._again = True
                self._closing.wait(max(self.retry_after, 1.0))

    def wait_reingest(self, timeout: float | None = None) -> bool:
        """Wait for a background re-ingest to end; True if none is running."""
        thread = self._reingesting
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def close(self, timeout: float = 10.0) -> bool:
        done = super().close(timeout)
        self._closing.set()  # a re-ingest under way ends after its current run
        self.wait_reingest(timeout)
        if self.spool is not None:
            self.spool.close()
        return done
