"""``xfusion bench``'s whole-burst figure: a full-sensor burst fused end to end per model.

Issue 15's GPU target: a 256-frame 400x250 HPV-X2 burst fused in under 5 s by the
paper-size EDVR-STF on one H100/H200-class GPU, without the CPU-side stages (DIS flow
on the Phantom pairs, the tau search's bookkeeping) becoming the bottleneck. On by
default with ``--device cuda``; on two CPU cores one such burst takes hours, so there
it runs only when asked for (``--full-burst FRAMES``), at any size. The burst time is
synchronised with the device; the stage shares come from a host-side profile, so on a
GPU they say where the host waits, a guide rather than kernel times.
"""

from __future__ import annotations

from typing import Any

from ..fusion import FusionModel
from ._bench_model import stage_seconds, time_windows
from ._bench_scaling import synthetic_run, timed_run

__all__ = ["PAPER_BURST_TARGET_S", "full_burst"]

#: seconds for the 256-frame 400x250 burst with the paper-size model (issue 15)
PAPER_BURST_TARGET_S = 5.0

#: stages that run on the CPU whatever the device (flow on 8-bit frames in OpenCV)
_CPU_STAGES = ("dis_flow",)


def full_burst(
    models: dict[str, FusionModel],
    shape: tuple[int, int] = (250, 400),
    frames: int = 256,
    profiled_windows: int = 8,
) -> dict[str, Any]:
    """Frames/s of each model over one synthetic continuous burst of ``frames``
    Shimadzu frames of ``shape`` (streaming caches on, window by window), and where a
    window's time goes (profiled over ``profiled_windows`` windows). Each model is warm
    first, as a fusion server is before a burst: one window of the size, apart (on a GPU
    the first call loads its kernels, and this figure runs right after the matmul)."""
    jobs = synthetic_run(shape, frames)
    out: dict[str, Any] = {
        "shimadzu_shape": list(shape),
        "fused_lr_shape": list(jobs[0].lr_frames[1].shape),  # the registered crop's sides
        "frames": frames,
        "models": {},
    }
    for name, model in models.items():
        time_windows(model, jobs[:1], cached=False)
        total, steady = timed_run(model, jobs, skip=min(2, len(jobs) - 1))
        seconds = stage_seconds(model, jobs[: min(len(jobs), profiled_windows)])
        whole = sum(seconds.values()) or 1.0
        shares = {k: round(v / whole, 4) for k, v in seconds.items()}
        out["models"][name] = {
            "burst_s": round(total, 3),
            "frames_per_s": round(frames / total, 3),
            "steady_s_per_frame": round(steady, 5),
            "stage_shares": shares,
            "cpu_side_share": round(sum(shares.get(k, 0.0) for k in _CPU_STAGES), 4),
        }
    return out
