"""What one fused run came to, read once from its finished FusionCallback.

Every way of running fusion (a subscribed RunEngine, a plan, a replay, the 0MQ
service) reports runs through this record, so the worker's report is read in one place
and the summary keys mean the same thing in every command's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._callback import FusionCallback

__all__ = ["FusedRunResult"]


@dataclass(frozen=True)
class FusedRunResult:
    """One raw run's fusion: ``exit_status`` None means no fused run stopped (the raw
    run had no camera stream, or its worker had not finished)."""

    raw_uid: str
    fused_uid: str | None
    frames: int
    gaps: tuple[int, ...]
    exit_status: str | None
    reason: str
    model_seconds: float
    latencies: tuple[float, ...]
    wall_seconds: float | None = None  # plan start -> fused stop, set by ``run_plan``

    @classmethod
    def from_callback(cls, callback: FusionCallback) -> FusedRunResult:
        worker = callback.worker
        raw_uid = callback.raw_uid or ""
        if worker is None:
            reason = "the raw run has no Phantom or Shimadzu stream: nothing was fused"
            return cls(raw_uid, None, 0, (), None, reason, 0.0, ())
        report = worker.report
        stop = report.stop_doc or {}
        return cls(
            raw_uid=raw_uid,
            fused_uid=callback.fused_uid,
            frames=report.frames,
            gaps=tuple(report.gaps),
            exit_status=stop.get("exit_status"),
            reason=stop.get("reason", ""),
            model_seconds=report.model_seconds,
            latencies=tuple(report.latencies),
        )

    def summary(self) -> dict[str, Any]:
        """The keys ``xfusion inference`` and ``xfusion demo`` print for a fused run."""
        out: dict[str, Any] = {
            "raw_uid": self.raw_uid,
            "fused_uid": self.fused_uid,
            "frames_fused": self.frames,
            "gaps": len(self.gaps),
            "exit_status": self.exit_status,
            "reason": self.reason,
            "model_seconds": round(self.model_seconds, 3),
        }
        if self.wall_seconds is not None:
            out["wall_seconds"] = round(self.wall_seconds, 3)
        return out
