"""The ``between`` scenario of ``quality.py``: what changes between two Phantom frames
that neither Phantom frame shows.

The fused frame borrows its detail from two Phantom frames, lit and placed as they were.
The Shimadzu frame between them may see the field lit or placed otherwise, and the fused
frame must follow it:

- ``flicker``: the beam's intensity at each Shimadzu frame is ``1 + amplitude * U(-1, 1)``
  (a storage ring's bunch pattern seen through a 200 ns exposure, top-up, a shutter);
- ``plume``: a soft absorbing cloud (a Gaussian, sigma a fifth of the frame height)
  rises and clears between Phantom frames, taking up to ``amplitude`` of the light at
  the middle of each interval (vapour over a melt pool, a spray's mist);
- ``shake``: the whole field is displaced at each Shimadzu frame by a whole number of
  fused-grid pixels, up to ``amplitude`` each way (a mount shaken by an impact, a
  sample vibrating faster than the Phantom samples; 4 px is one Shimadzu pixel);
- ``offset``, a control rather than a change: every Shimadzu frame registered
  ``amplitude`` fused-grid pixels off along both axes (a calibration residual), the truth
  where the Phantom has it. A step that moves the fused frame to where the Shimadzu saw
  the field pays for that here.

The Phantom frames keep the light and place they had (a Phantom exposure integrates many
bunches; the cloud is not there and the field at rest at Phantom times). The truth at each Shimadzu time carries the
same light as the Shimadzu frame, and every frame strictly between two Phantom frames
is scored (continuous layout), with how often and by how much the fused frame falls
below bicubic, the baseline that follows the Shimadzu by construction.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KINDS", "between_report", "changed_windows", "registration_residuals"]

KINDS = ("flicker", "plume", "shake", "offset")


def _shaken(hr: np.ndarray, amplitude: float, every: int, rng) -> np.ndarray:
    """``hr`` with each frame between Phantom frames displaced by whole pixels."""
    reach = int(amplitude)
    out = hr.copy()
    for k in range(len(hr)):
        if k % every:
            dy, dx = (int(v) for v in rng.integers(-reach, reach + 1, 2))
            out[k] = np.roll(hr[k], (dy, dx), axis=(0, 1))
    return out


def _offset(hr: np.ndarray, amplitude: float) -> np.ndarray:
    """``hr`` moved by ``amplitude`` pixels along both axes, bicubic (sub-pixel)."""
    import torch

    from xfusion_models.ops import translate

    frames = torch.from_numpy(np.ascontiguousarray(hr))[:, None]
    move = torch.full((len(hr),), float(amplitude))
    return translate(frames, move, move)[:, 0].numpy()


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


def changed_windows(spec, seeds, photons, kind: str, amplitude: float) -> list:
    """Continuous windows at every Shimadzu frame of each clip, changed by ``kind``."""
    from xfusion_models.training import scoring_windows
    from xfusion_stream.simulation.training_set import area_downsample, render_clip

    if kind not in KINDS:
        raise ValueError(f"change {kind!r}: one of {KINDS}")
    if kind == "shake" and not 1 <= amplitude <= 16:
        raise ValueError(f"shake amplitude {amplitude}: 1 to 16 fused-grid pixels")
    if kind == "offset" and not 0 < amplitude <= 8:
        raise ValueError(f"offset amplitude {amplitude}: up to 8 fused-grid pixels")
    if kind in ("flicker", "plume") and not 0.0 < amplitude < 1.0:
        raise ValueError(f"{kind} amplitude {amplitude}: must be between 0 and 1")
    windows: list = []
    for seed in seeds:
        hr, _ = render_clip(spec, seed)
        rng = np.random.default_rng([seed, 271828])
        seen = None  # what the Shimadzu sees, when not the truth itself
        if kind == "shake":
            lit = _shaken(hr, amplitude, spec.phantom_every, rng)
        elif kind == "offset":
            lit, seen = hr, _offset(hr, amplitude)
        else:
            lit = hr * _light(kind, amplitude, hr.shape, spec.phantom_every, rng)
        lr = np.stack([area_downsample(f, spec.ratio) for f in (lit if seen is None else seen)])
        windows += scoring_windows(
            lit, lr, spec.phantom_every, layout="continuous", photons=photons, seed=seed
        )
    return windows


def between_report(preds, windows) -> dict:
    """Mean 8-bit PSNR of fused, bicubic and nearer Phantom frame, and the frames where
    the fused frame is below bicubic."""
    from _fast_quality import _psnr

    from xfusion_models.metrics import to_uint8
    from xfusion_models.training import bicubic_x4

    rows = []
    for pred, w in zip(preds, windows):
        truth8 = to_uint8(w.truth)
        nearer = w.hq[0] if w.t - w.before <= w.after - w.t else w.hq[1]
        rows.append(tuple(_psnr(to_uint8(x), truth8) for x in (pred, bicubic_x4(w.lq[1]), nearer)))
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


def registration_residuals(windows) -> list:
    """Each window's ``ShimadzuMeasurement`` with the offset a fused run gives it: the
    clip's first three simultaneous pairs checked and referred to as
    ``fusion._alignment.AlignmentMonitor`` does (times in frames here). A window just
    after a Phantom frame has that frame first and its Shimadzu frame first."""
    from xfusion_models.ops import ShimadzuMeasurement
    from xfusion_stream.fusion._alignment import AlignmentMonitor, alignment_check

    monitor = AlignmentMonitor(ShimadzuMeasurement(), tolerance_ns=0)
    for w in [w for w in windows if w.t == w.before + 1][: monitor.pairs]:
        monitor.checks.append(alignment_check(w.hq[0], w.lq[0], monitor.shimadzu))
        monitor.check_times.append(w.before)
    return [ShimadzuMeasurement(offset=monitor.reference(w.t)) for w in windows]
