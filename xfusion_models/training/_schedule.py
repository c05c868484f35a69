"""Learning-rate schedule and weight averaging used by the trainer."""

from __future__ import annotations

import copy
import math

import torch

__all__ = ["CosineRestartSchedule", "WeightEMA"]


class CosineRestartSchedule(torch.optim.lr_scheduler.LRScheduler):
    """Cosine annealing with warm restarts over ``periods`` (iterations).

    Period ``i`` starts at ``restart_weights[i] * base_lr`` and decays to ``eta_min``;
    after the last period the rate stays at ``eta_min``. State is plain numbers, so it
    round-trips through a ``weights_only`` checkpoint.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        periods: list[int],
        restart_weights: list[float],
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def _factor(self, step: int) -> tuple[float, float]:
        start = 0
        for period, weight in zip(self.periods, self.restart_weights):
            if step < start + period:
                progress = (step - start) / period
                return weight, 0.5 * (1.0 + math.cos(math.pi * progress))
            start += period
        return 0.0, 0.0

    def get_lr(self) -> list[float | torch.Tensor]:
        weight, cosine = self._factor(max(self.last_epoch, 0))
        return [
            self.eta_min + weight * (base - self.eta_min) * cosine if weight else self.eta_min
            for base in self.base_lrs
        ]


class WeightEMA:
    """Exponential moving average of a model's weights (``params_ema`` in checkpoints)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        ema_state = self.model.state_dict()
        for name, value in model.state_dict().items():
            target = ema_state[name]
            if target.dtype.is_floating_point:
                target.mul_(self.decay).add_(value.detach(), alpha=1.0 - self.decay)
            else:
                target.copy_(value)
