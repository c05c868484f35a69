"""What one fused run came to, read once from its finished FusionCallback.

Every way of running fusion (a subscribed RunEngine, a plan, a replay, the 0MQ
service) reports runs through this record, so the worker's report is read in one place
and the summary keys mean the same thing in every command's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._callback import FusionCallback
from ._fidelity import mean_residual

__all__ = ["FusedRunResult"]


@dataclass(frozen=True)
class FusedRunResult:
    """One raw run's fusion: ``exit_status`` None means no fused run stopped (the raw
    run had no camera stream, or its worker had not finished). ``shimadzu_residual`` is
    the mean over fused frames of their RMS residual against Shimadzu frame t in noise
    units (~1: the fast camera supports the frames), ``shimadzu_residual_p99`` the mean
    of their 99th percentiles of |residual|; None without a fused frame."""

    raw_uid: str
    fused_uid: str | None
    frames: int
    gaps: tuple[int, ...]
    exit_status: str | None
    reason: str
    model_seconds: float
    latencies: tuple[float, ...]
    wall_seconds: float | None = None  # plan start -> fused stop, set by ``run_plan``
    shimadzu_residual: float | None = None
    shimadzu_residual_p99: float | None = None
    sink_errors: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()  # raw documents lost on the way in (seq_num gaps, no stop)
    calibration_problem: str | None = None  # the record does not fit this run's frames
    calibration_check: dict[str, Any] | None = None

    @property
    def problem(self) -> str | None:
        """Why this run is not a success a caller may report, or None: the fused run did
        not stop with ``success``, fused no frame, lost raw documents on the way in, lost
        a sink on the way out, or was fused with a calibration its own simultaneous
        Phantom and Shimadzu frames contradict (``fusion._alignment``)."""
        if self.exit_status is None:
            return self.reason or "no fused run finished"
        if self.exit_status != "success":
            return f"fused run ended with {self.exit_status}: {self.reason}".rstrip(": ")
        if self.frames == 0:
            return "the fused run fused 0 frames"
        if self.lost:
            more = f" (+{len(self.lost) - 1} more)" if len(self.lost) > 1 else ""
            return f"raw documents were lost: {self.lost[0]}{more}"
        if self.sink_errors:
            return "; ".join(self.sink_errors)
        return self.calibration_problem

    @property
    def ok(self) -> bool:
        """True only for a fused run that stopped with ``success`` with at least one
        fused frame, no raw document lost, and delivered to every sink: what ``ok`` and
        exit codes report."""
        return self.problem is None

    @classmethod
    def from_callback(cls, callback: FusionCallback) -> FusedRunResult:
        worker = callback.worker
        raw_uid = callback.raw_uid or ""
        if worker is None:  # the run's own failure, where it had one, is the reason
            failure = getattr(callback, "failure", None)  # stand-ins in tests have none
            reason = (
                f"fusion failed before the fused run began: {failure}"
                if failure
                else ("the raw run has no Phantom or Shimadzu stream: nothing was fused")
            )
            return cls(raw_uid, None, 0, (), None, reason, 0.0, ())
        report = worker.report
        stop = report.stop_doc or {}
        alignment = getattr(callback, "alignment", None)  # stand-ins in tests have none
        return cls(
            raw_uid=raw_uid,
            fused_uid=callback.fused_uid,
            frames=report.frames,
            gaps=tuple(report.gaps),
            exit_status=stop.get("exit_status"),
            reason=stop.get("reason", ""),
            model_seconds=report.model_seconds,
            latencies=tuple(report.latencies),
            shimadzu_residual=mean_residual(report.residual_rms),
            shimadzu_residual_p99=mean_residual(report.residual_p99),
            sink_errors=tuple(worker.composer.sink_errors),
            lost=tuple(report.lost),
            calibration_problem=alignment.problem if alignment is not None else None,
            calibration_check=alignment.summary() if alignment is not None else None,
        )

    def summary(self) -> dict[str, Any]:
        """The keys ``xfusion inference``, ``replay``, ``serve`` and ``demo`` print for a
        fused run."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "problem": self.problem,
            "raw_uid": self.raw_uid,
            "fused_uid": self.fused_uid,
            "frames_fused": self.frames,
            "gaps": len(self.gaps),
            "raw_losses": len(self.lost),
            "exit_status": self.exit_status,
            "reason": self.reason,
            "model_seconds": round(self.model_seconds, 3),
            "shimadzu_residual": self.shimadzu_residual,
            "shimadzu_residual_p99": self.shimadzu_residual_p99,
            "calibration_check": self.calibration_check,
        }
        if self.wall_seconds is not None:
            out["wall_seconds"] = round(self.wall_seconds, 3)
        return out
