"""SWIN-XVR: a video Swin transformer over the 5-frame (3 LR + 2 HR) feature stack.

Names follow SwinIR (``conv_first``, ``layers``, ``norm``, ``conv_after_body``,
``conv_before_upsample``, ``upsample``, ``conv_last``). No bilinear skip: the network
outputs the HR frame itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .._protocol import FusedOutput
from ..ops import PhantomMotionCache, ShimadzuMeasurement
from ._blocks import PhantomBranch
from ._hparams import MAX_BLOCKS, MAX_CHANNELS, check_bounds
from ._swin3d import ResidualSwinStage, per_frame_conv
from ._window import NUM_HR, NUM_LR, SCALE, check_frames, check_fuse_inputs, check_window

__all__ = ["SwinXVRConfig", "SwinXVR", "SWIN_XVR_PRESETS"]

#: Index of the LR frame t among the 5 stacked frames (t-1 lr, t lr, t+1 lr, hr before, hr after).
CENTRE = 1


@dataclass(frozen=True)
class SwinXVRConfig:
    """Hyper-parameters of one SWIN-XVR; lists stay lists so configs survive JSON."""

    embed_dim: int = 96
    depths: list[int] = field(default_factory=lambda: [2, 2])
    num_heads: int | list[int] = 3
    window_size: list[int] = field(default_factory=lambda: [5, 8, 8])
    mlp_ratio: float = 2.0
    drop_path_rate: float = 0.1
    upsample_feat: int = 64

    def __post_init__(self) -> None:
        check_bounds(
            "swin_xvr",
            {
                "embed_dim": (self.embed_dim, 1, MAX_CHANNELS),
                "depths": (self.depths, 1, MAX_BLOCKS),
                "num_heads": (self.num_heads, 1, MAX_CHANNELS),
                "window_size": (self.window_size, 1, 64),
                "mlp_ratio": (self.mlp_ratio, 0.0, 16.0),
                "drop_path_rate": (self.drop_path_rate, 0.0, 1.0),
                "upsample_feat": (self.upsample_feat, 1, MAX_CHANNELS),
            },
        )
        if not 1 <= len(self.depths) <= 16:
            raise ValueError(f"swin_xvr depths: {len(self.depths)} stages, expected 1..16")
        heads = self.num_heads
        heads = [heads] * len(self.depths) if isinstance(heads, int) else list(heads)
        if len(heads) != len(self.depths):
            raise ValueError(f"num_heads {heads} must have one entry per stage {self.depths}")
        if any(self.embed_dim % h for h in heads):
            raise ValueError(f"embed_dim {self.embed_dim} not divisible by heads {heads}")
        if len(self.window_size) != 3:
            raise ValueError(f"window_size must be [frames, rows, cols], got {self.window_size}")
        object.__setattr__(self, "num_heads", heads)
        object.__setattr__(self, "depths", [int(d) for d in self.depths])
        object.__setattr__(self, "window_size", [int(w) for w in self.window_size])
        object.__setattr__(self, "mlp_ratio", float(self.mlp_ratio))
        object.__setattr__(self, "drop_path_rate", float(self.drop_path_rate))


SWIN_XVR_PRESETS = {
    "paper": asdict(SwinXVRConfig(192, [2, 2, 18, 2], 3, [5, 8, 8], 2.0, 0.2, 64)),
    "small": asdict(SwinXVRConfig(48, [2, 2], 3, [5, 8, 8], 2.0, 0.1, 32)),
    "tiny": asdict(SwinXVRConfig(12, [2], 3, [5, 4, 4], 2.0, 0.1, 8)),
}


def _init_transformer(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SwinXVR(nn.Module):
    """3 LR + 2 HR frames -> the HR frame at LR time t, by 3D-window self-attention.

    Satisfies :class:`xfusion_models.StreamingFusionNet`.
    """

    arch = "swin_xvr"

    def __init__(self, **hparams: Any) -> None:
        super().__init__()
        cfg = SwinXVRConfig(**hparams)
        self.config = asdict(cfg)
        self.preset: str | None = None
        c, u = cfg.embed_dim, cfg.upsample_feat
        self.num_feat = c
        wd, wh, ww = cfg.window_size
        self.window_size = (wd, wh, ww)
        self.conv_first = nn.Conv2d(1, c, 3, 1, 1)
        self.hr_branch = PhantomBranch(1, c)
        self.patch_norm = nn.LayerNorm(c)
        rates = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths)).tolist()
        starts = [sum(cfg.depths[:i]) for i in range(len(cfg.depths))]
        self.layers = nn.ModuleList(
            ResidualSwinStage(
                c, depth, heads, self.window_size, cfg.mlp_ratio, rates[s : s + depth]
            )
            for depth, heads, s in zip(cfg.depths, self._heads(cfg), starts)
        )
        self.norm = nn.LayerNorm(c)
        self.conv_after_body = nn.Conv2d(c, c, 3, 1, 1)
        self.conv_before_upsample = nn.Sequential(
            nn.Conv2d(c, u, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True)
        )
        self.upsample = nn.Sequential(
            nn.Conv2d(u, 4 * u, 3, 1, 1),
            nn.PixelShuffle(2),
            nn.Conv2d(u, 4 * u, 3, 1, 1),
            nn.PixelShuffle(2),
        )
        self.conv_last = nn.Conv2d(u, 1, 3, 1, 1)
        _init_transformer(self)

    @staticmethod
    def _heads(cfg: SwinXVRConfig) -> list[int]:
        heads = cfg.num_heads  # __post_init__ made it a list
        return heads if isinstance(heads, list) else [heads] * len(cfg.depths)

    @property
    def needs_hr_frames(self) -> bool:
        """Always False: SWIN-XVR sees the HR frames only through their features."""
        return False

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        """Shimadzu frames (N, 1, h, w) -> features (N, C, h, w)."""
        check_frames(x, "LR frames")
        return self.conv_first(x)

    def encode_hr(self, y: torch.Tensor) -> torch.Tensor:
        """Phantom frames (N, 1, 4h, 4w) -> features on the LR grid (N, C, h, w)."""
        check_frames(y, "HR frames", scale=SCALE)
        return self.hr_branch(y)

    def _channel_norm(self, norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
        return norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)

    def fuse(
        self,
        lr_feats: torch.Tensor,
        hr_feats: torch.Tensor,
        lr_centre: torch.Tensor,
        hr_frames: torch.Tensor | None = None,
        *,
        motion_cache: PhantomMotionCache | None = None,
        shimadzu: ShimadzuMeasurement | None = None,
    ) -> FusedOutput:
        """Cached features of one window batch -> fused frames; nothing else to report.

        ``hr_frames``, ``motion_cache`` and ``shimadzu`` are accepted for the protocol and
        not used.
        """
        check_fuse_inputs(lr_feats, hr_feats, lr_centre, self.num_feat)
        stack = torch.cat((lr_feats, hr_feats), dim=1).transpose(1, 2)  # (B, C, 5, h, w)
        h, w = stack.shape[-2:]
        ph, pw = -h % self.window_size[1], -w % self.window_size[2]
        if ph or pw:
            stack = F.pad(stack, (0, pw, 0, ph, 0, 0), mode="replicate")
        y = self._channel_norm(self.patch_norm, stack)
        first = cast(ResidualSwinStage, self.layers[0])
        geometry = first.geometry(y)  # every stage has the same window
        for stage in self.layers:
            y = stage(y, geometry)
        y = per_frame_conv(self.conv_after_body, self._channel_norm(self.norm, y)) + stack
        centre = y[:, :, CENTRE, :h, :w]
        out = self.conv_last(self.upsample(self.conv_before_upsample(centre)))
        return FusedOutput(out)

    def forward_with_attention(
        self, lq: torch.Tensor, hq: torch.Tensor
    ) -> tuple[torch.Tensor, None]:
        """Plain forward (BasicSR's ``lq``/``hq``); no per-frame attention, so ``None``."""
        check_window(lq, hq, like=self.conv_first.weight)
        b, _, _, h, w = lq.shape
        lr = self.encode_lr(lq.reshape(b * NUM_LR, 1, h, w)).view(b, NUM_LR, -1, h, w)
        hr = self.encode_hr(hq.reshape(b * NUM_HR, 1, SCALE * h, SCALE * w))
        return self.fuse(lr, hr.view(b, NUM_HR, -1, h, w), lq[:, CENTRE]).image, None

    def forward(self, lq: torch.Tensor, hq: torch.Tensor) -> torch.Tensor:
        """lq (B,3,1,h,w) LR frames, hq (B,2,1,4h,4w) HR frames -> fused frame t (B,1,4h,4w)."""
        return self.forward_with_attention(lq, hq)[0]
