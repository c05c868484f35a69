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

from ._label import labelled

__all__ = [
    "DisplayWindow",
    "Panels",
    "enlarge_to",
    "labelled_gif_frame",
    "lr_upsampled",
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


def shrink_to(image: np.ndarray, max_side: int, min_width: int = 0) -> np.ndarray:
    """Area-downsample by an integer factor so the longer side is at most ``max_side``,
    but never to fewer than ``min_width`` columns when the image has that many."""
    factor = -(-max(image.shape[:2]) // max_side)
    while factor > 1 and image.shape[1] // factor < min_width:
        factor -= 1
    if factor <= 1:
        return image
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    return cv2.resize(image, (max(cols, 1), max(rows, 1)), interpolation=cv2.INTER_AREA)


def enlarge_to(image: np.ndarray, min_width: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor when the image is under half
    ``min_width`` wide (so a tiny frame can carry a readable label); else unchanged."""
    cols = image.shape[1]
    if cols <= 0 or 2 * cols > min_width:
        return image
    k = -(-min_width // cols)
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


@dataclass(frozen=True)
class Panels:
    """The 8-bit panels of one window (the fused one RGB when tinted by an overlay),
    their titles, the window's residual map (noise units) and its truth, if any.

    ``hr`` is the Phantom input shown: the nearest-in-time baseline when there is a
    truth, else the Phantom frame before.
    """

    lr: np.ndarray
    fused: np.ndarray
    hr: np.ndarray
    titles: tuple[str, str, str] = ("", "", "")  # LR, fused, Phantom
    residual: np.ndarray | None = None  # the montage's residual column
    residual_title: str = ""
    truth: np.ndarray | None = None
    truth_title: str = ""

    def shown(self) -> list[tuple[np.ndarray, str]]:
        """What the GIF shows: LR | fused | truth, or LR | fused | Phantom without one."""
        third = (self.hr, self.titles[2]) if self.truth is None else (self.truth, self.truth_title)
        return [(self.lr, self.titles[0]), (self.fused, self.titles[1]), third]

    def strip(self, gap: int = 4, min_width: int = 0) -> np.ndarray:
        """The GIF's panels side by side, each under its title, white gaps between
        (RGB if any panel is); panels narrower than half ``min_width`` are enlarged."""
        shown = [(enlarge_to(p, min_width), t) for p, t in self.shown()]
        rgb = any(p.ndim == 3 for p, _ in shown)
        n_lines = max(t.count("\n") + 1 for _, t in shown)
        parts = []
        for k, (panel, title) in enumerate(shown):
            if rgb and panel.ndim == 2:
                panel = np.repeat(panel[..., None], 3, axis=2)
            if k:
                parts.append(np.full((0, gap, *panel.shape[2:]), 255, dtype=np.uint8))
            parts.append(labelled(panel, title, n_lines))
        rows = max(p.shape[0] for p in parts)
        parts = [_pad_rows(p, rows) for p in parts]
        return np.concatenate(parts, axis=1)


def _pad_rows(part: np.ndarray, rows: int) -> np.ndarray:
    """White rows under ``part`` up to ``rows`` (a gap grows to the strip's height)."""
    pad = np.full((rows - part.shape[0], *part.shape[1:]), 255, dtype=np.uint8)
    return np.concatenate([part, pad], axis=0)


def labelled_gif_frame(panels: Panels, min_width: int = 0):
    """A PIL image of the GIF strip (mode L, or RGB when a panel is tinted)."""
    from PIL import Image

    return Image.fromarray(panels.strip(min_width=min_width))
