"""Training options: one YAML file, read with ``yaml.safe_load`` and validated here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._validation import validation_problems
from ..data import SamplingConfig

__all__ = ["ModelSpec", "SchedulerSpec", "TrainSpec", "TrainOptions", "load_options"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    """Which builder and preset; ``overrides`` go to the builder as keyword arguments."""

    arch: Literal["edvr_stf", "swin_xvr"] = "edvr_stf"
    preset: str = "small"
    overrides: dict[str, Any] = Field(default_factory=dict)


class SchedulerSpec(_Strict):
    """Cosine annealing with restarts: one cosine per period, restart peaks scaled."""

    periods: list[int] = Field(default_factory=lambda: [10000])
    restart_weights: list[float] = Field(default_factory=lambda: [1.0])
    eta_min: float = 1e-7

    @model_validator(mode="after")
    def _same_length(self) -> SchedulerSpec:
        if len(self.periods) != len(self.restart_weights):
            raise ValueError("scheduler.periods and scheduler.restart_weights differ in length")
        if any(p <= 0 for p in self.periods):
            raise ValueError("scheduler.periods must be positive")
        return self


class TrainSpec(_Strict):
    iters: int = Field(10000, ge=1)
    batch_size: int = Field(4, ge=1)
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    loss: Literal["charbonnier", "l1"] = "charbonnier"
    charbonnier_eps: float = 1e-6
    ema_decay: float | None = Field(None, ge=0.0, lt=1.0)
    grad_clip: float | None = None
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    threads: int | None = Field(None, ge=1, description="torch.set_num_threads; None = leave")
    trainable: list[str] | None = Field(
        None,
        description="parameter-name prefixes to train (e.g. [hr_warp]); the rest stay frozen. "
        "None trains everything",
    )


class ValSpec(_Strict):
    every: int = Field(500, ge=1)
    max_samples: int = Field(8, ge=1)
    lr_crop: int | None = Field(None, description="centre crop for validation; None = whole")


class TrainOptions(_Strict):
    """Everything a run needs besides data paths; the YAML file mirrors these fields."""

    name: str = "xfusion"
    seed: int = 0
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: SamplingConfig = Field(default_factory=SamplingConfig)
    train: TrainSpec = Field(default_factory=TrainSpec)
    val: ValSpec = Field(default_factory=ValSpec)
    checkpoint_every: int = Field(500, ge=1)


def load_options(path: str | Path) -> TrainOptions:
    """Read and validate a training YAML; errors name the file and the offending field."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: training options file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at top level")
    try:
        return TrainOptions.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"{path}: {validation_problems(exc)}") from exc
