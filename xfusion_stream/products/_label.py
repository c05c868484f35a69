"""Words burnt into 8-bit pictures (GIF and MP4 frames): a dark band with light text.

OpenCV's vector font, anti-aliased, scaled down until the longest line fits the band's
width (never below a floor, so very narrow panels clip rather than turn unreadable).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["LINE_HEIGHT", "band_height", "labelled", "text_band"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE = 0.5  # about 11 px high capitals
_MIN_SCALE = 0.35
#: Pixels per line of text in a band.
LINE_HEIGHT = 18


def band_height(n_lines: int) -> int:
    """Height of a band holding ``n_lines`` lines."""
    return LINE_HEIGHT * max(n_lines, 1) + 4


def _fit_scale(lines: list[str], width: int) -> float:
    scale = _SCALE
    while scale > _MIN_SCALE:
        widest = max(cv2.getTextSize(s, _FONT, scale, 1)[0][0] for s in lines)
        if widest + 8 <= width:
            break
        scale -= 0.05
    return max(scale, _MIN_SCALE)


def text_band(text: str, width: int, n_lines: int | None = None, rgb: bool = False) -> np.ndarray:
    """A black band ``width`` wide with ``text`` (lines split at newlines) in white."""
    lines = text.split("\n") if text else [""]
    height = band_height(n_lines if n_lines is not None else len(lines))
    band = np.zeros((height, width), dtype=np.uint8)
    scale = _fit_scale(lines, width)
    for k, line in enumerate(lines):
        y = LINE_HEIGHT * (k + 1) - 3
        cv2.putText(band, line, (4, y), _FONT, scale, 255, 1, cv2.LINE_AA)
    return np.repeat(band[..., None], 3, axis=2) if rgb else band


def labelled(image8: np.ndarray, text: str, n_lines: int | None = None) -> np.ndarray:
    """``image8`` (grey or RGB) under a band carrying ``text``."""
    band = text_band(text, image8.shape[1], n_lines, rgb=image8.ndim == 3)
    return np.concatenate([band, image8], axis=0)
