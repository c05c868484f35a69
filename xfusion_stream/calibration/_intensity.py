"""Intensity calibration: Shimadzu counts on the Phantom's count scale.

The two cameras digitise the same x-ray intensity with different gains and dark
offsets (and, on real hardware, different bit depths). The fusion model expects one
scale for both, so the grid run that fixes the geometry also fixes the intensities:
where both cameras image the static grid, the registered Phantom frame averaged over
each Shimadzu pixel is regressed on the registered Shimadzu frame, ``phantom ~ gain *
shimadzu + offset``. The Shimadzu image is blurrier (its optics, and the resampling
that registers it), and a blur difference biases a regression slope; so the Phantom is
first blurred by the Gaussian that makes it fit the Shimadzu best (searched, and kept
in the record as the Shimadzu's extra point spread), and both are then smoothed alike.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..core import CalibrationError

__all__ = ["IntensityMatch", "match_intensity", "MIN_R2"]

#: Candidate sigmas (Shimadzu px) for the Shimadzu's extra blur.
BLUR_SEARCH = tuple(np.round(np.arange(0.0, 2.01, 0.1), 2))
#: Below this coefficient of determination the two cameras did not see the same thing
#: (wrong registration, saturated or empty frames) and no intensity match is recorded.
MIN_R2 = 0.8
#: What a record may claim: Phantom counts per Shimadzu count, and the offset in Phantom
#: counts. Real pairs (8- to 16-bit counts, or counts against 0..1 floats) sit well
#: inside; outside, the mapped Shimadzu frame is not on the Phantom's scale at all (or
#: overflows float32) and every consistency figure computed from it is meaningless.
GAIN_RANGE = (1e-6, 1e6)
OFFSET_LIMIT = 1e6
#: Largest extra Shimadzu blur (Shimadzu px) a record may claim; the fit searches 0..2.
MAX_EXTRA_BLUR_PX = 10.0


class IntensityMatch(BaseModel):
    """``phantom_counts ~ shimadzu_gain * shimadzu_counts + shimadzu_offset_counts``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    shimadzu_gain: float = Field(ge=GAIN_RANGE[0], le=GAIN_RANGE[1])
    shimadzu_offset_counts: float = Field(ge=-OFFSET_LIMIT, le=OFFSET_LIMIT)
    r2: float = Field(ge=0, le=1, description="fit quality over the registered crop")
    n_pixels: int = Field(gt=0, description="Shimadzu pixels the fit used")
    extra_blur_px: float = Field(
        0.0,
        ge=0,
        le=MAX_EXTRA_BLUR_PX,
        description="Gaussian sigma (Shimadzu px) that matched the Phantom's sharpness",
    )

    def apply(self, shimadzu: np.ndarray) -> np.ndarray:
        """Shimadzu counts (float) -> the same frame on the Phantom's count scale, float32."""
        out = shimadzu.astype(np.float32, copy=True)
        out *= np.float32(self.shimadzu_gain)
        out += np.float32(self.shimadzu_offset_counts)
        return out


def match_intensity(
    phantom_hr: np.ndarray,
    shimadzu_lr: np.ndarray,
    ratio: int,
    *,
    smooth_px: float = 1.0,
    border_px: int = 2,
    source: str = "grid run",
) -> IntensityMatch:
    """Fit the Shimadzu -> Phantom count mapping from registered mean frames.

    ``phantom_hr`` (ratio*h, ratio*w) and ``shimadzu_lr`` (h, w): the same field of view
    after registration, in counts. ``smooth_px`` is the Gaussian sigma in Shimadzu
    pixels; ``border_px`` Shimadzu pixels at each edge are left out.
    """
    h, w = shimadzu_lr.shape
    if phantom_hr.shape != (h * ratio, w * ratio):
        raise CalibrationError(
            f"{source}: intensity match needs the Phantom crop {ratio}x the Shimadzu "
            f"frame, got {phantom_hr.shape} and {shimadzu_lr.shape}"
        )
    phantom_lr = np.asarray(
        cv2.resize(phantom_hr.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA),
        dtype=np.float64,
    )
    shimadzu = np.asarray(shimadzu_lr, dtype=np.float64)
    if smooth_px > 0:
        phantom_lr = np.asarray(cv2.GaussianBlur(phantom_lr, (0, 0), smooth_px))
        shimadzu = np.asarray(cv2.GaussianBlur(shimadzu, (0, 0), smooth_px))
    inner = (slice(border_px, h - border_px), slice(border_px, w - border_px))
    s = shimadzu[inner]
    if s.size < 16 or np.std(s) <= 1e-9 * max(1.0, abs(float(np.mean(s)))):
        raise CalibrationError(
            f"{source}: the Shimadzu frame is flat over the registered crop "
            f"({s.size} pixels); no intensity match can be fitted"
        )
    fits = [_fit(phantom_lr, s, inner, sigma) for sigma in BLUR_SEARCH]
    gain, offset, r2, sigma = max(fits, key=lambda fit: fit[2])
    if gain <= 0 or r2 < MIN_R2:
        raise CalibrationError(
            f"{source}: Phantom and Shimadzu intensities do not match linearly over the "
            f"registered crop (gain {gain:.4g}, r2 {r2:.3f} < {MIN_R2}); check the "
            "registration and that neither camera is saturated or dark"
        )
    if not (GAIN_RANGE[0] <= gain <= GAIN_RANGE[1] and abs(offset) <= OFFSET_LIMIT):
        raise CalibrationError(
            f"{source}: the fitted intensity match (gain {gain:.4g}, offset {offset:.4g}) "
            f"is outside what two cameras of one beam give (gain {GAIN_RANGE[0]:g}.."
            f"{GAIN_RANGE[1]:g}, |offset| <= {OFFSET_LIMIT:g})"
        )
    return IntensityMatch(
        shimadzu_gain=float(gain),
        shimadzu_offset_counts=float(offset),
        r2=float(np.clip(r2, 0.0, 1.0)),
        n_pixels=int(s.size),
        extra_blur_px=float(sigma),
    )


def _fit(
    phantom_lr: np.ndarray, s: np.ndarray, inner: tuple[slice, slice], sigma: float
) -> tuple[float, float, float, float]:
    """Least squares ``blur(phantom, sigma)[inner] ~ gain * s + offset``, blurring the whole
    frame before cutting the border -> (gain, offset, r2, sigma)."""
    blurred = cv2.GaussianBlur(phantom_lr, (0, 0), sigma) if sigma > 0 else phantom_lr
    x, y = s.ravel(), blurred[inner].ravel()
    gain, offset = np.polyfit(x, y, 1)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - (gain * x + offset)) ** 2)) / total if total > 0 else 0.0
    return float(gain), float(offset), r2, float(sigma)
