"""How far a fused frame is from what the Shimadzu recorded, in units of its noise.

A fused frame claims the state of the sample at Shimadzu frame t, and the Shimadzu
measured that state, only coarser. ``xfusion_models.ops.ShimadzuMeasurement`` takes
the fused frame through the Shimadzu's optics (area integration over ``ratio x ratio``
pixels, then the extra blur the grid calibration's intensity match measured) and divides
the difference to the registered Shimadzu frame by its shot-noise sigma, per Shimadzu
pixel. Where the fast camera supports the frame the residual is noise (RMS ~1); where the
frame shows a state the fast camera did not see it is large. Every fused frame carries
its RMS, its 99th percentile of |residual| and a small map, so scientists see where a
frame is not supported.

It is computed on the CPU in float32, one frame at a time, from the published (clamped)
fused frame: the same numbers whatever the model's device, precision or batch, so live,
replay and offline runs stay bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xfusion_models.ops import ShimadzuMeasurement

from ..calibration import CalibrationRecord, Registration

__all__ = [
    "MAP_MAX_SIDE",
    "MAP_REDUCTION",
    "NOISE_UNITS",
    "RESIDUAL_MEANING",
    "ShimadzuResidual",
    "mean_residual",
    "residual_map",
    "residual_map_shape",
    "shimadzu_measurement",
    "shimadzu_residuals",
]

#: Longest side (Shimadzu px) of the residual map an event carries.
MAP_MAX_SIDE = 64
#: The fused frame is this many times the Shimadzu frame on each axis (both
#: architectures upsample x4), so the map's shape follows from the fused frame's.
FUSED_PER_SHIMADZU = 4
#: The fused-frame schema's words for it.
NOISE_UNITS = "shot-noise sigma"
RESIDUAL_MEANING = (
    "(Shimadzu frame t - what the Shimadzu would record of the fused frame) / its "
    "shot-noise sigma, per Shimadzu pixel: ~1 where the fast camera supports the frame"
)
MAP_REDUCTION = (
    f"a Shimadzu frame longer than {MAP_MAX_SIDE} px is reduced by k = ceil(long side / "
    f"{MAP_MAX_SIDE}): each value is the residual of largest magnitude (sign kept) of "
    "its k x k block"
)


#: Seed and size of the white-noise frame that measures how registration changes noise.
_NOISE_PROBE_SEED = 20261201
_NOISE_PROBE_SIGMA = 0.01


def shimadzu_measurement(
    record: CalibrationRecord, registration: Registration | None = None
) -> ShimadzuMeasurement:
    """How the Shimadzu measures the fused grid for this calibration: its ratio, the
    extra blur its intensity match found (0 without one), and how registration changes
    the noise the frame-based estimate reads.

    Registration resamples the Shimadzu frame (bilinear), which smooths the finest-scale
    noise that estimator looks at, so it reads low. A flat frame of white noise pushed
    through the same registration tells by how much, once per calibration.
    """
    registration = registration or Registration(record)
    rows, cols = record.shimadzu_shape
    rng = np.random.default_rng(_NOISE_PROBE_SEED)
    probe = (0.5 + rng.normal(0.0, _NOISE_PROBE_SIGMA, (rows, cols))).astype(np.float32)
    registered = registration.shimadzu_lr(probe)
    registered = (registered - registered.mean() + 0.5).astype(np.float32)
    true_sigma = float(registered.std())
    lr = torch.from_numpy(np.ascontiguousarray(registered))[None, None]
    read_sigma = float(ShimadzuMeasurement().sigma(lr).mean())
    scale = true_sigma / read_sigma if read_sigma > 0 and true_sigma > 0 else 1.0
    blur = record.intensity.extra_blur_px if record.intensity is not None else 0.0
    return ShimadzuMeasurement(ratio=record.ratio, blur_px=float(blur), noise_scale=scale)


@dataclass(frozen=True)
class ShimadzuResidual:
    """One fused frame against Shimadzu frame t, in noise units."""

    rms: float
    p99: float  # 99th percentile of |residual|
    map: np.ndarray  # float32 (``residual_map``), ``residual_map_shape`` of the fused frame


def _map_factor(lr_shape: tuple[int, int]) -> int:
    return max(1, math.ceil(max(lr_shape) / MAP_MAX_SIDE))


def residual_map_shape(frame_shape: tuple[int, int]) -> tuple[int, int]:
    """The map's shape for a fused frame of ``frame_shape``."""
    h, w = (side // FUSED_PER_SHIMADZU for side in frame_shape)
    k = _map_factor((h, w))
    return (-(-h // k), -(-w // k))


def residual_map(residual: np.ndarray) -> np.ndarray:
    """The per-Shimadzu-pixel residual, reduced to at most ``MAP_MAX_SIDE`` on its long
    side: blocks of k x k pixels (k = ceil(long side / 64)), each the block's residual
    of largest magnitude with its sign, so a contradiction one pixel wide stays visible."""
    h, w = residual.shape
    k = _map_factor((h, w))
    if k == 1:
        return residual.astype(np.float32, copy=True)
    mh, mw = -(-h // k), -(-w // k)
    padded = np.zeros((mh * k, mw * k), dtype=np.float32)  # |0| never wins over a pixel
    padded[:h, :w] = residual
    blocks = padded.reshape(mh, k, mw, k).transpose(0, 2, 1, 3).reshape(mh, mw, k * k)
    pick = np.argmax(np.abs(blocks), axis=-1)[..., None]  # NaN wins: it stays visible
    return np.take_along_axis(blocks, pick, axis=-1)[..., 0]


def _one(image: np.ndarray, centre: np.ndarray, shimadzu: ShimadzuMeasurement) -> ShimadzuResidual:
    hr = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    lr = torch.from_numpy(np.ascontiguousarray(centre, dtype=np.float32))[None, None]
    r = shimadzu.residual(hr, lr)[0, 0].numpy()
    magnitude = np.abs(r, dtype=np.float64)
    return ShimadzuResidual(
        rms=float(np.sqrt(np.mean(magnitude**2))),
        p99=float(np.percentile(magnitude, 99.0)),
        map=residual_map(r),
    )


def shimadzu_residuals(
    images: Sequence[np.ndarray], centres: Sequence[np.ndarray], shimadzu: ShimadzuMeasurement
) -> list[ShimadzuResidual]:
    """One residual per fused frame (4h, 4w) and its registered Shimadzu frame t (h, w)."""
    with torch.inference_mode():
        return [
            _one(image, centre, shimadzu) for image, centre in zip(images, centres, strict=True)
        ]


def mean_residual(values: Sequence[float]) -> float | None:
    """Mean over frames of a residual statistic, finite values only, rounded for JSON;
    None when no frame has one."""
    finite = [v for v in values if math.isfinite(v)]
    return round(float(np.mean(finite)), 3) if finite else None
