"""``xfusion bench``'s scaling table: cost per fused frame against pixels and burst length.

Issue 15 asks that the cost grow linearly with both (no per-run quadratic term: a cache
that grows with the run, a search over every frame seen). Each row fuses a synthetic
continuous run window by window with the streaming caches on, as a worker does, and
reports seconds per fused frame after the first windows (the pipeline's fill is a cost
per run, measured by the live figure). ``exponent`` is the slope of log(total cost)
over log(size): 1 is linear, below 1 means fixed costs still weigh, above 1.1 would
be the quadratic term the issue forbids.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..fusion import FusionModel, WindowJob
from ..fusion._inference import WindowInference
from ._bench_model import synthetic_run

__all__ = ["LINEAR_EXPONENT_MAX", "scaling_table", "synthetic_run", "timed_run"]

#: the largest log-log slope still called linear (timing noise on shared cores included)
LINEAR_EXPONENT_MAX = 1.1


def timed_run(model: FusionModel, jobs: Sequence[WindowJob], skip: int) -> tuple[float, float]:
    """Seconds for the whole run, and per window after the first ``skip`` (caches and
    pools warm)."""
    inference = WindowInference(model)
    try:
        t0 = time.perf_counter()
        inference.run_each(jobs[:skip])
        t1 = time.perf_counter()
        inference.run_each(jobs[skip:])
        if model.device.type == "cuda":
            import torch

            torch.cuda.synchronize(model.device)
        t2 = time.perf_counter()
    finally:
        inference.release()
    return t2 - t0, (t2 - t1) / max(len(jobs) - skip, 1)


def _exponent(sizes: Sequence[float], totals: Sequence[float]) -> float:
    """Least-squares slope of log(total) over log(size)."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(totals, float))
    return float(np.polyfit(x, y, 1)[0])


def scaling_table(
    model: FusionModel,
    shapes: Sequence[tuple[int, int]] = ((64, 96), (128, 192), (250, 400)),
    lengths: Sequence[int] = (32, 64, 128, 256),
    length_shape: tuple[int, int] = (32, 48),
    windows_per_shape: int = 6,
) -> dict[str, Any]:
    """Seconds per fused frame at each Shimadzu ``shapes`` (a short run each) and each
    burst length of ``lengths`` (at ``length_shape``), with the log-log exponents."""
    by_pixels: list[dict[str, Any]] = []
    for shape in shapes:
        jobs = synthetic_run(shape, windows_per_shape)
        _, per_frame = timed_run(model, jobs, skip=2)
        pixels = jobs[0].lr_frames[1].size
        by_pixels.append(
            {"shimadzu_shape": list(jobs[0].lr_frames[1].shape), "pixels": pixels,
             "s_per_frame": round(per_frame, 5),
             "us_per_pixel": round(1e6 * per_frame / pixels, 4)}
        )  # fmt: skip
    by_length: list[dict[str, Any]] = []
    for n in lengths:
        jobs = synthetic_run(length_shape, n)
        total, per_frame = timed_run(model, jobs, skip=2)
        by_length.append(
            {"frames": n, "s_per_frame": round(per_frame, 5), "run_s": round(total, 3)}
        )
    px_exp = _exponent([r["pixels"] for r in by_pixels], [r["s_per_frame"] for r in by_pixels])
    len_exp = _exponent([r["frames"] for r in by_length], [r["run_s"] for r in by_length])
    return {
        "by_pixels": by_pixels,
        "by_burst_length": by_length,
        "burst_length_shape": list(length_shape),
        "pixel_exponent": round(px_exp, 3),
        "length_exponent": round(len_exp, 3),
        "linear": bool(
            math.isfinite(px_exp + len_exp) and max(px_exp, len_exp) <= LINEAR_EXPONENT_MAX
        ),
    }
