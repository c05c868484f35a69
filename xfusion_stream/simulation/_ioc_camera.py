"""What a simulated burst camera records: one burst of a shared Scene, frame by frame.

Both soft-IOC cameras read one ``Scene``, as both real cameras look at one sample; a
lock serialises rendering (the scene caches its last canvas). Every frame comes with
the driver parameters a burst camera stamps on it (``FRAME_PARAMS``), which the HDF5
plugin writes as NDAttributes when the attribute file asks for them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._scene import Scene

__all__ = ["CAMERA_IDENTITIES", "FRAME_PARAMS", "CameraIdentity", "SceneCamera"]

#: driver parameters stamped on each frame: frame number, time (ns), Phantom 'E' flag
FRAME_PARAMS = ("FRAME_NUMBER", "TIME_NS", "TRIGGER_FLAG")

Camera = Literal["phantom", "shimadzu"]


@dataclass(frozen=True)
class CameraIdentity:
    """What the driver reports about itself (``Manufacturer_RBV``, ``Model_RBV``)."""

    manufacturer: str
    model: str


CAMERA_IDENTITIES: dict[str, CameraIdentity] = {
    "phantom": CameraIdentity("Vision Research", "Phantom TMX7510"),
    "shimadzu": CameraIdentity("Shimadzu", "Shimadzu HPV-X2"),
}


class SceneCamera:
    """One camera's view of the shared scene: frame ``i`` with its stamped parameters.

    Phantom frames carry their frame number (0 at the first 'E' frame), the time in ns
    relative to the first 'E' frame, and the 'E' flag; Shimadzu frames are numbered from
    1 (as the HPV-X2 does) with ImageRelative times and no flag.
    """

    def __init__(self, scene: Scene, camera: Camera, lock: threading.Lock) -> None:
        if camera not in CAMERA_IDENTITIES:
            raise ValueError(f"camera must be one of {sorted(CAMERA_IDENTITIES)}, got {camera!r}")
        self.camera = camera
        self.identity = CAMERA_IDENTITIES[camera]
        self._lock = lock
        self.view(scene)

    def view(self, scene: Scene) -> None:
        """Look at ``scene`` from the next burst on (the sample, or the G400 grid)."""
        with self._lock:
            self.scene = scene
        if self.camera == "phantom":
            self._numbers = scene.phantom_frame_numbers()
            self._times = scene.phantom_times_ns()
            self._flags = scene.phantom_e_flags().astype(np.int32)
        else:
            self._times = scene.shimadzu_times_ns()
            self._numbers = np.arange(1, len(self._times) + 1, dtype=np.int64)
            self._flags = np.zeros(len(self._times), dtype=np.int32)

    @property
    def n_frames(self) -> int:
        return len(self._times)

    @property
    def frame_shape(self) -> tuple[int, int]:
        scene = self.scene
        return scene.phantom_shape if self.camera == "phantom" else scene.shimadzu_shape

    @property
    def frame_period_s(self) -> float:
        scene = self.scene
        ns = scene.phantom_period_ns if self.camera == "phantom" else scene.config.shimadzu_frame_ns
        return float(ns) * 1e-9

    def frame(self, i: int) -> tuple[np.ndarray, dict[str, int]]:
        """Frame ``i`` of the burst (uint16) and its ``FRAME_PARAMS`` values."""
        with self._lock:
            if self.camera == "phantom":
                image = self.scene.phantom_frame(i)
            else:
                image = self.scene.shimadzu_frame(i)
        params = {
            "FRAME_NUMBER": int(self._numbers[i]),
            "TIME_NS": int(self._times[i]),
            "TRIGGER_FLAG": int(self._flags[i]),
        }
        return np.asarray(image, dtype=np.uint16), params
