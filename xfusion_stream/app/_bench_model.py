"""Model-side speed figures: FLOP/s against a matmul, caches on and off, precision, stages.

Each function takes windows that really went through the live path (``WindowJob``s
kept by the pipeline measurement), so the model sees the frames it sees at a beamline.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..fusion import FusionModel, WindowJob
from ..fusion._inference import WindowInference

__all__ = [
    "flop_efficiency",
    "matmul_peak",
    "precision_change",
    "stage_seconds",
    "streaming_speedup",
    "synthetic_job",
    "synthetic_run",
    "time_windows",
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _matmul_seconds(device: torch.device, n: int) -> float:
    """Seconds of one (n x n) @ (n x n) fp32 product on ``device``, after a warm-up one."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)  # warm-up: thread pools, caches
    _sync(device)
    t0 = time.perf_counter()
    torch.mm(a, b)
    _sync(device)
    return time.perf_counter() - t0


def matmul_peak(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large fp32 matmul on ``device``: the machine's practical limit."""
    return 2.0 * n**3 / min(_matmul_seconds(device, n) for _ in range(repeats))


def _fused(
    inference: WindowInference, jobs: Sequence[WindowJob], device: torch.device
) -> tuple[float, list[np.ndarray]]:
    """Seconds for ``inference`` to fuse ``jobs`` one by one, in order, and the frames."""
    t0 = time.perf_counter()
    images = [inference.run([job])[0].image for job in jobs]
    _sync(device)
    return time.perf_counter() - t0, images


def time_windows(
    model: FusionModel, jobs: Sequence[WindowJob], *, cached: bool
) -> tuple[float, list[np.ndarray]]:
    """Seconds to fuse ``jobs`` one by one, in order, as a worker does, and the frames."""
    inference = WindowInference(model, feature_cache=cached, motion_cache=cached)
    return _fused(inference, jobs, model.device)


def streaming_speedup(
    model: FusionModel, jobs: Sequence[WindowJob], segments: int | None = None
) -> dict[str, Any]:
    """Feature and flow caches on versus recomputing every input of every window.

    Both fuse the burst in ``segments`` stretches taken in turn (cached then recomputed,
    then the other way round), so a neighbour's load on shared cores falls on both
    alike; each keeps its state from one stretch to the next, so the frames are those
    of one continuous run and are compared bit for bit. By default they take turns
    window by window: on this project's shared 2-core machine, stretches of 16 windows
    gave 1.36 to 1.54 in eight runs of the same code, turns window by window 1.43 to
    1.46 in three.
    """
    runs = {
        cached: WindowInference(model, feature_cache=cached, motion_cache=cached)
        for cached in (True, False)
    }
    seconds = {True: 0.0, False: 0.0}
    images: dict[bool, list[np.ndarray]] = {True: [], False: []}
    size = 1 if segments is None else -(-len(jobs) // max(segments, 1))
    for k, start in enumerate(range(0, len(jobs), size)):
        for cached in (True, False) if k % 2 == 0 else (False, True):
            took, frames = _fused(runs[cached], jobs[start : start + size], model.device)
            seconds[cached] += took
            images[cached] += frames
    identical = all(np.array_equal(a, b) for a, b in zip(images[True], images[False]))
    return {
        "streaming_speedup": round(seconds[False] / seconds[True], 3),
        "identical_output": identical and len(images[True]) == len(jobs),
        "cached_s": round(seconds[True], 3),
        "recomputed_s": round(seconds[False], 3),
        "windows": len(jobs),
        "segments": -(-len(jobs) // size) if jobs else 0,
    }


def synthetic_run(
    lr_shape: tuple[int, int], n_frames: int, phantom_every: int = 4, seed: int = 0
) -> list[WindowJob]:
    """``n_frames`` consecutive windows of one run: smooth random frames, each frame its
    own (the caches key on frames, so none is a repeat), a Phantom pair every
    ``phantom_every`` windows, Phantom x4."""
    import cv2

    rng = np.random.default_rng(seed)
    # the registered crop is a multiple of 16 fused px: LR sides are multiples of 4
    h, w = lr_shape[0] // 4 * 4, lr_shape[1] // 4 * 4

    def smooth(shape: tuple[int, int]) -> np.ndarray:
        img = cv2.GaussianBlur(rng.random(shape, dtype=np.float32), (0, 0), 2.0)
        return np.ascontiguousarray((img - img.min()) / (np.ptp(img) + 1e-6))

    lr = [smooth((h, w)) for _ in range(n_frames + 2)]
    hr = [smooth((4 * h, 4 * w)) for _ in range(n_frames // phantom_every + 2)]
    return [
        WindowJob(
            index=i,
            shimadzu_index=i + 1,
            shimadzu_time_ns=200 * (i + 1),
            lr=(i, i + 1, i + 2),
            hr=(i // phantom_every, i // phantom_every + 1),
            lr_frames=(lr[i], lr[i + 1], lr[i + 2]),
            hr_frames=(hr[i // phantom_every], hr[i // phantom_every + 1]),
            shimadzu_offset=(0.0, 0.0),  # drawn on one grid: the registration is exact
        )
        for i in range(n_frames)
    ]


def synthetic_job(lr_shape: tuple[int, int], seed: int = 0) -> WindowJob:
    """One window of smooth random frames (the first of ``synthetic_run``): cost depends
    on sizes, not on content."""
    return synthetic_run(lr_shape, 1, seed=seed)[0]


def flop_efficiency(
    model: FusionModel,
    job: WindowJob,
    peak_flops: float | None = None,
    repeats: int = 5,
    matmul_n: int = 2048,
) -> dict[str, Any]:
    """Counted FLOPs of one window's forward (every input recomputed) per second of it,
    as a fraction of the matmul peak. torch's FlopCounterMode counts convolutions and
    matrix products; sampling (grid_sample, DIS flow) is time without counted FLOPs,
    which is what a fraction of the matmul peak should expose.

    Without ``peak_flops`` the peak is measured beside the window, one matmul after each
    timed window, best of ``repeats`` for both: on shared cores a peak measured minutes
    earlier moved the ratio by +-0.06 between runs, and best of 3 still let the shipped
    model's 64 x 96 figure swing between 0.42 and 0.54.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        time_windows(model, [job], cached=False)
    flops = float(counter.get_total_flops())
    seconds, matmul_s = float("inf"), float("inf")
    for _ in range(repeats):
        seconds = min(seconds, time_windows(model, [job], cached=False)[0])
        if peak_flops is None:
            matmul_s = min(matmul_s, _matmul_seconds(model.device, matmul_n))
    peak = peak_flops if peak_flops is not None else 2.0 * matmul_n**3 / matmul_s
    achieved = flops / seconds
    return {
        "efficiency": round(achieved / peak, 4),
        "gflop_per_window": round(flops / 1e9, 3),
        "seconds_per_window": round(seconds, 4),
        "achieved_gflops": round(achieved / 1e9, 2),
        "peak_gflops": round(peak / 1e9, 2),
        "lr_shape": list(job.lr_frames[1].shape),
    }


def _psnr(image: np.ndarray, truth: np.ndarray) -> float:
    mse = float(np.mean((np.clip(image, 0, 1) * 255.0 - truth * 255.0) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def precision_change(
    fp32: FusionModel,
    low: FusionModel,
    jobs: Sequence[WindowJob],
    truth: Callable[[WindowJob], np.ndarray],
) -> dict[str, Any]:
    """Speed of ``low`` (bf16 / fp16 autocast) over fp32, and what it costs in PSNR."""
    fp32_s, fp32_images = time_windows(fp32, jobs, cached=True)
    low_s, low_images = time_windows(low, jobs, cached=True)
    truths = [truth(job) for job in jobs]
    psnr32 = float(np.mean([_psnr(a, t) for a, t in zip(fp32_images, truths)]))
    psnr_low = float(np.mean([_psnr(a, t) for a, t in zip(low_images, truths)]))
    return {
        "precision": low.precision,
        "speed_ratio": round(fp32_s / low_s, 3),
        "psnr_fp32": round(psnr32, 3),
        f"psnr_{low.precision}": round(psnr_low, 3),
        "psnr_change_db": round(psnr_low - psnr32, 3),
    }


# stage -> qualified names whose cumulative time belongs to it (file suffix, function)
_STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "dis_flow": (("ops/_phantom_motion.py", "dense_flow"),),
    "tau_search": (("ops/_tau_search.py", "search_tau"),),
    "gate": (("archs/_hr_gate.py", "forward"),),
    "consistency": (("archs/_consistency.py", "forward"),),
    "fidelity": (("fusion/_fidelity.py", "shimadzu_residuals"),),
}


def _cumulative(stats: pstats.Stats, where: str, name: str) -> float:
    total = 0.0
    for (filename, _line, func), row in stats.stats.items():  # type: ignore[attr-defined]
        if func == name and filename.replace("\\", "/").endswith(where):
            total += row[3]  # cumulative time
    return total


def stage_seconds(model: FusionModel, jobs: Sequence[WindowJob]) -> dict[str, float]:
    """Seconds per fused frame in each model-side stage, from a profiled cached run.

    ``network`` is what remains of the window's time (features, alignment, fusion,
    reconstruction). Under the profiler Python calls cost a little more, so these are
    shares, not absolute times to compare with ``time_windows``.
    """
    profiler = cProfile.Profile()
    inference = WindowInference(model)
    profiler.enable()
    t0 = time.perf_counter()
    for job in jobs:
        inference.run([job])
    total = time.perf_counter() - t0
    profiler.disable()
    stats = pstats.Stats(profiler)
    n = max(len(jobs), 1)
    out = {
        stage: sum(_cumulative(stats, where, name) for where, name in names) / n
        for stage, names in _STAGES.items()
    }
    # phantom_at_t = flow (cached per pair) + tau search + the warps themselves
    at_t = _cumulative(stats, "ops/_phantom_motion.py", "phantom_at_t") / n
    out["warp"] = max(at_t - out["dis_flow"] - out["tau_search"], 0.0)
    out["network"] = max(total / n - sum(out.values()), 0.0)
    return out
