"""Held-out scoring of a fusion model against the two baselines it must beat.

Two virtual test layouts, a Phantom frame every ``phantom_every`` Shimadzu frames:
``continuous`` scores Shimadzu frame ``t`` strictly between Phantom frames ``b < t < a``
from LR ``t-1, t, t+1`` (with shot noise) and HR ``b, a``; ``double`` is the original's
double-interval scoring (HR ``t +- phantom_every``, the frame at ``t`` held out).
Baselines: bicubic x4 of the noisy LR frame ``t``, and the temporally nearer Phantom
frame (``b`` on a tie), already registered in a virtual experiment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..metrics import frame_metrics

__all__ = [
    "LAYOUTS",
    "METHODS",
    "ScoringWindow",
    "scoring_windows",
    "score_windows",
    "summarise",
    "bicubic_x4",
]

METHODS = ("model", "bicubic", "nearest_phantom")
LAYOUTS = ("continuous", "double")


@dataclass(frozen=True)
class ScoringWindow:
    lq: np.ndarray  # (3, h, w) noisy LR
    hq: np.ndarray  # (2, H, W) Phantom frames before/after
    truth: np.ndarray  # (H, W)
    t: int
    before: int
    after: int


def scoring_windows(
    hr: np.ndarray,
    lr: np.ndarray,
    phantom_every: int,
    *,
    layout: str = "continuous",
    photons: float | None,
    seed: int,
    stride: int = 1,
) -> list[ScoringWindow]:
    """Windows of one clip (``hr`` (N, H, W) truth, ``lr`` (N, h, w) clean) for ``layout``.

    ``continuous``: every ``stride``-th Shimadzu frame strictly between two Phantom
    frames (one every ``phantom_every``). ``double``: the original's double-interval
    scoring, the Phantom frame at ``t`` held out and ``t +- phantom_every`` as context.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    rng = np.random.default_rng([seed, 4242])
    noisy = np.clip(lr, 0.0, 1.0).astype(np.float64)
    if photons is not None:
        noisy = np.clip(rng.poisson(noisy * photons) / photons, 0.0, 1.0)
    noisy = noisy.astype(np.float32)
    n, d = len(hr), phantom_every
    windows = []
    for t in range(1, n - 1, stride):
        if layout == "continuous":
            before = (t // d) * d
            after = before + d
            if t == before or after >= n:
                continue
        else:
            before, after = t - d, t + d
            if before < 0 or after >= n:
                continue
        idx = [t - 1, t, t + 1]
        windows.append(ScoringWindow(noisy[idx], hr[[before, after]], hr[t], t, before, after))
    return windows


def bicubic_x4(lr: np.ndarray, scale: int = 4) -> np.ndarray:
    import cv2

    rows, cols = lr.shape
    up = cv2.resize(lr, (cols * scale, rows * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0.0, 1.0)


@torch.no_grad()
def score_windows(
    model: torch.nn.Module | None, windows: list[ScoringWindow], batch: int = 4
) -> dict[str, list[dict[str, float]]]:
    """Per-window metrics for the model (if given) and both baselines."""
    out: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    preds: list[np.ndarray] = []
    if model is not None:
        model.eval()
        for start in range(0, len(windows), batch):
            chunk = windows[start : start + batch]
            lq = torch.from_numpy(np.stack([w.lq for w in chunk]))[:, :, None]
            hq = torch.from_numpy(np.stack([w.hq for w in chunk]))[:, :, None]
            preds += list(model(lq, hq)[:, 0].clamp(0, 1).numpy())
    for i, w in enumerate(windows):
        if model is not None:
            out["model"].append(frame_metrics(preds[i], w.truth))
        out["bicubic"].append(frame_metrics(bicubic_x4(w.lq[1]), w.truth))
        nearer = 0 if (w.t - w.before) <= (w.after - w.t) else 1
        out["nearest_phantom"].append(frame_metrics(w.hq[nearer], w.truth))
    return {k: v for k, v in out.items() if v}


def summarise(scores: dict[str, list[dict[str, float]]]) -> dict:
    """Mean metrics per method and the model's PSNR gain over each baseline."""
    means = {
        method: {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
        for method, rows in scores.items()
    }
    result: dict = {"n_frames": len(next(iter(scores.values()))), **means}
    if "model" in means:
        result["gain_db"] = {
            "vs_bicubic": means["model"]["psnr"] - means["bicubic"]["psnr"],
            "vs_nearest_phantom": means["model"]["psnr"] - means["nearest_phantom"]["psnr"],
        }
    return result
