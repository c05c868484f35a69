"""Pictures of the residual against the Shimadzu frame: where a fused frame is not
supported by the fast camera.

Each fused event carries a small map of (Shimadzu frame t - what the Shimadzu would
record of the fused frame) in noise units. The montage shows it on a diverging scale
(``RESIDUAL_COLORMAP``, clipped at +-``RESIDUAL_LIMIT``); the GIF and MP4 can tint the
fused frame where ``|residual| > TINT_THRESHOLD``: red where the Shimadzu saw more
intensity than the fused frame explains, blue where it saw less (the colours of the
montage's scale). Three sigma: a frame the Shimadzu supports is almost untinted.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "OVERLAYS",
    "RESIDUAL_COLORMAP",
    "RESIDUAL_LIMIT",
    "TINT_THRESHOLD",
    "residual_caption",
    "tint_unsupported",
]

#: What ``ProductWriter(overlay=...)`` accepts.
OVERLAYS = (None, "residual")
#: Matplotlib colormap and range (noise units) of the montage's residual column.
RESIDUAL_COLORMAP = "RdBu_r"
RESIDUAL_LIMIT = 5.0
#: |residual| (noise units) above which the overlay tints the fused frame.
TINT_THRESHOLD = 3.0
_ALPHA = 0.55
_ABOVE = np.array([230, 30, 30], dtype=np.float32)  # Shimadzu brighter than explained
_BELOW = np.array([30, 90, 240], dtype=np.float32)  # Shimadzu darker than explained


def tint_unsupported(
    image8: np.ndarray, residual_map: np.ndarray, threshold: float = TINT_THRESHOLD
) -> np.ndarray:
    """RGB uint8 copy of the 8-bit frame, tinted where the map (stretched over the frame,
    nearest neighbour) exceeds ``threshold`` in magnitude; NaN never tints."""
    rows, cols = image8.shape[:2]
    rgb = np.repeat(np.asarray(image8, dtype=np.float32)[..., None], 3, axis=2)
    r = np.asarray(residual_map, dtype=np.float32)
    if r.ndim != 2 or r.size == 0:
        return rgb.astype(np.uint8)
    finite = np.where(np.isnan(r), np.float32(0.0), r).astype(np.float32)
    r = np.asarray(cv2.resize(finite, (cols, rows), interpolation=cv2.INTER_NEAREST))
    for mask, colour in ((r > threshold, _ABOVE), (r < -threshold, _BELOW)):
        rgb[mask] = (1.0 - _ALPHA) * rgb[mask] + _ALPHA * colour
    return np.round(rgb).astype(np.uint8)


def residual_caption(rms: float, p99: float) -> str:
    """Short words for a frame's residual ("" when it has none)."""
    if not np.isfinite(rms):
        return ""
    return f"RMS {rms:.2f}, p99 {p99:.1f} sigma"
