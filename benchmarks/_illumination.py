"""The illumination scenario of ``quality.py``: the light changes between Phantom frames.

The fused frame borrows its detail from two Phantom frames, lit as they were lit. The
Shimadzu frame between them may be lit otherwise, and the fused frame must follow it:

- ``flicker``: the beam's intensity at each Shimadzu frame is ``1 + amplitude * U(-1, 1)``
  (a storage ring's bunch pattern seen through a 200 ns exposure, top-up, a shutter);
- ``plume``: a soft absorbing cloud (a Gaussian, sigma a fifth of the frame height)
  rises and clears between Phantom frames, taking up to ``amplitude`` of the light at
  the middle of each interval (vapour over a melt pool, a spray's mist).

The Phantom frames keep the light they had (a Phantom exposure integrates many bunches;
the cloud is not there at Phantom times). The truth at each Shimadzu time carries the
same light as the Shimadzu frame, and every frame strictly between two Phantom frames
is scored (continuous layout), with how often and by how much the fused frame falls
below bicubic, the baseline that follows the Shimadzu by construction.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KINDS", "illuminated_windows", "illumination_report"]

KINDS = ("flicker", "plume")


def _light(kind: str, amplitude: float, shape, every: int, rng) -> np.ndarray:
    """Per Shimadzu frame, the light on the fused grid (frames, H, W); 1 at Phantom times."""
    n, rows, cols = shape
    phase = (np.arange(n) % every) / every
    if kind == "flicker":
        beam = 1.0 + amplitude * rng.uniform(-1.0, 1.0, n)
        beam[phase == 0] = 1.0
        return np.broadcast_to(beam[:, None, None], shape).astype(np.float32)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    cy, cx = rng.uniform(0.3, 0.7) * rows, rng.uniform(0.3, 0.7) * cols
    cloud = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.2 * rows) ** 2))
    depth = amplitude * np.sin(np.pi * phase)
    return (1.0 - depth[:, None, None] * cloud[None]).astype(np.float32)


def illuminated_windows(spec, seeds, photons, kind: str, amplitude: float) -> list:
    """Continuous windows at every Shimadzu frame of each clip, lit by ``kind``."""
    from xfusion_models.training import scoring_windows
    from xfusion_stream.simulation.training_set import area_downsample, render_clip

    if kind not in KINDS:
        raise ValueError(f"illumination {kind!r}: one of {KINDS}")
    if not 0.0 < amplitude < 1.0:
        raise ValueError(f"illumination amplitude {amplitude}: must be between 0 and 1")
    windows: list = []
    for seed in seeds:
        hr, _ = render_clip(spec, seed)
        rng = np.random.default_rng([seed, 271828])
        lit = hr * _light(kind, amplitude, hr.shape, spec.phantom_every, rng)
        lr = np.stack([area_downsample(f, spec.ratio) for f in lit])
        windows += scoring_windows(
            lit, lr, spec.phantom_every, layout="continuous", photons=photons, seed=seed
        )
    return windows


def _psnr8(image: np.ndarray, truth8: np.ndarray) -> float:
    image8 = np.round(np.clip(image, 0.0, 1.0) * 255.0)
    mse = float(np.mean((image8 - truth8) ** 2))
    return 10.0 * np.log10(255.0**2 / mse) if mse > 0 else 99.0


def illumination_report(preds, windows) -> dict:
    """Mean 8-bit PSNR of fused, bicubic and nearer Phantom frame, and the frames where
    the fused frame is below bicubic."""
    from xfusion_models.training import bicubic_x4

    rows = []
    for pred, w in zip(preds, windows):
        truth8 = np.round(np.clip(w.truth, 0.0, 1.0) * 255.0)
        nearer = w.hq[0] if w.t - w.before <= w.after - w.t else w.hq[1]
        rows.append(
            (_psnr8(pred, truth8), _psnr8(bicubic_x4(w.lq[1]), truth8), _psnr8(nearer, truth8))
        )
    table = np.array(rows)
    below = table[:, 0] - table[:, 1]
    return {
        "n_frames": len(rows),
        "psnr": {
            name: round(float(table[:, i].mean()), 2)
            for i, name in enumerate(("fused", "bicubic", "nearest"))
        },
        "frames_below_bicubic": int((below < 0).sum()),
        "worst_vs_bicubic_db": round(float(below.min()), 2),
    }
