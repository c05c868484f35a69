"""Fusion as a service beside the RunEngine: raw documents in from a 0MQ proxy, fused out.

The xpdAn pattern: the RunEngine publishes raw documents to a ``bluesky-0MQ-proxy``
with prefix ``b"raw"``; ``FusionSession.serve`` subscribes at the proxy's OUT address,
runs every raw run through the session's RunRouter (the same one the in-process
profile hook subscribes), and publishes the fused run back to the proxy's IN address
with prefix ``b"fused"`` (and to the session's other sinks, e.g. Tiled). It binds
nothing: both ends connect to the proxy. A crash or a slow model here can never stall
acquisition, which is the reason to run it apart.

The wire is not trusted: every message is size-limited, decoded without pickle and
dispatched on its own (``SafeRemoteDispatcher``), documents are checked in order and
reference (``RunGuard``), and files are read only inside the session's data roots.
A rejected message is one log line (stderr) and never ends the loop.

Nothing is kept without bound: the session's router holds at most ``max_open_runs``
raw runs and ends one silent for ``idle_timeout`` s (checked on a timer here, on the
dispatcher's own loop); raw documents found lost (``seq_num`` gaps, stops without
starts, runs without stops at shutdown) are gaps of their fused run and listed in the
summary. The fused publisher delivers from a thread of its own (``SinkThread``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..documents import RunGuard
from ..fusion import FusedRunResult, FusionCallback
from ..publishing import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ClientCurve,
    SinkThread,
    make_publisher,
    make_remote_dispatcher,
    run_dispatcher,
    stop_dispatcher,
)

if TYPE_CHECKING:
    from ._session import FusionSession

__all__ = ["ZmqFusionService"]

logger = logging.getLogger(__name__)


class ZmqFusionService:
    """One ``FusionSession.serve`` call: the dispatcher, the runs it took, why it ended.

    Runs still open when it ends get exit_status ``abort``; every worker is joined
    before ``run()`` returns its summary.
    """

    def __init__(
        self,
        session: FusionSession,
        subscribe_address: str,
        publish_address: str | None,
        *,
        raw_prefix: bytes,
        fused_prefix: bytes,
        max_runs: int | None,
        ready_file: str | os.PathLike | None,
        join_timeout: float,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        curve: ClientCurve | None = None,
    ) -> None:
        self.session = session
        self.subscribe_address = subscribe_address
        self.publish_address = publish_address
        self.raw_prefix = raw_prefix
        self.fused_prefix = fused_prefix
        self.max_runs = max_runs
        self.ready_file = ready_file
        self.join_timeout = join_timeout
        self.curve = curve
        self.callbacks: list[FusionCallback] = []
        self.stopped_by = ""
        self._stopped_raw: set[str] = set()
        self.events_received = 0  # raw events dispatched (all runs)
        self._guard: RunGuard | None = None
        self._ticker: Any = None
        # made here, not in run(): a shutdown() that comes first still ends run() at once
        self._dispatcher = make_remote_dispatcher(
            subscribe_address, prefix=raw_prefix, max_message_bytes=max_message_bytes, curve=curve
        )

    def shutdown(self, why: str = "shutdown") -> None:
        """End ``run()`` soon; safe from any thread and from signal handlers."""
        self.stopped_by = self.stopped_by or why
        stop_dispatcher(self._dispatcher)

    def _watch(self, name: str, doc: dict) -> None:
        """Count raw stops of runs we fuse (documents RunGuard refused count for nothing)."""
        uid = doc.get("uid")
        if name == "event":
            self.events_received += 1
        elif name == "event_page" and isinstance(uid, list):
            self.events_received += len(uid)
        if name == "start" and self.callbacks and self.callbacks[-1].raw_uid == uid:
            logger.info("fusing raw run %s", uid)
        if name in ("start", "stop"):
            self._count_ended()

    def _count_ended(self) -> None:
        """Raw runs ended (by their stop, or by the guard's limits); ``max_runs`` check."""
        for cb in self.callbacks:
            if cb.stopped and cb.raw_uid is not None and cb.raw_uid not in self._stopped_raw:
                self._stopped_raw.add(cb.raw_uid)
                logger.info("raw run %s ended", cb.raw_uid)
        if self.max_runs is not None and len(self._stopped_raw) >= self.max_runs:
            self.shutdown("max-runs")

    def _tick(self) -> None:
        """On the dispatcher's loop: end idle runs, then look again in a while."""
        guard = self._guard
        if guard is None or guard.idle_timeout is None:
            return
        if guard.expire():
            self._count_ended()
        period = min(max(guard.idle_timeout / 4, 0.05), 5.0)
        self._ticker = self._dispatcher.loop.call_later(period, self._tick)

    def run(self) -> dict[str, Any]:
        dispatcher = self._dispatcher
        publishers: list[Any] = []
        threads: list[SinkThread] = []
        t0 = time.monotonic()
        try:
            if self.publish_address is not None:
                publisher = make_publisher(
                    self.publish_address, self.fused_prefix, curve=self.curve
                )
                publishers.append(publisher)
                threads.append(
                    SinkThread(
                        publisher,
                        label="0MQ publisher",
                        delivery_timeout=self.session.delivery_timeout,
                    )
                )
            self._guard = self.session.router(
                threads, on_callback=self.callbacks.append, confined=True
            )
            dispatcher.subscribe(self._guard)
            dispatcher.subscribe(self._watch)
            dispatcher.loop.call_soon(self._tick)
            logger.info(
                "xfusion serve: raw from %s (prefix %r), fused to %s (prefix %r)",
                self.subscribe_address,
                self.raw_prefix,
                self.publish_address,
                self.fused_prefix,
            )
            run_dispatcher(dispatcher, ready_file=self.ready_file, on_signal=self.shutdown)
        finally:
            if not dispatcher.closed:  # never started: release its socket and loop
                dispatcher.stop()
            self._finish_runs()
            for thread in threads:
                thread.close(self.join_timeout)
            for publisher in publishers:
                publisher.close()
        return self._summary(time.monotonic() - t0)

    def _finish_runs(self) -> None:
        """Abort runs whose raw stop never came, then wait for every worker."""
        if self._guard is not None:
            why = f"xfusion serve stopped ({self.stopped_by}) before the raw run ended"
            self._guard.end_all(why)
        for cb in self.callbacks:
            if not cb.join(self.join_timeout):
                logger.error("fusion worker of raw run %s did not finish", cb.raw_uid)

    def _summary(self, seconds: float) -> dict[str, Any]:
        runs = []
        for cb in self.callbacks:
            fused = FusedRunResult.from_callback(cb).summary()
            runs.append({("frames" if k == "frames_fused" else k): v for k, v in fused.items()})
        return {
            "subscribed": self.subscribe_address,
            "published": self.publish_address,
            "raw_runs": len(self._stopped_raw),
            "runs": runs,
            "stopped_by": self.stopped_by,
            "documents_received": self._dispatcher.accepted,
            "events_received": self.events_received,
            "messages_rejected": self._dispatcher.rejected
            + (self._guard.rejected if self._guard is not None else 0),
            "raw_losses": self._guard.n_lost if self._guard is not None else 0,
            "losses": list(self._guard.losses)[:20] if self._guard is not None else [],
            "delivery": self.session.delivery(),
            "seconds": round(seconds, 3),
        }
