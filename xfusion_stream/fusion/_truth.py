"""Scoring a fused frame against ground truth, next to the two baselines it must beat.

One scorer and one key vocabulary for the fused events, the worker's double-mode
metrics, the demo's simulated truth and the quality benchmark. Metrics are the
original's, on 8 bit (``xfusion_models.metrics``); the baselines are bicubic x4 of the
Shimadzu centre frame and one of the two Phantom inputs (the caller says which is
nearer in time).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "CANDIDATES",
    "METRICS",
    "METRIC_KEYS",
    "by_candidate",
    "metric_key",
    "score_against_truth",
]

#: Image-quality metrics, each on 8 bit: PSNR (dB), SSIM (data range 255), AAD (grey levels).
METRICS = ("psnr", "ssim", "aad")
#: What is scored against the truth: the fused frame and the two baselines.
CANDIDATES = ("fused", "bicubic", "nearest")


def metric_key(metric: str, candidate: str) -> str:
    """Name of one score: ``psnr`` for the fused frame, ``psnr_bicubic`` for a baseline."""
    if metric not in METRICS or candidate not in CANDIDATES:
        raise KeyError(f"no score {metric!r} of {candidate!r}")
    return metric if candidate == "fused" else f"{metric}_{candidate}"


#: Every score name, candidate by candidate (the fused events' metric data keys).
METRIC_KEYS = tuple(metric_key(m, c) for c in CANDIDATES for m in METRICS)


def score_against_truth(
    fused: np.ndarray,
    truth: np.ndarray,
    shimadzu_centre: np.ndarray,
    phantom_frames: Sequence[np.ndarray],
    nearer: int = 0,
) -> dict[str, float]:
    """Every score of ``METRIC_KEYS`` for one frame; images float in [0, 1].

    ``phantom_frames[nearer]`` is the nearest-Phantom baseline: the worker passes 0
    (double mode holds out the frame midway between its two Phantom inputs), the demo
    the input nearer in time.
    """
    from xfusion_models.metrics import frame_metrics

    rows, cols = truth.shape
    bicubic = cv2.resize(shimadzu_centre, (cols, rows), interpolation=cv2.INTER_CUBIC)
    images = {
        "fused": fused,
        "bicubic": np.clip(bicubic, 0, 1),
        "nearest": phantom_frames[nearer],
    }
    scores: dict[str, float] = {}
    for candidate, image in images.items():
        for metric, value in frame_metrics(image, truth).items():
            scores[metric_key(metric, candidate)] = float(value)
    return scores


def by_candidate(scores: dict[str, float]) -> dict[str, dict[str, float]]:
    """The same scores grouped as ``{candidate: {metric: value}}`` (for reports)."""
    return {
        c: {m: scores[metric_key(m, c)] for m in METRICS if metric_key(m, c) in scores}
        for c in CANDIDATES
    }
