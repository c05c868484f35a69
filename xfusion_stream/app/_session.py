"""FusionSession: the one way to run fusion, whatever brings the raw documents.

A session owns the model, the calibration, the FusionConfig, the fused-run sinks, the
array source and the per-frame hook, and builds the RunRouter that gives every raw
run its own FusionCallback. Its entry points differ only in where documents come
from: a RunEngine it is subscribed to (``subscribe``, the profile hook), a plan it
runs (``run_plan``), a stored run in Tiled (``replay``) or a 0MQ proxy (``serve``).
Each fused run is reported as a ``FusedRunResult``. ``schema`` (default
``FUSED_FRAME``) says which per-frame fields the fused events carry; hand the same one
to a ``ProductWriter`` used as ``on_frame``.

``data_roots`` are the directories files named by asset documents may be read from.
Unset (None), documents from a RunEngine in this process are trusted to name their own
files, while ``serve`` (0MQ) and ``replay`` (Tiled) read no file at all: their frames
must come inline or, for replay, from Tiled's copy.

Every sink gets a delivery thread of its own (``publishing.SinkThread``): one slow or
dead sink never stalls another, nor the model. A TiledWriter among the sinks becomes a
``publishing.TiledSink``: with ``spool_dir`` every fused document is on disk before
Tiled sees it, and spooled runs are re-ingested when the session starts and whenever
Tiled takes a run again. ``max_open_runs`` and ``idle_timeout`` bound the raw runs a
router keeps open (``documents.RunGuard``); ``max_open_runs`` also bounds the runs
being fused at once (a new one waits for a slot, holding its raw documents back). ``executor`` fuses
the windows of every run outside the worker threads (``fusion.WindowPool``: N fusion
processes; Dask workers for ``xfusion reprocess``), with the same frames.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ..calibration import CalibrationRecord
from ..core import ThreadBudget, XFusionError, release_openmp_pool
from ..documents import ArraySource, DataRoots, RunGuard
from ..documents import data_roots as _roots
from ..fusion import (
    FUSED_FRAME,
    FrameSchema,
    FusedFrame,
    FusedRunResult,
    FusionCallback,
    FusionConfig,
    FusionModel,
    Sink,
    WindowExecutor,
    WindowJob,
    fusion_router,
    stored_raw_run,
    tiled_array_source,
)
from ..publishing import (
    DEFAULT_DELIVERY_TIMEOUT,
    DEFAULT_MAX_MESSAGE_BYTES,
    FUSED_PREFIX,
    RAW_PREFIX,
    ClientCurve,
    DeliveringSink,
    ReingestReport,
    SinkThread,
    Spool,
    TiledSink,
    is_tiled_writer,
)
from ._run_engine import close_run_engine, new_run_engine

__all__ = ["FusionSession"]

logger = logging.getLogger(__name__)


def _label(sink: Any) -> str:
    """A sink's name in error messages: what it is, not where it lives in memory."""
    kind = type(sink).__name__
    return {"Publisher": "0MQ publisher", "TiledWriter": "Tiled"}.get(kind, f"sink {kind}")


