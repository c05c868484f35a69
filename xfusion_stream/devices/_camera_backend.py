"""What a burst camera's hardware does, behind one small Protocol.

The ophyd devices (``PhantomTMX7510``, ``ShimadzuHPVX2``) own the bluesky side
(readings, configuration, HDF5 file, asset documents); everything a real camera does
lives in a backend: arm, record one burst into camera memory, read that memory out
with each frame's hardware timestamp. The simulator, a recorded experiment folder, a
virtual sequence and a watched vendor folder are backends of the same shape. Real
EPICS cameras are not a backend here: they are ophyd-async ``EpicsBurstDetector``s,
whose IOC records and writes the burst (``_ad_epics``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BurstLifecycle",
    "CameraBackend",
    "CameraFrame",
    "CameraSettings",
]


@dataclass(frozen=True)
class CameraFrame:
    """One frame read out of camera memory.

    ``time_ns`` is the camera's own timestamp: Shimadzu ImageRelative (ns after frame
    1); Phantom ns relative to its first 'E' frame. ``e_flag`` is the Phantom's
    trigger flag (always False for the Shimadzu).
    """

    image: np.ndarray
    frame_number: int
    time_ns: int
    e_flag: bool = False


@dataclass(frozen=True)
class CameraSettings:
    """What the camera is set up to record; goes into the descriptor configuration.

    ``pixel_size_um`` is the effective pixel size in the sample plane.
    """

    frame_shape: tuple[int, int]
    n_frames: int
    frame_time_ns: float
    frame_rate_hz: float
    pixel_size_um: float


@runtime_checkable
class CameraBackend(Protocol):
    """Burst camera hardware: arm, record into memory, read out.

    ``readout`` may be called once per ``trigger``; it yields frames in memory order
    (which is hardware-time order), at most ``limit`` of them when ``limit`` is given.
    """

    def settings(self) -> CameraSettings: ...

    def arm(self) -> None: ...

    def trigger(self) -> None: ...

    def readout(self, limit: int | None = None) -> Iterator[CameraFrame]: ...

    def disarm(self) -> None: ...


class BurstLifecycle:
    """Arm -> trigger -> readout bookkeeping that every software backend shares.

    Subclasses set ``source`` (a word for error messages) and ``camera``, and call
    ``_require_recorded()`` before reading out; ``_on_trigger`` may snapshot state.
    """

    source = "camera"
    camera = ""
    _armed = False
    _recorded = False

    def arm(self) -> None:
        self._armed = True
        self._recorded = False

    def disarm(self) -> None:
        self._armed = False

    def trigger(self) -> None:
        if not self._armed:
            raise RuntimeError(
                f"{self.source} {self.camera}: trigger before arm (stage the device)"
            )
        self._on_trigger()
        self._recorded = True

    def _on_trigger(self) -> None:
        """Hook: what recording a burst means for this backend."""

    def _require_recorded(self) -> None:
        if not self._recorded:
            raise RuntimeError(f"{self.source} {self.camera}: readout before trigger")
