"""Pyramid, cascading and deformable (PCD) alignment of a frame's features to the centre."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import ModulatedDeformConv2d

__all__ = ["DCNPack", "PCDAlignment"]


class DCNPack(ModulatedDeformConv2d):
    """DCNv2 whose offsets and masks are predicted from a separate feature map.

    ``conv_offset`` starts at zero, so an untrained layer samples the regular grid with
    mask 0.5. Output channels split in thirds: y/x offsets, then mask logits.
    """

    def __init__(self, num_feat: int, deform_groups: int) -> None:
        super().__init__(num_feat, num_feat, 3, 1, 1, deform_groups=deform_groups)
        k = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = nn.Conv2d(num_feat, 3 * deform_groups * k, 3, 1, 1)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = self.conv_offset(feat)
        # the y/x offset thirds lie next to each other: a view, not a copy
        n = self.offset_channels
        return super().forward(x, out[:, :n], torch.sigmoid(out[:, n:]))


def _with_reference(conv: nn.Conv2d, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``conv(cat((x, ref repeated per frame), 1))`` with the reference half computed once
    per window: a conv is linear in its input channels, and the reference is the same
    frame for all T frames of a window (T - 1 of T reference convs saved)."""
    c = x.shape[1]
    out = F.conv2d(x, conv.weight[:, :c], conv.bias, conv.stride, conv.padding)
    shared = F.conv2d(ref, conv.weight[:, c:], None, conv.stride, conv.padding)
    b = ref.shape[0]
    out.view(b, x.shape[0] // b, *out.shape[1:]).add_(shared.unsqueeze(1))
    return out


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PCDAlignment(nn.Module):
    """Three pyramid levels coarse to fine, then one cascading deformable refinement."""

    def __init__(self, num_feat: int, deform_groups: int) -> None:
        super().__init__()
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.dcn_pack = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        for i in (3, 2, 1):
            level = f"l{i}"
            self.offset_conv1[level] = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
            if i == 3:
                self.offset_conv2[level] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            else:
                self.offset_conv2[level] = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
                self.offset_conv3[level] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
                self.feat_conv[level] = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
            self.dcn_pack[level] = DCNPack(num_feat, deform_groups)
        self.cas_offset_conv1 = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
        self.cas_offset_conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.cas_dcnpack = DCNPack(num_feat, deform_groups)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, nbr: list[torch.Tensor], ref: list[torch.Tensor]) -> torch.Tensor:
        """``nbr``: the features of every frame of B windows at levels 1..3 (full, 1/2,
        1/4), (B * T, C, h, w) each; ``ref``: the reference frame of each window at the
        same levels, (B, C, h, w). Returns level 1 aligned to each window's reference."""
        up_offset = up_feat = nbr[0]  # placeholders; level 3 has nothing coarser
        feat = nbr[0]
        for i in (3, 2, 1):
            level = f"l{i}"
            conv1 = cast(nn.Conv2d, self.offset_conv1[level])
            offset = self.lrelu(_with_reference(conv1, nbr[i - 1], ref[i - 1]))
            if i == 3:
                offset = self.lrelu(self.offset_conv2[level](offset))
            else:
                offset = self.lrelu(self.offset_conv2[level](torch.cat((offset, up_offset), 1)))
                offset = self.lrelu(self.offset_conv3[level](offset))
            feat = self.dcn_pack[level](nbr[i - 1], offset)
            if i < 3:
                feat = self.feat_conv[level](torch.cat((feat, up_feat), 1))
            if i > 1:
                feat = self.lrelu(feat)
                # Offsets are in pixels of their level: doubling the grid doubles them.
                up_offset = _upsample2(offset) * 2
                up_feat = _upsample2(feat)
        offset = self.lrelu(_with_reference(self.cas_offset_conv1, feat, ref[0]))
        offset = self.lrelu(self.cas_offset_conv2(offset))
        return self.lrelu(self.cas_dcnpack(feat, offset))
