"""Temporal and spatial attention (TSA) fusion of aligned frame features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import HalvingMaxPool, merge_frames_channels_last

__all__ = ["TSAFusion"]


class TSAFusion(nn.Module):
    """Weights each aligned frame by its similarity to the reference frame, then fuses.

    Returns the fused features and the per-frame temporal attention averaged over the
    image (B, T): how much each input frame (LR and HR alike) contributed.
    """

    def __init__(self, num_feat: int, num_frame: int, center_frame_idx: int) -> None:
        super().__init__()
        c = num_feat
        self.center_frame_idx = center_frame_idx
        self.temporal_attn1 = nn.Conv2d(c, c, 3, 1, 1)
        self.temporal_attn2 = nn.Conv2d(c, c, 3, 1, 1)
        self.feat_fusion = nn.Conv2d(num_frame * c, c, 1, 1)
        self.max_pool = HalvingMaxPool()
        self.avg_pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.spatial_attn1 = nn.Conv2d(num_frame * c, c, 1)
        self.spatial_attn2 = nn.Conv2d(2 * c, c, 1)
        self.spatial_attn3 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn4 = nn.Conv2d(c, c, 1)
        self.spatial_attn5 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn_l1 = nn.Conv2d(c, c, 1)
        self.spatial_attn_l2 = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.spatial_attn_l3 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn_add1 = nn.Conv2d(c, c, 1)
        self.spatial_attn_add2 = nn.Conv2d(c, c, 1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.max_pool(x), self.avg_pool(x)), dim=1)

    def forward(self, aligned: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, c, h, w = aligned.shape
        emb_ref = self.temporal_attn1(aligned[:, self.center_frame_idx])
        emb = self.temporal_attn2(aligned.reshape(-1, c, h, w)).view(b, t, c, h, w)
        corr = torch.sigmoid((emb * emb_ref.unsqueeze(1)).sum(dim=2))  # (B, T, h, w)
        weighted = merge_frames_channels_last(aligned * corr.unsqueeze(2))
        feat = self.lrelu(self.feat_fusion(weighted))

        attn = self.lrelu(self.spatial_attn1(weighted))
        attn = self.lrelu(self.spatial_attn2(self._pooled(attn)))
        level = self.lrelu(self.spatial_attn_l1(attn))
        level = self.lrelu(self.spatial_attn_l2(self._pooled(level)))
        level = self.lrelu(self.spatial_attn_l3(level))
        level = F.interpolate(level, size=attn.shape[-2:], mode="bilinear", align_corners=False)
        attn = self.lrelu(self.spatial_attn3(attn)) + level
        attn = self.lrelu(self.spatial_attn4(attn))
        attn = F.interpolate(attn, size=(h, w), mode="bilinear", align_corners=False)
        attn = self.spatial_attn5(attn)
        attn_add = self.spatial_attn_add2(self.lrelu(self.spatial_attn_add1(attn)))
        feat = feat * torch.sigmoid(attn) * 2 + attn_add
        return feat, corr.mean(dim=(2, 3))
