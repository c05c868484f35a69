"""Degradations and augmentations applied to a training sample.

Shot noise goes on the Shimadzu (LR) frames only: the Phantom (HR) frames collect far
more photons per pixel. The photon count at full intensity is ``b0 = 10**U(e0, e1)``
(x-ray fine tuning in the original used ``[1, 7]``), one draw per sample.
"""

from __future__ import annotations

import numpy as np

__all__ = ["poisson_noise", "augment", "random_crop"]


def poisson_noise(
    frames: np.ndarray, log10_photons: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """``clip(Poisson(img * b0) / b0, 0, 1)`` with one ``b0`` for every frame given."""
    lo, hi = log10_photons
    b0 = 10.0 ** rng.uniform(lo, hi)
    noisy = rng.poisson(np.clip(frames, 0.0, 1.0).astype(np.float64) * b0) / b0
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def augment(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Same random flip / 90-degree turn on every array (last two axes are rows, cols)."""
    hflip, vflip, turn = rng.random(3) < 0.5
    out = []
    for a in arrays:
        if hflip:
            a = a[..., :, ::-1]
        if vflip:
            a = a[..., ::-1, :]
        if turn:
            a = np.swapaxes(a, -1, -2)
        out.append(np.ascontiguousarray(a))
    return out


def random_crop(
    lr: np.ndarray,
    hr: list[np.ndarray],
    crop: int,
    scale: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Crop ``crop x crop`` from the LR stack and the matching ``scale``-times patch of HR."""
    rows, cols = lr.shape[-2:]
    if rows < crop or cols < crop:
        raise ValueError(f"LR frames of {rows}x{cols} are smaller than the crop {crop}")
    top = int(rng.integers(0, rows - crop + 1))
    left = int(rng.integers(0, cols - crop + 1))
    lr_patch = lr[..., top : top + crop, left : left + crop]
    y, x, side = top * scale, left * scale, crop * scale
    return lr_patch, [h[..., y : y + side, x : x + side] for h in hr]
