"""Window jobs and outputs as messages between the session and its fusion processes.

The project's msgpack wire format (``publishing.pack_document``): arrays as raw bytes
with dtype and shape, decoded strictly, never pickle.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..publishing import pack_document
from ._fidelity import ShimadzuResidual
from ._inference import WindowOutput

if TYPE_CHECKING:
    from ._runner import WindowJob

__all__ = ["job_from", "job_message", "output_from", "output_message"]


def job_message(run: str, settings: dict[str, Any], job: WindowJob) -> bytes:
    return pack_document(
        {
            "kind": "window",
            "run": run,
            **settings,
            "index": job.index,
            "shimadzu_index": job.shimadzu_index,
            "shimadzu_time_ns": job.shimadzu_time_ns,
            "lr": list(job.lr),
            "hr": list(job.hr),
            "lr_frames": list(job.lr_frames),
            "hr_frames": list(job.hr_frames),
            "shimadzu_offset": [float(v) for v in job.shimadzu_offset],
        }
    )


def job_from(msg: dict[str, Any]) -> WindowJob:
    from ._runner import WindowJob

    return WindowJob(
        index=msg["index"],
        shimadzu_index=msg["shimadzu_index"],
        shimadzu_time_ns=msg["shimadzu_time_ns"],
        lr=tuple(msg["lr"]),  # type: ignore[arg-type]
        hr=tuple(msg["hr"]),  # type: ignore[arg-type]
        lr_frames=tuple(msg["lr_frames"]),  # type: ignore[arg-type]
        hr_frames=tuple(msg["hr_frames"]),  # type: ignore[arg-type]
        shimadzu_offset=_offset(msg.get("shimadzu_offset")),
    )


def _offset(value: Any) -> tuple[float, float]:
    """A job's Shimadzu offset as sent (two floats; NaN: not measured)."""
    if value is None:
        return (math.nan, math.nan)
    numbers = isinstance(value, list) and len(value) == 2
    if not numbers or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        raise ValueError(f"shimadzu_offset must be two numbers, got {value!r}")
    rows, cols = (float(v) for v in value)
    return (rows, cols)


def output_message(index: int, out: WindowOutput) -> bytes:
    return pack_document(
        {
            "kind": "output",
            "index": index,
            "image": out.image,
            "attention": out.attention,
            "tau": out.tau,
            "blend_weights": out.blend_weights,
            "residual": [out.residual.rms, out.residual.p99, out.residual.map],
        }
    )


def output_from(msg: dict[str, Any]) -> WindowOutput:
    rms, p99, residual_map = msg["residual"]
    return WindowOutput(
        image=msg["image"],
        attention=msg["attention"],
        tau=float(msg["tau"]),
        blend_weights=msg["blend_weights"],
        residual=ShimadzuResidual(float(rms), float(p99), residual_map),
    )
