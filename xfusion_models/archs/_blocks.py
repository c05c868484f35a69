"""Building blocks both fusion architectures share."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import HalvingMaxPool

__all__ = ["ResidualBlockNoBN", "residual_stack", "PhantomBranch", "scaled_kaiming_init"]


def scaled_kaiming_init(module: nn.Module, scale: float = 0.1) -> None:
    """Kaiming init scaled down, so deep residual stacks start close to identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            m.weight.data.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualBlockNoBN(nn.Module):
    """conv -> ReLU -> conv plus identity; no batch norm (it hurts restoration)."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        scaled_kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


def residual_stack(num_blocks: int, num_feat: int) -> nn.Sequential:
    """``num_blocks`` residual blocks in a row (indexed 0..n-1 as BasicSR names them)."""
    return nn.Sequential(*(ResidualBlockNoBN(num_feat) for _ in range(num_blocks)))


class PhantomBranch(nn.Module):
    """Brings an HR (Phantom) frame to the LR (Shimadzu) grid: x4 smaller, ``num_feat`` deep.

    conv -> conv -> maxpool(3, s2, p1) -> conv -> maxpool(3, s2, p1), LeakyReLU(0.1)
    after each conv: two stride-2 pools give the camera pixel ratio of 4.
    """

    def __init__(self, num_in_ch: int, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.pool = HalvingMaxPool()
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y = self.lrelu(self.conv1(y))
        y = self.pool(self.lrelu(self.conv2(y)))
        return self.pool(self.lrelu(self.conv3(y)))
