"""Run one plan through a RunEngine with live fusion attached, and wait for the result.

Shared by ``xfusion inference`` (recorded and virtual experiments) and ``xfusion demo``
(simulated cameras): the documents, the callback and the worker are the live ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..calibration import CalibrationRecord
from ..core import XFusionError
from ..fusion import FusionCallback, FusionConfig, FusionModel, fusion_router
from ..fusion._composer import Sink

__all__ = ["FusionOutcome", "run_with_fusion", "new_run_engine"]


@dataclass
class FusionOutcome:
    raw_uid: str
    fused_uid: str | None
    frames: int
    gaps: list[int]
    exit_status: str
    reason: str
    model_seconds: float
    wall_seconds: float
    products: dict[str, Any] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "raw_uid": self.raw_uid,
            "fused_uid": self.fused_uid,
            "frames_fused": self.frames,
            "gaps": len(self.gaps),
            "exit_status": self.exit_status,
            "reason": self.reason,
            "model_seconds": round(self.model_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            **self.products,
        }


def new_run_engine():
    """A RunEngine on its own event loop (closed by ``close_run_engine``)."""
    from bluesky import RunEngine

    return RunEngine({}, call_returns_result=False, loop=asyncio.new_event_loop())


def close_run_engine(RE) -> None:
    loop = RE.loop
    loop.call_soon_threadsafe(loop.stop)
    RE._th.join(timeout=10)
    loop.close()


def run_with_fusion(
    plan: Iterable,
    *,
    model: FusionModel,
    calibration: CalibrationRecord,
    config: FusionConfig,
    sinks: Iterable[Sink] = (),
    raw_sinks: Iterable[Sink] = (),
    on_frame: Callable | None = None,
    finish_products: Callable[[], dict[str, Any]] | None = None,
    timeout: float | None = None,
    RE=None,
) -> FusionOutcome:
    """Acquire ``plan`` with fusion subscribed; returns once the fused run has stopped."""
    own_engine = RE is None
    RE = RE or new_run_engine()
    callbacks: list[FusionCallback] = []
    tokens = [RE.subscribe(s) for s in raw_sinks]
    router = fusion_router(
        model, calibration, sinks, config, on_callback=callbacks.append, on_frame=on_frame
    )
    tokens.append(RE.subscribe(router))
    t0 = time.perf_counter()
    try:
        uids = RE(plan)
    finally:
        for token in tokens:
            RE.unsubscribe(token)
        if own_engine:
            close_run_engine(RE)
    if not callbacks:
        raise XFusionError("the plan produced no run that fusion could take")
    cb = callbacks[-1]
    if not cb.join(timeout):
        raise XFusionError(f"fusion did not finish within {timeout} s")
    report = cb.worker.report if cb.worker else None
    stop = (report.stop_doc if report else None) or {}
    products = finish_products() if finish_products else {}
    return FusionOutcome(
        raw_uid=cb.raw_uid or (uids[-1] if uids else ""),
        fused_uid=cb.fused_uid,
        frames=report.frames if report else 0,
        gaps=list(report.gaps) if report else [],
        exit_status=stop.get("exit_status", "fail"),
        reason=stop.get("reason", ""),
        model_seconds=report.model_seconds if report else 0.0,
        wall_seconds=time.perf_counter() - t0,
        products=products,
        latencies=list(report.latencies) if report else [],
    )


def products_dir(out: Path, name: str) -> Path:
    path = out / name
    path.mkdir(parents=True, exist_ok=True)
    return path
