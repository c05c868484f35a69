"""Fusion as a service beside the RunEngine: raw documents in from a 0MQ proxy, fused out.

The xpdAn pattern: the RunEngine publishes raw documents to a ``bluesky-0MQ-proxy``
with prefix ``b"raw"``; this server subscribes at the proxy's OUT address, runs every
raw run through the same ``fusion_router`` the in-process profile uses, and publishes
the fused run back to the proxy's IN address with prefix ``b"fused"`` (and to Tiled
when given a client). It binds nothing: both ends connect to the proxy. A crash or a
slow model here can never stall acquisition, which is the reason to run it apart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ..calibration import CalibrationRecord
from ..fusion import FusionCallback, FusionConfig, FusionModel, fusion_router
from ..publishing import (
    FUSED_PREFIX,
    RAW_PREFIX,
    make_publisher,
    make_remote_dispatcher,
    make_tiled_writer,
)

__all__ = ["FusionServer"]

logger = logging.getLogger(__name__)


class _SerialSink:
    """A sink behind a lock: fusion workers of overlapping runs share one 0MQ socket."""

    def __init__(self, sink: Any, lock: threading.Lock) -> None:
        self._sink = sink
        self._lock = lock

    def __call__(self, name: str, doc: dict) -> None:
        with self._lock:
            self._sink(name, doc)

    def __repr__(self) -> str:
        return f"<serialised {type(self._sink).__name__}>"


class FusionServer:
    """Subscribe at ``subscribe_address`` (proxy OUT), publish to ``publish_address`` (proxy IN).

    ``serve()`` blocks until ``max_runs`` raw runs were fused (None: forever), a
    SIGINT/SIGTERM arrives, or ``shutdown()`` is called from another thread. Runs still
    open then end with exit_status ``abort``; every worker is joined before it returns.
    """

    def __init__(
        self,
        model: FusionModel,
        calibration: CalibrationRecord,
        *,
        subscribe_address: str,
        publish_address: str,
        config: FusionConfig | None = None,
        tiled_client: Any = None,
        tiled_batch_size: int | None = None,
        max_runs: int | None = None,
        raw_prefix: bytes = RAW_PREFIX,
        fused_prefix: bytes = FUSED_PREFIX,
        ready_file: str | os.PathLike | None = None,
        join_timeout: float = 600.0,
    ) -> None:
        self.model = model
        self.calibration = calibration
        self.config = config or FusionConfig.model_validate({})
        self.subscribe_address = subscribe_address
        self.publish_address = publish_address
        self.tiled_client = tiled_client
        self.tiled_batch_size = tiled_batch_size
        self.max_runs = max_runs
        self.raw_prefix = raw_prefix
        self.fused_prefix = fused_prefix
        self.ready_file = Path(ready_file) if ready_file is not None else None
        self.join_timeout = join_timeout
        self.callbacks: list[FusionCallback] = []
        self._stopped_raw: set[str] = set()
        self._dispatcher: Any = None
        self.stopped_by = ""

    # ---- control --------------------------------------------------------------------
    def shutdown(self, why: str = "shutdown") -> None:
        """End ``serve()`` soon; safe from any thread and from signal handlers."""
        dispatcher = self._dispatcher
        if dispatcher is None or dispatcher.loop.is_closed():
            return
        self.stopped_by = self.stopped_by or why
        try:
            dispatcher.loop.call_soon_threadsafe(self._cancel)
        except RuntimeError:  # the loop closed meanwhile: serve() is ending anyway
            pass

    def _cancel(self) -> None:
        for task in asyncio.all_tasks(self._dispatcher.loop):
            task.cancel()

    # ---- documents ------------------------------------------------------------------
    def _track(self, callback: FusionCallback) -> None:
        self.callbacks.append(callback)

    def _watch(self, name: str, doc: dict) -> None:
        if name == "start" and self.callbacks and self.callbacks[-1].raw_uid == doc["uid"]:
            logger.info("fusing raw run %s", doc["uid"])
        if name != "stop" or doc["run_start"] not in {cb.raw_uid for cb in self.callbacks}:
            return
        self._stopped_raw.add(doc["run_start"])
        logger.info("raw run %s ended (%s)", doc["run_start"], doc.get("exit_status"))
        if self.max_runs is not None and len(self._stopped_raw) >= self.max_runs:
            self.stopped_by = self.stopped_by or "max-runs"
            self._cancel()

    # ---- the loop -------------------------------------------------------------------
    def _sinks(self) -> tuple[list[Any], list[Any]]:
        """(sinks, things to close at the end)."""
        publisher = make_publisher(self.publish_address, self.fused_prefix)
        sinks: list[Any] = [_SerialSink(publisher, threading.Lock())]
        if self.tiled_client is not None:
            writer = make_tiled_writer(self.tiled_client, batch_size=self.tiled_batch_size)
            sinks.append(_SerialSink(writer, threading.Lock()))
        return sinks, [publisher]

    def serve(self) -> dict[str, Any]:
        sinks, closeables = self._sinks()
        router = fusion_router(
            self.model, self.calibration, sinks, self.config, on_callback=self._track
        )
        dispatcher = make_remote_dispatcher(self.subscribe_address, prefix=self.raw_prefix)
        dispatcher.subscribe(router)
        dispatcher.subscribe(self._watch)
        self._dispatcher = dispatcher
        loop = dispatcher.loop
        if self.ready_file is not None:  # first loop turn: after connect + subscribe
            loop.call_soon(self.ready_file.write_text, "ready\n")
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.shutdown, signal.Signals(sig).name)
        logger.info(
            "xfusion serve: raw from %s (prefix %r), fused to %s (prefix %r)",
            self.subscribe_address,
            self.raw_prefix,
            self.publish_address,
            self.fused_prefix,
        )
        t0 = time.monotonic()
        try:
            dispatcher.start()
        except asyncio.CancelledError:
            pass
        finally:
            self._finish_runs()
            for thing in closeables:
                thing.close()
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
            report = cb.worker.report if cb.worker is not None else None
            stop = (report.stop_doc if report else None) or {}
            runs.append(
                {
                    "raw_uid": cb.raw_uid,
                    "fused_uid": cb.fused_uid,
                    "frames": report.frames if report else 0,
                    "gaps": len(report.gaps) if report else 0,
                    "exit_status": stop.get("exit_status"),
                    "reason": stop.get("reason", ""),
                    "model_seconds": round(report.model_seconds, 3) if report else 0.0,
                }
            )
        return {
            "subscribed": self.subscribe_address,
            "published": self.publish_address,
            "raw_runs": len(self._stopped_raw),
            "runs": runs,
            "stopped_by": self.stopped_by,
            "seconds": round(seconds, 3),
        }
