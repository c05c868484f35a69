"""What a burst camera's hardware does, behind one small Protocol.

The ophyd devices (``PhantomTMX7510``, ``ShimadzuHPVX2``) own the bluesky side
(readings, configuration, HDF5 file, asset documents); everything a real camera does
lives in a backend: arm, record one burst into camera memory, read that memory out
with each frame's hardware timestamp. The simulator, a recorded experiment folder and
(later) EPICS areaDetector are three backends of the same shape.
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
    "EpicsAreaDetectorBackend",
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


class EpicsAreaDetectorBackend:
    """Skeleton of the EPICS areaDetector backend: where the PVs will be used.

    Not implemented: no beamline here runs EPICS. The class exists so a profile can
    name the PV prefix and so the shape of the real backend is fixed:
    ``arm`` -> ``{prefix}cam1:Acquire`` armed in burst mode, ``trigger`` -> wait for
    the hardware trigger and ``{prefix}cam1:DetectorState_RBV`` back to Idle,
    ``readout`` -> the HDF5 plugin's file plus per-frame timestamps from the vendor
    SDK. Every method raises ``NotImplementedError`` naming the prefix.
    """

    def __init__(self, prefix: str, camera_model: str) -> None:
        self.prefix = prefix
        self.camera_model = camera_model

    def _missing(self, what: str) -> NotImplementedError:
        return NotImplementedError(
            f"EPICS backend for {self.camera_model} (prefix {self.prefix!r}) does not "
            f"implement {what}; use backend 'sim' or 'recorded' in the profile"
        )

    def settings(self) -> CameraSettings:
        raise self._missing("settings()")

    def arm(self) -> None:
        raise self._missing("arm()")

    def trigger(self) -> None:
        raise self._missing("trigger()")

    def readout(self, limit: int | None = None) -> Iterator[CameraFrame]:
        raise self._missing("readout()")

    def disarm(self) -> None:
        raise self._missing("disarm()")
