"""FusionSession: the one way to run fusion, whatever brings the raw documents.

A session owns the model, the calibration, the FusionConfig, the fused-run sinks, the
array source and the per-frame hook, and builds the RunRouter that gives every raw
run its own FusionCallback. Its entry points differ only in where documents come
from: a RunEngine it is subscribed to (``subscribe``, the profile hook), a plan it
runs (``run_plan``), a stored run in Tiled (``replay``) or a 0MQ proxy (``serve``).
Each fused run is reported as a ``FusedRunResult``. ``schema`` (default
``FUSED_FRAME``) says which per-frame fields the fused events carry; hand the same one
to a ``ProductWriter`` used as ``on_frame``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from event_model import RunRouter

from ..calibration import CalibrationRecord
from ..core import XFusionError
from ..documents import ArraySource
from ..fusion import (
    FUSED_FRAME,
    FrameSchema,
    FusedFrame,
    FusedRunResult,
    FusionCallback,
    FusionConfig,
    FusionModel,
    Sink,
    WindowJob,
    fusion_router,
    stored_raw_run,
    tiled_array_source,
)
from ..publishing import FUSED_PREFIX, RAW_PREFIX
from ._run_engine import close_run_engine, new_run_engine

__all__ = ["FusionSession"]


class _TakingTurns:
    """A sink behind the session's one lock: the workers of overlapping runs share a
    0MQ socket or a TiledWriter, neither of which may be called from two threads."""

    def __init__(self, sink: Sink, lock: threading.Lock) -> None:
        self._sink = sink
        self._lock = lock

    def __call__(self, name: str, doc: dict) -> Any:
        with self._lock:
            return self._sink(name, doc)

    def __repr__(self) -> str:
        return f"<serialised {self._sink!r}>"


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
    ) -> None:
        self.model = model
        self.schema = schema
        self.calibration = calibration
        self.config = config or FusionConfig()
        self.array_source = array_source
        self.on_frame = on_frame
        self._lock = threading.Lock()
        self.sinks: list[Sink] = self.serialised(sinks)
        self._callbacks: list[FusionCallback] = []
        self._subscription: tuple[Any, int] | None = None
        self._service: Any = None

    # ---- building blocks -----------------------------------------------------------
    def serialised(self, sinks: Iterable[Sink]) -> list[Sink]:
        """``sinks`` behind this session's one lock (sinks added for one entry point)."""
        return [_TakingTurns(sink, self._lock) for sink in sinks]

    def router(
        self,
        extra_sinks: Iterable[Sink] = (),
        on_callback: Callable[[FusionCallback], None] | None = None,
    ) -> RunRouter:
        """A RunRouter over ``extra_sinks`` (serialised here; e.g. the 0MQ publisher of
        ``serve``, called first) and the session's sinks."""

        def track(callback: FusionCallback) -> None:
            self._callbacks.append(callback)
            if on_callback is not None:
                on_callback(callback)

        return fusion_router(
            self.model,
            self.calibration,
            [*self.serialised(extra_sinks), *self.sinks],
            self.config,
            array_source=self.array_source,
            on_callback=track,
            on_frame=self.on_frame,
            schema=self.schema,
        )

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
    def replay(self, client: Any, uid: str, *, timeout: float | None = None) -> FusedRunResult:
        """Fuse the raw run ``uid`` stored in Tiled into a new fused run."""
        run = stored_raw_run(client, uid)
        callback = FusionCallback(
            self.model,
            self.calibration,
            self.sinks,
            self.config,
            array_source=tiled_array_source(run),
            on_frame=self.on_frame,
            schema=self.schema,
        )
        self._callbacks.append(callback)
        for name, doc in run.documents():
            callback(name, doc)
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
    ) -> dict[str, Any]:
        """Fuse raw runs from a 0MQ proxy (see ``xfusion serve``); blocks until
        ``max_runs`` raw runs ended, SIGINT/SIGTERM, or ``shutdown()``."""
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
        )
        self._service = service
        try:
            return service.run()
        finally:
            self._service = None

    def shutdown(self, why: str = "shutdown") -> None:
        """End a ``serve()`` running in another thread; open runs end with ``abort``."""
        service = self._service
        if service is not None:
            service.shutdown(why)
