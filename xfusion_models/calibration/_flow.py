"""A small optical-flow net that registers the upsampled Shimadzu frame onto the Phantom.

The original gave its grid pairing an initial correspondence with an optical-flow
net; this one is deliberately small (a few conv layers at 1/4 resolution) so it trains
on a CPU in minutes. Flow is in pixels, (dx, dy), with ``warp(lr_up, flow) ~= hr``
(``xfusion_models.ops.warp``, the same backward warp the HR motion uses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CalibrationFlowNet"]


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.1))


class CalibrationFlowNet(nn.Module):
    """(Phantom HR, Shimadzu upsampled to HR) -> flow (B, 2, H, W); H, W multiples of 4."""

    arch = "calibration_flow"

    def __init__(self, num_feat: int = 32, num_blocks: int = 3) -> None:
        super().__init__()
        self.config = {"num_feat": num_feat, "num_blocks": num_blocks}
        f = num_feat
        self.encode = nn.Sequential(
            nn.Conv2d(2, f, 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(f, f, 3, stride=2, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(f, 2 * f, 3, stride=2, padding=1),
            nn.LeakyReLU(0.1),
            *[_Residual(2 * f) for _ in range(num_blocks)],
        )
        self.head = nn.Conv2d(2 * f, 2, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    def forward(self, hr: torch.Tensor, lr_up: torch.Tensor) -> torch.Tensor:
        if hr.shape != lr_up.shape or hr.dim() != 4 or hr.shape[1] != 1:
            raise ValueError(
                f"hr and lr_up must both be (B, 1, H, W), got {tuple(hr.shape)} and "
                f"{tuple(lr_up.shape)}"
            )
        if hr.shape[-1] % 4 or hr.shape[-2] % 4:
            raise ValueError(f"H and W must be multiples of 4, got {tuple(hr.shape[-2:])}")
        coarse = self.head(self.encode(torch.cat([hr, lr_up], dim=1)))
        return 4.0 * F.interpolate(coarse, scale_factor=4, mode="bilinear", align_corners=False)
