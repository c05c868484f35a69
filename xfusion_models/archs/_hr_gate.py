"""Optional full-resolution gate that lets a nearby Phantom frame's detail pass through.

EDVR-STF sees Phantom frames only after max-pooling to the Shimadzu grid, so when a
Phantom frame sits one or two Shimadzu frames from t its fine detail is lost. The gate
blends, per pixel, out = w0 * fused + w1 * before + w2 * after. It decides from the
fused frame, both Phantom frames, the bilinear LR frame t, how far each Phantom frame is
from the fused frame, and the network's own full-resolution head features (which carry
its alignment and temporal attention, i.e. which Phantom frame is closer in time).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HRGate", "GATE_START_BIAS", "GATE_IMAGE_INPUTS"]

#: Start logits (fused, before, after): softmax gives the fused frame ~96.5 % weight,
#: so a gate added to trained weights starts close to their behaviour.
GATE_START_BIAS = (4.0, 0.0, 0.0)
#: fused, before, after, bilinear LR t, |before - fused|, |after - fused|
GATE_IMAGE_INPUTS = 6


class HRGate(nn.Module):
    """Per-pixel softmax blend of the fused frame and the two raw Phantom frames."""

    def __init__(self, head_feat: int, feat: int = 16, layers: int = 3) -> None:
        super().__init__()
        if feat < 1 or layers < 2:
            raise ValueError(f"hr_gate needs feat >= 1 and layers >= 2, got {feat}, {layers}")
        convs: list[nn.Module] = [nn.Conv2d(GATE_IMAGE_INPUTS + head_feat, feat, 3, 1, 1)]
        for _ in range(layers - 2):
            convs += [nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(feat, feat, 3, 1, 1)]
        convs.append(nn.LeakyReLU(0.1, inplace=True))
        self.body = nn.Sequential(*convs)
        self.logits = nn.Conv2d(feat, 3, 3, 1, 1)
        nn.init.zeros_(self.logits.weight)
        self.logits.bias = nn.Parameter(torch.tensor(GATE_START_BIAS))

    def weights(
        self, fused: torch.Tensor, hq: torch.Tensor, lq_up: torch.Tensor, head: torch.Tensor
    ) -> torch.Tensor:
        """Blend weights (B, 3, H, W) for (fused, before, after); they sum to 1 per pixel."""
        before, after = hq[:, 0], hq[:, 1]
        x = torch.cat(
            (fused, before, after, lq_up, (before - fused).abs(), (after - fused).abs(), head),
            dim=1,
        )
        return F.softmax(self.logits(self.body(x)), dim=1)

    def forward(
        self, fused: torch.Tensor, hq: torch.Tensor, lq_up: torch.Tensor, head: torch.Tensor
    ) -> torch.Tensor:
        """fused, lq_up (B,1,H,W), hq (B,2,1,H,W), head (B,F,H,W) -> blended (B,1,H,W)."""
        w = self.weights(fused, hq, lq_up, head)
        frames = torch.cat((fused, hq[:, 0], hq[:, 1]), dim=1)
        return (w * frames).sum(dim=1, keepdim=True)
