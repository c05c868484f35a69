"""8-bit LR | fused | HR panels for the GIF and the montage.

Fused, LR and HR frames share one intensity scale (the fusion callback normalises
both cameras by the same full scale), but real data often fills only part of [0, 1].
The display window is therefore fixed once, from the first window's fused and HR
frames (0.5 and 99.5 percentiles), and used for every panel after it: brightness
does not flicker from frame to frame and panels stay comparable with each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "DisplayWindow",
    "Panels",
    "labelled_gif_frame",
    "lr_upsampled",
    "reference_frame",
    "shrink_to",
]


@dataclass(frozen=True)
class DisplayWindow:
    """Intensity ``lo`` maps to 0 and ``hi`` to 255."""

    lo: float
    hi: float

    @classmethod
    def from_frames(cls, *frames: np.ndarray) -> DisplayWindow:
        values = np.concatenate([np.asarray(f, dtype=np.float32).ravel() for f in frames])
        values = values[np.isfinite(values)]
        if values.size == 0:
            return cls(0.0, 1.0)
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
        if hi - lo < 1e-6:
            return cls(0.0, 1.0)
        return cls(lo, hi)

    def to_uint8(self, image: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(image, dtype=np.float32) - self.lo) * (255.0 / (self.hi - self.lo))
        return np.round(np.clip(np.nan_to_num(scaled), 0.0, 255.0)).astype(np.uint8)


def lr_upsampled(lr_centre: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The centre Shimadzu frame bicubic-upsampled to the fused grid (the baseline's view)."""
    rows, cols = shape
    up = cv2.resize(
        np.asarray(lr_centre, dtype=np.float32), (cols, rows), interpolation=cv2.INTER_CUBIC
    )
    return np.clip(up, 0.0, 1.0)


def reference_frame(hr_frames, truth: np.ndarray | None) -> tuple[np.ndarray, str]:
    """What the HR panel shows: the held-out truth when there is one, else the Phantom
    frame before (the callback gives no Phantom times, so "nearer" cannot be decided)."""
    if truth is not None:
        return truth, "truth"
    return hr_frames[0], "before"


def shrink_to(image: np.ndarray, max_side: int) -> np.ndarray:
    """Area-downsample by an integer factor so the longer side is at most ``max_side``."""
    factor = -(-max(image.shape[:2]) // max_side)
    if factor <= 1:
        return image
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    return cv2.resize(image, (max(cols, 1), max(rows, 1)), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Panels:
    """Three 8-bit panels of one window (the fused one RGB when tinted by an overlay),
    the words that go with them and the window's residual map (noise units) if any."""

    lr: np.ndarray
    fused: np.ndarray
    hr: np.ndarray
    label: str  # one line, the GIF caption
    titles: tuple[str, str, str] = ("", "", "")  # montage column titles
    residual: np.ndarray | None = None  # the montage's residual column
    residual_title: str = ""

    def strip(self, gap: int = 4) -> np.ndarray:
        """LR | fused | HR side by side with a white gap between them (RGB if any panel is)."""
        panels = [self.lr, self.fused, self.hr]
        if any(p.ndim == 3 for p in panels):
            panels = [p if p.ndim == 3 else np.repeat(p[..., None], 3, axis=2) for p in panels]
        sep = np.full((panels[1].shape[0], gap, *panels[1].shape[2:]), 255, dtype=np.uint8)
        return np.concatenate([panels[0], sep, panels[1], sep, panels[2]], axis=1)


def labelled_gif_frame(panels: Panels, band: int = 14):
    """A PIL image: a caption band over the LR | fused | HR strip (mode L, or RGB)."""
    from PIL import Image, ImageDraw

    strip = panels.strip()
    canvas = np.zeros((strip.shape[0] + band, *strip.shape[1:]), dtype=np.uint8)
    canvas[band:] = strip
    image = Image.fromarray(canvas)  # uint8 2-D: mode L; (rows, cols, 3): RGB
    ImageDraw.Draw(image).text((2, 1), panels.label, fill=255 if canvas.ndim == 2 else "white")
    return image
