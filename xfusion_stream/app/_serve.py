"""Fusion as a service beside the RunEngine: raw documents in from a 0MQ proxy, fused out.

The xpdAn pattern: the RunEngine publishes raw documents to a ``bluesky-0MQ-proxy``
with prefix ``b"raw"``; ``FusionSession.serve`` subscribes at the proxy's OUT address,
runs every raw run through the session's RunRouter (the same one the in-process
profile hook subscribes), and publishes the fused run back to the proxy's IN address
with prefix ``b"fused"`` (and to the session's other sinks, e.g. Tiled). It binds
nothing: both ends connect to the proxy. A crash or a slow model here can never stall
acquisition, which is the reason to run it apart.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..fusion import FusedRunResult, FusionCallback
from ..publishing import make_publisher, make_remote_dispatcher, run_dispatcher, stop_dispatcher

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
    ) -> None:
        self.session = session
        self.subscribe_address = subscribe_address
        self.publish_address = publish_address
        self.raw_prefix = raw_prefix
        self.fused_prefix = fused_prefix
        self.max_runs = max_runs
        self.ready_file = ready_file
        self.join_timeout = join_timeout
        self.callbacks: list[FusionCallback] = []
        self.stopped_by = ""
        self._stopped_raw: set[str] = set()
        # made here, not in run(): a shutdown() that comes first still ends run() at once
        self._dispatcher = make_remote_dispatcher(subscribe_address, prefix=raw_prefix)

    def shutdown(self, why: str = "shutdown") -> None:
        """End ``run()`` soon; safe from any thread and from signal handlers."""
        self.stopped_by = self.stopped_by or why
        stop_dispatcher(self._dispatcher)

    def _watch(self, name: str, doc: dict) -> None:
        if name == "start" and self.callbacks and self.callbacks[-1].raw_uid == doc["uid"]:
            logger.info("fusing raw run %s", doc["uid"])
        if name != "stop" or doc["run_start"] not in {cb.raw_uid for cb in self.callbacks}:
            return
        self._stopped_raw.add(doc["run_start"])
        logger.info("raw run %s ended (%s)", doc["run_start"], doc.get("exit_status"))
        if self.max_runs is not None and len(self._stopped_raw) >= self.max_runs:
            self.shutdown("max-runs")

    def run(self) -> dict[str, Any]:
        dispatcher = self._dispatcher
        publishers: list[Any] = []
        t0 = time.monotonic()
        try:
            if self.publish_address is not None:
                publishers.append(make_publisher(self.publish_address, self.fused_prefix))
            router = self.session.router(publishers, on_callback=self.callbacks.append)
            dispatcher.subscribe(router)
            dispatcher.subscribe(self._watch)
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
            for publisher in publishers:
                publisher.close()
        return self._summary(time.monotonic() - t0)

    def _finish_runs(self) -> None:
        """Abort runs whose raw stop never came, then wait for every worker."""
        for cb in self.callbacks:
            if cb.raw_uid is not None and cb.raw_uid not in self._stopped_raw:
                reason = f"xfusion serve stopped ({self.stopped_by}) before the raw run ended"
                cb.stop({"run_start": cb.raw_uid, "exit_status": "abort", "reason": reason})
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
            "seconds": round(seconds, 3),
        }
