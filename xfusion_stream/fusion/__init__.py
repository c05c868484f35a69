"""Fusion room: the live callback, its worker, and the fused run it composes."""

from ._callback import FusionCallback, is_calibration_run
from ._composer import FusedFrame, FusedRunComposer, Sink
from ._config import FusionConfig
from ._fidelity import ShimadzuResidual, mean_residual, shimadzu_measurement, shimadzu_residuals
from ._inference import WindowExecutor, WindowInference, WindowOutput, WindowRunner
from ._model import FusionModel, load_fusion_model
from ._replay import stored_raw_run, tiled_array_source
from ._result import FusedRunResult
from ._router import fusion_router
from ._runner import FusionWorker, WindowJob
from ._schema import BLEND_SOURCES, FUSED_FRAME, FrameField, FrameSchema
from ._truth import by_candidate, metric_key, score_against_truth
from ._window_pool import WindowPool

__all__ = [
    "BLEND_SOURCES",
    "FUSED_FRAME",
    "FrameField",
    "FrameSchema",
    "FusedFrame",
    "FusedRunResult",
    "FusedRunComposer",
    "FusionCallback",
    "FusionConfig",
    "FusionModel",
    "FusionWorker",
    "ShimadzuResidual",
    "Sink",
    "WindowExecutor",
    "WindowInference",
    "WindowJob",
    "WindowOutput",
    "WindowPool",
    "WindowRunner",
    "by_candidate",
    "fusion_router",
    "is_calibration_run",
    "load_fusion_model",
    "mean_residual",
    "metric_key",
    "score_against_truth",
    "shimadzu_measurement",
    "shimadzu_residuals",
    "stored_raw_run",
    "tiled_array_source",
]
