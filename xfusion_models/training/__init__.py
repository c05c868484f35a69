"""Training: options, losses, schedule, the resumable loop and its records."""

from ._evaluation import (
    LAYOUTS,
    ScoringWindow,
    bicubic_x4,
    score_windows,
    scoring_windows,
    summarise,
)
from ._losses import charbonnier_loss, l1_loss, pixel_loss
from ._options import ModelSpec, SchedulerSpec, TrainOptions, TrainSpec, load_options
from ._records import TrainLog
from ._registration import register_weights
from ._schedule import CosineRestartSchedule, WeightEMA
from ._trainer import TrainData, build_model, train, validate

__all__ = [
    "LAYOUTS",
    "ScoringWindow",
    "bicubic_x4",
    "score_windows",
    "summarise",
    "scoring_windows",
    "CosineRestartSchedule",
    "ModelSpec",
    "SchedulerSpec",
    "TrainData",
    "TrainLog",
    "TrainOptions",
    "TrainSpec",
    "WeightEMA",
    "build_model",
    "charbonnier_loss",
    "l1_loss",
    "load_options",
    "pixel_loss",
    "register_weights",
    "train",
    "validate",
]
