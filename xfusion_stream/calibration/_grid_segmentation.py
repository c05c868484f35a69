"""Find the open squares of a G400 grid image and their sub-pixel centres.

Copper bars absorb, so the squares are the bright holes of a dark mesh. The centres
are intensity-weighted centroids: binning and bilinear upsampling both preserve the
first moment, so a centroid measured on the upsampled Shimadzu image sits where the
square really is on the Shimadzu HR grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.segmentation import clear_border, expand_labels

from ..core import CalibrationError

__all__ = ["GridSquares", "estimate_pitch", "find_squares"]


@dataclass(frozen=True)
class GridSquares:
    """Square centres ``(N, 2)`` as (x, y) pixel coordinates, with their areas in px."""

    centres: np.ndarray
    areas: np.ndarray
    pitch_px: float


def estimate_pitch(image: np.ndarray) -> float:
    """Grid period in pixels from the strongest non-DC peak of the power spectrum."""
    img = image.astype(np.float64)
    img = img - img.mean()
    window = np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    power = np.abs(np.fft.fft2(img * window)) ** 2
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.fftfreq(img.shape[1])[None, :]
    radius = np.hypot(fx, fy)
    # Ignore periods longer than a third of the frame (illumination, not the grid)
    # and shorter than 4 px (noise).
    lowest = 3.0 / min(img.shape)
    power[(radius < lowest) | (radius > 0.25)] = 0.0
    iy, ix = np.unravel_index(np.argmax(power), power.shape)
    f = radius[iy, ix]
    if f <= 0:
        raise CalibrationError("no grid period found in the image (flat or empty frame)")
    return float(1.0 / f)


def _normalise(image: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    lo, hi = np.percentile(image, [low, high])
    if hi <= lo:
        raise CalibrationError("grid image has no contrast (percentiles 1 and 99 are equal)")
    return ((image - lo) / (hi - lo)).astype(np.float32)


def _square_mask(tophat: np.ndarray, pitch: float) -> np.ndarray:
    """Binary mask of the open squares: blur, Otsu, close, holes of the largest mesh."""
    sigma = max(0.5, pitch / 40.0)
    blurred = cv2.GaussianBlur(tophat, (0, 0), sigma)
    bright = blurred > threshold_otsu(blurred)
    close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    bright = cv2.morphologyEx(bright.astype(np.uint8), cv2.MORPH_CLOSE, close).astype(bool)
    bars, n = ndi.label(~bright)
    if n == 0:
        raise CalibrationError("no grid bars found (image saturated?)")
    sizes = ndi.sum_labels(np.ones_like(bars), bars, index=np.arange(1, n + 1))
    mesh = bars == (1 + int(np.argmax(sizes)))
    squares = ndi.binary_fill_holes(mesh) & ~mesh
    return clear_border(squares)


def find_squares(image: np.ndarray, pitch_px: float | None = None) -> GridSquares:
    """Segment the grid squares of ``image`` and return their weighted centroids.

    ``pitch_px`` is only a hint for kernel sizes; estimated from the spectrum if None.
    """
    img = _normalise(np.asarray(image, dtype=np.float32))
    pitch = float(pitch_px) if pitch_px else estimate_pitch(img)
    size = int(2 * round(0.75 * pitch) + 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    tophat = cv2.morphologyEx(img, cv2.MORPH_TOPHAT, kernel)
    labels, n = ndi.label(_square_mask(tophat, pitch))
    if n < 5:
        raise CalibrationError(
            f"only {n} grid squares segmented (need at least 5: the centre square and its "
            "4 neighbours); check focus, exposure and that the grid fills the field"
        )
    index = np.arange(1, n + 1)
    areas = ndi.sum_labels(np.ones_like(labels), labels, index=index)
    median = np.median(areas)
    keep = (areas > 0.5 * median) & (areas < 1.6 * median)
    # Renormalise between the bar and the open-square levels so that bars weigh zero.
    bar_level = np.percentile(tophat[labels == 0], 50)
    open_level = np.percentile(tophat[labels > 0], 90)
    weights = np.clip((tophat - bar_level) / max(open_level - bar_level, 1e-6), 0.0, 1.0)
    grown = expand_labels(labels, distance=max(1.0, 0.12 * pitch))
    centres = np.array(ndi.center_of_mass(weights, grown, index[keep]), dtype=np.float64)
    if centres.size == 0:
        raise CalibrationError("no grid square of typical size found")
    return GridSquares(centres=centres[:, ::-1].copy(), areas=areas[keep], pitch_px=pitch)
