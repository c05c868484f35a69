"""A recorded experiment folder replayed as if its cameras were being read out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from ..recorded import RecordedCase, read_case, read_frame
from ._camera_backend import BurstLifecycle, CameraFrame, CameraSettings

__all__ = ["RecordedCaseBackend"]


class RecordedCaseBackend(BurstLifecycle):
    """One camera of a recorded case: frames from its TIFFs, times from its XML/INI.

    ``pixel_size_um`` is not in the recorded files; 0.0 means unknown (the spatial
    calibration measures it from the grid).
    """

    source = "recorded"

    def __init__(
        self,
        case: RecordedCase | str | Path,
        camera: Literal["phantom", "shimadzu"],
        *,
        pixel_size_um: float = 0.0,
    ) -> None:
        if camera not in ("phantom", "shimadzu"):
            raise ValueError(f"camera must be 'phantom' or 'shimadzu', got {camera!r}")
        self.case = case if isinstance(case, RecordedCase) else read_case(case)
        self.camera = camera
        self.pixel_size_um = float(pixel_size_um)

    def settings(self) -> CameraSettings:
        case = self.case
        if self.camera == "phantom":
            return CameraSettings(
                frame_shape=case.phantom_shape,
                n_frames=case.phantom.n_frames,
                frame_time_ns=float(case.phantom.period_ns),
                frame_rate_hz=float(case.phantom.frame_rate_hz),
                pixel_size_um=self.pixel_size_um,
            )
        return CameraSettings(
            frame_shape=case.shimadzu_shape,
            n_frames=case.shimadzu.n_frames,
            frame_time_ns=float(case.shimadzu.frame_ns),
            frame_rate_hz=1e9 / case.shimadzu.frame_ns,
            pixel_size_um=self.pixel_size_um,
        )

    def readout(self, limit: int | None = None) -> Iterator[CameraFrame]:
        self._require_recorded()
        if self.camera == "phantom":
            timing = self.case.phantom
            paths = self.case.phantom_frames
            numbers, times, flags = timing.frame_numbers, timing.times_ns, timing.e_flags
        else:
            paths = self.case.shimadzu_frames
            times = self.case.shimadzu.times_ns
            numbers = np.arange(1, len(paths) + 1)
            flags = np.zeros(len(paths), dtype=bool)
        n = len(paths) if limit is None else min(limit, len(paths))
        for i in range(n):
            yield CameraFrame(read_frame(paths[i]), int(numbers[i]), int(times[i]), bool(flags[i]))
