"""Apply a calibration record to frames: one remap per Shimadzu frame, one slice per Phantom.

The Shimadzu frame is sampled, on its own LR grid, at the points that see the centres
of the crop's LR-grid pixels; the Phantom frame is only cropped. Both keep the input
intensity scale (normalisation is the caller's business).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import CalibrationError
from ._record import CalibrationRecord

__all__ = ["Registration"]


class Registration:
    """Precomputed remap tables for one calibration record."""

    def __init__(self, record: CalibrationRecord) -> None:
        self.record = record
        r = record.ratio
        crop = record.crop
        if crop.width % r or crop.height % r:
            raise CalibrationError(
                f"calibration {record.uid}: crop {crop.width}x{crop.height} is not a "
                f"multiple of the ratio {r}"
            )
        self.lr_shape = (crop.height // r, crop.width // r)
        self.hr_shape = (crop.height, crop.width)
        half = (r - 1) / 2.0
        ys, xs = np.mgrid[0 : self.lr_shape[0], 0 : self.lr_shape[1]].astype(np.float64)
        px = crop.x + r * xs + half
        py = crop.y + r * ys + half
        inverse = np.linalg.inv(record.matrix_array())
        qx = inverse[0, 0] * px + inverse[0, 1] * py + inverse[0, 2]
        qy = inverse[1, 0] * px + inverse[1, 1] * py + inverse[1, 2]
        # Shimadzu HR-grid coordinate -> LR pixel coordinate (centre convention).
        self._map_x = ((qx - half) / r).astype(np.float32)
        self._map_y = ((qy - half) / r).astype(np.float32)

    def _check(self, frame: np.ndarray, expected: tuple[int, int], camera: str) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.shape != tuple(expected):
            raise CalibrationError(
                f"calibration {self.record.uid}: {camera} frame shape {frame.shape} does not "
                f"match the calibrated shape {tuple(expected)}"
            )
        return frame.astype(np.float32, copy=False)

    def shimadzu_lr(self, frame: np.ndarray) -> np.ndarray:
        """Registered Shimadzu frame, float32 (crop_h / ratio, crop_w / ratio), bilinear,
        on the Phantom's count scale when the record carries an intensity match."""
        src = self._check(frame, self.record.shimadzu_shape, "shimadzu")
        out = cv2.remap(
            src, self._map_x, self._map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        match = self.record.intensity
        return out if match is None else match.apply(out)

    def phantom_hr(self, frame: np.ndarray) -> np.ndarray:
        """The crop of the Phantom frame, float32 (crop_h, crop_w)."""
        src = self._check(frame, self.record.phantom_shape, "phantom")
        c = self.record.crop
        return np.ascontiguousarray(src[c.y : c.y + c.height, c.x : c.x + c.width])
