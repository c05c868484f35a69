"""Fusion room: the live callback, its worker, and the fused run it composes."""

from ._callback import FusionCallback, fusion_router, is_calibration_run
from ._composer import FusedFrame, FusedRunComposer
from ._config import FusionConfig
from ._filler import FrameFiller
from ._model import FusionModel, load_fusion_model
from ._replay import replay_run, tiled_array_source
from ._runner import FusionWorker, WindowJob
from ._streams import CameraStream, camera_stream

__all__ = [
    "CameraStream",
    "FrameFiller",
    "FusedFrame",
    "FusedRunComposer",
    "FusionCallback",
    "FusionConfig",
    "FusionModel",
    "FusionWorker",
    "WindowJob",
    "camera_stream",
    "fusion_router",
    "is_calibration_run",
    "load_fusion_model",
    "replay_run",
    "tiled_array_source",
]
