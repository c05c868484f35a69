"""Training loop of the calibration flow net: flow loss + fusion-evaluator loss.

As in the original, the loss is the flow error plus, when a fusion model is given,
its reconstruction error on inputs registered with the predicted flow (the fusion
model is frozen and only judges the registration).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import warp
from ._flow import CalibrationFlowNet
from ._virtual_pairs import VirtualPairs

__all__ = ["evaluator_loss", "train_flow"]


def evaluator_loss(
    evaluator: nn.Module, hr: torch.Tensor, lr_up: torch.Tensor, flow: torch.Tensor
) -> torch.Tensor:
    """L1 of the fusion model's output when fed the flow-registered LR frame."""
    registered = F.avg_pool2d(warp(lr_up, flow), 4)  # back on the LR grid
    lq = registered[:, None].expand(-1, 3, -1, -1, -1)
    hq = hr[:, None].expand(-1, 2, -1, -1, -1)
    return F.l1_loss(evaluator(lq, hq), hr)


def train_flow(
    net: CalibrationFlowNet,
    pairs: VirtualPairs,
    iters: int,
    *,
    batch_size: int = 4,
    lr: float = 1e-4,
    evaluator: nn.Module | None = None,
    evaluator_weight: float = 1.0,
    progress: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Run ``iters`` Adam steps; returns the per-step losses."""
    from tqdm import tqdm

    if evaluator is not None:
        evaluator.eval().requires_grad_(False)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    net.train()
    for step in tqdm(range(iters), desc="train_calibration", disable=not progress):
        hr, lr_up, flow = pairs.batch(batch_size)
        pred = net(hr, lr_up)
        losses = {"flow": F.l1_loss(pred, flow)}
        if evaluator is not None:
            losses["evaluator"] = evaluator_weight * evaluator_loss(evaluator, hr, lr_up, pred)
        total = torch.stack(list(losses.values())).sum()
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        record = {k: float(v.detach()) for k, v in losses.items()} | {
            "total": float(total.detach())
        }
        history.append(record)
        if on_step is not None:
            on_step(step, record)
    return history
