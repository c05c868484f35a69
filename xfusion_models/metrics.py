"""Image quality on 8-bit, as the XFusion paper reports it.

Every metric first quantises both images to 8 bit (``round(clip(x, 0, 1) * 255)`` for
float input, uint8 passes through), so numbers are comparable with the paper's tables:
PSNR = 10 log10(255^2 / MSE), AAD = mean |a - b|, SSIM (Wang et al., Gaussian window
sigma 1.5, data range 255).
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_uint8", "psnr", "ssim", "aad", "frame_metrics"]

_PEAK = 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] (or uint8) -> uint8, the way the metrics see it."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"metrics take float images in [0, 1] or uint8, got dtype {arr.dtype}")
    return np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * _PEAK).astype(np.uint8)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a8, b8 = to_uint8(a), to_uint8(b)
    if a8.shape != b8.shape:
        raise ValueError(f"metric inputs differ in shape: {a8.shape} vs {b8.shape}")
    if a8.ndim != 2:
        raise ValueError(f"metrics take single 2-D gray frames, got shape {a8.shape}")
    return a8.astype(np.float64), b8.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB on 8 bit; ``inf`` for identical frames."""
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(_PEAK**2 / mse))


def aad(a: np.ndarray, b: np.ndarray) -> float:
    """Average absolute difference in 8-bit grey levels."""
    x, y = _pair(a, b)
    return float(np.mean(np.abs(x - y)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity, data range 255, Gaussian-weighted (sigma 1.5) statistics."""
    from skimage.metrics import structural_similarity

    x, y = _pair(a, b)
    if min(x.shape) < 11:
        raise ValueError(f"ssim needs frames of at least 11x11 pixels, got {x.shape}")
    return float(
        structural_similarity(
            x,
            y,
            data_range=_PEAK,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def frame_metrics(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """All three metrics for one frame, keyed ``psnr``, ``ssim``, ``aad``."""
    return {
        "psnr": psnr(prediction, truth),
        "ssim": ssim(prediction, truth),
        "aad": aad(prediction, truth),
    }
