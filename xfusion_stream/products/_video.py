"""The MP4 of a fused run: every frame, full resolution, in arrival order.

MPEG-4 part 2 through OpenCV, opened on the first frame (grey, or colour when the
frames carry an overlay); sides are padded to even, as the codec wants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = ["Mp4Writer"]


class Mp4Writer:
    """Appends 8-bit frames (rows, cols) or RGB (rows, cols, 3) of one shape to ``path``."""

    def __init__(self, path: Path, fps: int) -> None:
        self.path = path
        self.fps = fps
        self.frames = 0
        self._writer: Any = None
        self._shape: tuple[int, ...] | None = None

    def write(self, image8: np.ndarray) -> None:
        rows, cols = image8.shape[:2]
        if self._writer is None:
            size = (cols + cols % 2, rows + rows % 2)
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            colour = image8.ndim == 3
            writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, size, colour)
            if not writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write MPEG-4 here")
            self._writer, self._shape = writer, image8.shape
        if image8.shape != self._shape:
            raise ValueError(f"frame shape {image8.shape} differs from the video's {self._shape}")
        pad = ((0, rows % 2), (0, cols % 2)) + (((0, 0),) if image8.ndim == 3 else ())
        padded = np.pad(image8, pad, mode="edge")
        if padded.ndim == 3:
            padded = cv2.cvtColor(padded, cv2.COLOR_RGB2BGR)
        self._writer.write(np.ascontiguousarray(padded))
        self.frames += 1

    def close(self) -> bool:
        """Finish the file; True when it holds at least one frame."""
        if self._writer is None:
            return False
        self._writer.release()
        self._writer = None
        return self.frames > 0 and self.path.is_file()
