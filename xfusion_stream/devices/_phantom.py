"""Phantom TMX7510: the high-resolution, slower camera of the pair."""

from __future__ import annotations

from typing import Any

from ophyd import Component as Cpt
from ophyd import Signal

from ._burst_camera import BurstCamera
from ._camera_backend import CameraFrame, CameraSettings

__all__ = ["PhantomTMX7510", "PHANTOM_MODEL"]

PHANTOM_MODEL = "Phantom TMX7510"


class PhantomTMX7510(BurstCamera):
    """Phantom TMX7510 in burst mode; every frame carries its time and 'E' flag.

    ``<name>_time_ns`` is relative to the first frame exposed while the Shimadzu
    trigger was active; ``<name>_trigger_flag`` is that 'E' flag. Pre-trigger frames
    (negative frame numbers) are read out too, with the flag False.
    """

    CAMERA_MODEL = PHANTOM_MODEL

    frame_rate_hz = Cpt(Signal, value=0.0, kind="config")

    def _apply_settings(self, settings: CameraSettings) -> None:
        super()._apply_settings(settings)
        self.frame_rate_hz.put(float(settings.frame_rate_hz))

    def _frame_reading(self, frame: CameraFrame) -> dict[str, Any]:
        values = super()._frame_reading(frame)
        values[f"{self.name}_trigger_flag"] = bool(frame.e_flag)
        return values

    def _frame_data_keys(self) -> dict[str, dict[str, Any]]:
        keys = super()._frame_data_keys()
        source = self.prefix or f"sim:{self.name}:"
        keys[f"{self.name}_trigger_flag"] = {
            "source": f"{source}trigger_flag",
            "dtype": "boolean",
            "shape": [],
            "dtype_numpy": "|b1",
        }
        return keys