class FusionSession:
    """Model + calibration + config + sinks, and the entry points that fuse raw runs."""

    def __init__(
        self,
        model: FusionModel,
        calibration: CalibrationRecord,
        sinks: Iterable[Sink] = (),
        config: FusionConfig | None = None,
        *,
        array_source: ArraySource | None = None,
        on_frame: Callable[[FusedFrame, WindowJob], None] | None = None,
        schema: FrameSchema = FUSED_FRAME,
        data_roots: Iterable[str | os.PathLike[str]] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        max_open_runs: int | None = 4,
        idle_timeout: float | None = 600.0,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        threads: ThreadBudget | None = None,
        executor: WindowExecutor | None = None,
    ) -> None:
        # one deliberate thread budget for torch and OpenCV in this process (default: every
        # core to torch, one to OpenCV; XFUSION_TORCH_THREADS / _OPENCV_THREADS override)
        self.threads = (threads or ThreadBudget.for_this_process()).apply()
        # whatever torch did in this thread so far (loading the model, a warm-up), its
        # idle OpenMP pool would make the fusion worker's threads sleep between operators
        release_openmp_pool()
        self.model = model
        self.calibration = calibration
        self.config = config or FusionConfig()
        if self.config.viewer_inputs:  # the live viewer's two input panels
            from ._viewer_fields import viewer_fields

            schema = schema.extended(*viewer_fields(calibration.ratio))
        self.schema = schema
        self.array_source = array_source
        self.on_frame = on_frame
        self.executor = executor
        self.data_roots: DataRoots = _roots(data_roots)
        self.max_open_runs = max_open_runs
        # runs being fused at once (their workers hold queued windows): as many as may be open
        self._slots = threading.BoundedSemaphore(max_open_runs) if max_open_runs else None
        self.idle_timeout = idle_timeout
        self.delivery_timeout = float(delivery_timeout)
        self.spool: Spool | None = Spool(spool_dir) if spool_dir is not None else None
        self.tiled: TiledSink | None = None
        self._threads: list[SinkThread] = []
        self.sinks: list[Sink] = [self._delivering(sink) for sink in sinks]
        self._callbacks: list[FusionCallback] = []
        self._subscription: tuple[Any, int] | None = None
        self._service: Any = None
        if self.spool is not None and self.tiled is None:
            logger.warning("spool_dir %s: no Tiled sink to spool for", self.spool.directory)
        if self.tiled is not None:
            self.tiled.reingest_in_background()  # what an earlier session left

    # ---- building blocks -----------------------------------------------------------
    def _delivering(self, sink: Sink) -> Sink:
        """``sink`` with a delivery thread of its own; a TiledWriter as a TiledSink
        (spooled when the session has a ``spool_dir``)."""
        if isinstance(sink, DeliveringSink):
            return sink
        thread: SinkThread
        if is_tiled_writer(sink) and self.tiled is None:
            self.tiled = TiledSink.from_writer(
                sink, spool=self.spool, delivery_timeout=self.delivery_timeout
            )
            thread = self.tiled
        else:
            thread = SinkThread(sink, label=_label(sink), delivery_timeout=self.delivery_timeout)
        self._threads.append(thread)
        return thread

    def router(
        self,
        extra_sinks: Iterable[Sink] = (),
        on_callback: Callable[[FusionCallback], None] | None = None,
        *,
        confined: bool = False,
    ) -> RunGuard:
        """A guarded RunRouter over ``extra_sinks`` (given delivery threads here unless
        they have their own; e.g. the 0MQ publisher of ``serve``) and the session's sinks.

        ``confined``: the documents come from outside this process, so files are read
        only inside ``data_roots`` (none when unset).
        """

        def track(callback: FusionCallback) -> None:
            self._callbacks.append(callback)
            if on_callback is not None:
                on_callback(callback)

        return fusion_router(
            self.model,
            self.calibration,
            [*(self._delivering(sink) for sink in extra_sinks), *self.sinks],
            self.config,
            array_source=self.array_source,
            on_callback=track,
            on_frame=self.on_frame,
            schema=self.schema,
            data_roots=self.file_roots(confined),
            max_open_runs=self.max_open_runs,
            idle_timeout=self.idle_timeout,
            slots=self._slots,
            executor=self.executor,
        )

    def file_roots(self, confined: bool) -> DataRoots:
        """Where asset files may be read: ``data_roots``, or for documents from outside
        this process (``confined``) nowhere when none were given."""
        if confined and self.data_roots is None:
            return ()
        return self.data_roots

    # ---- results ---------------------------------------------------------------------
    @property
    def results(self) -> list[FusedRunResult]:
        """One result per raw run this session took whose fusion has finished."""
        return [FusedRunResult.from_callback(cb) for cb in list(self._callbacks) if cb.join(0)]

    def wait(self, timeout: float | None = None) -> FusedRunResult | None:
        """Block until the latest raw run is fused; None if there is none or time ran out."""
        if not self._callbacks:
            return None
        latest = self._callbacks[-1]
        return FusedRunResult.from_callback(latest) if latest.join(timeout) else None

    # ---- a RunEngine -----------------------------------------------------------------
    def subscribe(self, RE: Any) -> int:  # noqa: N803 - bluesky's name
        """Fuse every raw run ``RE`` runs from now on (until ``unsubscribe``)."""
        if self._subscription is not None:
            raise XFusionError("this fusion session is already subscribed to a RunEngine")
        token = RE.subscribe(self.router())
        self._subscription = (RE, token)
        return token

    def unsubscribe(self) -> None:
        if self._subscription is not None:
            RE, token = self._subscription
            RE.unsubscribe(token)
            self._subscription = None

    def run_plan(
        self,
        plan: Iterable,
        *,
        RE: Any = None,  # noqa: N803 - bluesky's name
        raw_sinks: Iterable[Sink] = (),
        timeout: float | None = None,
    ) -> FusedRunResult:
        """Acquire ``plan`` with fusion attached; returns once its last run is fused.

        Without ``RE`` the plan runs on a RunEngine of its own, closed afterwards.
        ``raw_sinks`` see the raw documents for this plan only.
        """
        release_openmp_pool()  # this thread waits on the RunEngine; the worker fuses
        engine = RE if RE is not None else new_run_engine()
        first = len(self._callbacks)
        tokens = [engine.subscribe(sink) for sink in raw_sinks]
        if self._subscription is None or self._subscription[0] is not engine:
            tokens.append(engine.subscribe(self.router()))
        t0 = time.perf_counter()
        try:
            engine(plan)
        finally:
            for token in tokens:
                engine.unsubscribe(token)
            if RE is None:
                close_run_engine(engine)
        taken = self._callbacks[first:]
        if not taken:
            raise XFusionError("the plan produced no run that fusion could take")
        if not taken[-1].join(timeout):
            raise XFusionError(f"fusion did not finish within {timeout} s")
        result = FusedRunResult.from_callback(taken[-1])
        return replace(result, wall_seconds=time.perf_counter() - t0)

    # ---- a stored run ----------------------------------------------------------------
    def replay(
        self,
        client: Any,
        uid: str,
        *,
        timeout: float | None = None,
        fused_uid: str | None = None,
    ) -> FusedRunResult:
        """Fuse the raw run ``uid`` stored in Tiled into a new fused run.

        Frames come from the files its StreamResources name when they lie inside
        ``data_roots``, otherwise from Tiled's copy; bad documents are logged and dropped.
        ``fused_uid`` gives the fused run that uid (completing a run cut off earlier,
        ``recover_partial_runs``).
        """
        run = stored_raw_run(client, uid)
        callback = FusionCallback(
            self.model,
            self.calibration,
            self.sinks,
            self.config,
            array_source=tiled_array_source(run),
            on_frame=self.on_frame,
            schema=self.schema,
            data_roots=self.file_roots(confined=True),
            fused_uid=fused_uid,
            slots=self._slots,
            executor=self.executor,
        )
        self._callbacks.append(callback)
        guard = RunGuard(callback, on_loss=lambda _run, message: callback.note_loss(message))
        for name, doc in run.documents():
            guard(name, doc)
        # every stored document is in: a run still open has no stop (or a refused one)
        # and would be waited for until the timeout (an hour by default)
        guard.end_all(f"the stored raw run {uid} has no valid stop; fused up to its end")
        if not callback.join(timeout):
            raise XFusionError(f"fusion of replayed run {uid} did not finish in {timeout} s")
        return FusedRunResult.from_callback(callback)

    # ---- a 0MQ proxy -----------------------------------------------------------------
    def serve(
        self,
        subscribe_address: str,
        publish_address: str | None = None,
        *,
        raw_prefix: bytes = RAW_PREFIX,
        fused_prefix: bytes = FUSED_PREFIX,
        max_runs: int | None = None,
        ready_file: Any = None,
        join_timeout: float = 600.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        curve: ClientCurve | None = None,
    ) -> dict[str, Any]:
        """Fuse raw runs from a 0MQ proxy (see ``xfusion serve``); blocks until
        ``max_runs`` raw runs ended, SIGINT/SIGTERM, or ``shutdown()``.

        Messages over ``max_message_bytes`` and malformed ones are logged and dropped;
        ``curve`` (``publishing.client_curve``) authenticates both sockets to a CURVE
        proxy. Asset files are read only inside ``data_roots`` (none when unset).
        """
        from ._serve import ZmqFusionService

        service = ZmqFusionService(
            self,
            subscribe_address,
            publish_address,
            raw_prefix=raw_prefix,
            fused_prefix=fused_prefix,
            max_runs=max_runs,
            ready_file=ready_file,
            join_timeout=join_timeout,
            max_message_bytes=max_message_bytes,
            curve=curve,
        )
        self._service = service
        try:
            return service.run()
        finally:
            self._service = None

    # ---- delivery, spool, end --------------------------------------------------------
    def reingest(self) -> ReingestReport:
        """Write the complete runs of the spool into Tiled now (waits for a re-ingest
        already under way first); an empty report without a spooled Tiled sink."""
        if self.tiled is None:
            return ReingestReport()
        self.tiled.wait_reingest()
        return self.tiled.reingest()

    def delivery(self) -> dict[str, Any]:
        """What the sinks delivered and what the spool holds, for summaries."""
        out: dict[str, Any] = {
            "sinks": [{"sink": t.label, "delivered": t.delivered_documents} for t in self._threads]
        }
        if self.tiled is not None and self.spool is not None:
            out["spool"] = {
                "directory": str(self.spool.directory),
                "documents_spooled": self.spool.documents_spooled,
                "runs_reingested": len(self.tiled.reingested),
                "documents_reingested": self.tiled.documents_reingested,
            }
        return out

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what the sinks still have queued (bounded), end their threads."""
        self.unsubscribe()
        for thread in self._threads:
            thread.close(timeout)

    def shutdown(self, why: str = "shutdown") -> None:
        """End a ``serve()`` running in another thread; open runs end with ``abort``."""
        service = self._service
        if service is not None:
            service.shutdown(why)
