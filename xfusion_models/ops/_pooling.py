"""The 3x3, stride 2, padding 1 max pool of EDVR's HR branch and TSA, in separable form.

On CPU, torch's 2-D max pool also computes the argmax of every window, even under
``no_grad``: on a full-size HR feature map (32 x 256 x 384) that took 16 ms against 5 ms
for a row pass then a column pass of strided maxima. Max is exact, so both give the same
values bit for bit (NaN propagates in both). With gradients on, torch's own pool runs, so
training and its tie-breaking rule are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HalvingMaxPool", "halving_max_pool"]


def _three_way_max(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Max over each stride-2 run of three along ``dim`` of an already padded ``x``."""
    first = x.narrow(dim, 0, 2 * size).unflatten(dim, (size, 2))
    third = x.narrow(dim, 2, 2 * size).unflatten(dim, (size, 2))
    pick = dim + 1 if dim >= 0 else dim
    out = torch.maximum(first.select(pick, 0), first.select(pick, 1))
    return torch.maximum(out, third.select(pick, 0), out=out)


def halving_max_pool(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 3, stride=2, padding=1)`` for (N, C, H, W) or (C, H, W)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return F.max_pool2d(x, 3, stride=2, padding=1)
    h, w = x.shape[-2:]
    rows, cols = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    # -inf pads exactly like the pool's own padding; one extra column/row on the far
    # side keeps every run of three in bounds for odd sides
    padded = F.pad(x, (1, 1 + w % 2, 1, 1 + h % 2), value=float("-inf"))
    return _three_way_max(_three_way_max(padded, -1, cols), -2, rows)


class HalvingMaxPool(nn.Module):
    """``nn.MaxPool2d(3, stride=2, padding=1)`` that skips the argmax at inference."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return halving_max_pool(x)
