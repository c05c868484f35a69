"""The registered frames of one run that windows still need, within a memory bound."""

from __future__ import annotations

import numpy as np

from ..calibration import Window
from ..core import DocumentError

__all__ = ["FrameRing"]


class FrameRing:
    """Registered frames by camera and position until their windows are cut; a run whose
    waiting frames pass ``max_mib`` fails (one camera stopped, or they do not pair)."""

    def __init__(self, max_mib: float) -> None:
        self.max_mib = max_mib
        self.frames: dict[str, dict[int, np.ndarray]] = {"phantom": {}, "shimadzu": {}}
        self.nbytes = 0

    def clear(self) -> None:
        self.frames = {"phantom": {}, "shimadzu": {}}
        self.nbytes = 0

    def keep(self, camera: str, position: int, frame: np.ndarray) -> None:
        frames = self.frames[camera]
        old = frames.get(position)
        self.nbytes += frame.nbytes - (old.nbytes if old is not None else 0)
        frames[position] = frame
        if self.nbytes > self.max_mib * 2**20:
            counts = {c: len(f) for c, f in self.frames.items()}
            raise DocumentError(
                "event",
                None,
                f"{self.nbytes / 2**20:.0f} MiB of frames ({counts}) wait for windows, over "
                f"max_buffered_mib={self.max_mib}: one camera's frames "
                "stopped arriving or do not pair",
            )

    def get(self, camera: str, position: int) -> np.ndarray:
        try:
            return self.frames[camera][position]
        except KeyError:
            raise DocumentError(
                "event",
                None,
                f"{camera} frame {position} needed by a window is not in the ring buffer",
            ) from None

    def prune(self, w: Window) -> None:
        """Drop frames no later window can need (windows complete in time order)."""
        for camera, keep_from in (("shimadzu", min(w.lr)), ("phantom", min(w.hr))):
            frames = self.frames[camera]
            for p in [p for p in frames if p < keep_from]:
                self.nbytes -= frames.pop(p).nbytes
