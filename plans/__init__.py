"""Bluesky plans of the dual-camera beamline (installed as ``xfusion_plans``)."""

from ._burst import burst_run, dual_camera_burst
from ._calibration import fly_grid_calibration, grid_calibration
from ._fly import fly_dual_camera_burst
from ._recorded import recorded_experiment
from ._virtual import virtual_experiment
from ._watched import watched_experiment

__all__ = [
    "burst_run",
    "dual_camera_burst",
    "fly_grid_calibration",
    "fly_dual_camera_burst",
    "grid_calibration",
    "recorded_experiment",
    "virtual_experiment",
    "watched_experiment",
]
