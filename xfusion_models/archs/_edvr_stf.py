"""EDVR-STF: EDVR with a Phantom (HR) branch, fusing 3 Shimadzu + 2 Phantom frames.

Module names follow BasicSR's EDVR so original checkpoints map onto this one key for key
(the HR branch is the only addition).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._protocol import FusedOutput
from ..ops import (
    PhantomMotionCache,
    ShimadzuMeasurement,
    cat_frames_channels_last,
    channels_last,
    phantom_at_t,
)
from ._blocks import PhantomBranch, residual_stack
from ._consistency import ShimadzuConsistency
from ._hparams import MAX_BLOCKS, MAX_CHANNELS, check_bounds
from ._hr_gate import HRGate, WarpGate
from ._pcd import PCDAlignment
from ._tsa import TSAFusion
from ._window import (
    NUM_HR,
    NUM_LR,
    SCALE,
    check_frames,
    check_fuse_inputs,
    check_gate_frames,
    check_window,
)

__all__ = ["EDVRSTFConfig", "EDVRSTF", "EDVR_STF_PRESETS"]

#: Index of the LR frame t among the 5 stacked frames (t-1 lr, t lr, t+1 lr, hr before, hr after).
CENTRE = 1


@dataclass(frozen=True)
class EDVRSTFConfig:
    """Hyper-parameters of one EDVR-STF; ``upsample_feat`` is BasicSR's fixed 64 made a knob."""

    num_feat: int = 64
    num_extract_block: int = 5
    num_reconstruct_block: int = 10
    deform_groups: int = 8
    upsample_feat: int = 64
    #: Optional full-resolution Phantom gate (see ``_hr_gate``); off keeps EDVR-STF as is.
    hr_gate: bool = False
    hr_gate_feat: int = 16
    #: Optional gate over Phantom frames warped to t by optical flow (see ``_hr_gate``).
    hr_warp: bool = False
    hr_warp_feat: int = 16
    #: Measurement consistency with Shimadzu frame t (see ``_consistency``); nothing to train.
    consistency: bool = False
    #: Its regional level match first (step 0 of ``_consistency``): the beam's brightness
    #: changing between Shimadzu frames does not throw the Phantom's detail away.
    consistency_level: bool = False
    #: And its whole-frame move before that (step 0 too): a sample shaken or oscillating
    #: faster than the Phantom samples is shown where the Shimadzu saw it.
    consistency_shift: bool = False

    def __post_init__(self) -> None:
        check_bounds(
            "edvr_stf",
            {
                "num_feat": (self.num_feat, 1, MAX_CHANNELS),
                "num_extract_block": (self.num_extract_block, 0, MAX_BLOCKS),
                "num_reconstruct_block": (self.num_reconstruct_block, 0, MAX_BLOCKS),
                "deform_groups": (self.deform_groups, 1, MAX_CHANNELS),
                "upsample_feat": (self.upsample_feat, 1, MAX_CHANNELS),
                "hr_gate_feat": (self.hr_gate_feat, 1, MAX_CHANNELS),
                "hr_warp_feat": (self.hr_warp_feat, 1, MAX_CHANNELS),
            },
        )
        if self.num_feat % self.deform_groups:
            raise ValueError(
                f"num_feat {self.num_feat} must be divisible by deform_groups {self.deform_groups}"
            )
        if self.hr_gate and self.hr_warp:
            raise ValueError("hr_gate and hr_warp are alternatives; turn on at most one")
        for step in ("consistency_level", "consistency_shift"):
            if getattr(self, step) and not self.consistency:
                raise ValueError(f"{step} is a step of consistency; turn that on too")


#: Optional full-resolution modules and their config keys (module name first).
_GATE_KEYS = {"hr_gate": ("hr_gate", "hr_gate_feat"), "hr_warp": ("hr_warp", "hr_warp_feat")}


def _config_dict(cfg: EDVRSTFConfig) -> dict[str, int]:
    """The config as saved in checkpoints; a gate's keys only when that gate is on, so
    configs (and checkpoints) of models without it stay as they were before it existed."""
    out = asdict(cfg)
    for flag, keys in _GATE_KEYS.items():
        if not out[flag]:
            for key in keys:
                out.pop(key)
    for flag in ("consistency", "consistency_level", "consistency_shift"):
        if not out[flag]:
            out.pop(flag)
    return out


EDVR_STF_PRESETS: dict[str, dict[str, int]] = {
    "paper": _config_dict(EDVRSTFConfig(128, 5, 40, 8, 64)),
    # small: 4 deformable groups and a 16-channel x4 head keep a 64x96 window ~0.3 s on CPU.
    "small": _config_dict(EDVRSTFConfig(32, 2, 4, 4, 16)),
    "tiny": _config_dict(EDVRSTFConfig(8, 1, 1, 2, 8)),
}


class EDVRSTF(nn.Module):
    """3 LR + 2 HR frames -> the HR frame at LR time t, plus TSA attention per input frame.

    Satisfies :class:`xfusion_models.StreamingFusionNet`.
    """

    arch = "edvr_stf"

    def __init__(self, **hparams: Any) -> None:
        super().__init__()
        cfg = EDVRSTFConfig(**hparams)
        self.config: dict[str, int] = _config_dict(cfg)
        self.preset: str | None = None
        c, u = cfg.num_feat, cfg.upsample_feat
        self.num_feat = c
        self.conv_first = nn.Conv2d(1, c, 3, 1, 1)
        self.hr_branch = PhantomBranch(1, c)
        self.feature_extraction = residual_stack(cfg.num_extract_block, c)
        self.conv_l2_1 = nn.Conv2d(c, c, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(c, c, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(c, c, 3, 1, 1)
        self.pcd_align = PCDAlignment(c, cfg.deform_groups)
        self.fusion = TSAFusion(c, NUM_LR + NUM_HR, CENTRE)
        self.reconstruction = residual_stack(cfg.num_reconstruct_block, c)
        self.upconv1 = nn.Conv2d(c, 4 * c, 3, 1, 1)
        self.upconv2 = nn.Conv2d(c, 4 * u, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(u, u, 3, 1, 1)
        self.conv_last = nn.Conv2d(u, 1, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        # Built last so an ungated model draws exactly the same initial weights as before.
        self.hr_gate = HRGate(u, cfg.hr_gate_feat) if cfg.hr_gate else None
        self.hr_warp = WarpGate(u, cfg.hr_warp_feat) if cfg.hr_warp else None
        self.consistency = (
            ShimadzuConsistency(level=cfg.consistency_level, shift=cfg.consistency_shift)
            if cfg.consistency
            else None
        )

    @property
    def needs_hr_frames(self) -> bool:
        """True when :meth:`fuse` needs the raw HR frames besides their features."""
        return self.hr_gate is not None or self.hr_warp is not None

    @property
    def optional_module(self) -> str | None:
        """Name of the optional full-resolution gate this model has (``hr_gate``/``hr_warp``)."""
        return next((name for name in _GATE_KEYS if getattr(self, name) is not None), None)

    # -- per-frame features (cacheable across consecutive windows) --------------------
    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        """Shimadzu frames (N, 1, h, w) -> features (N, C, h, w)."""
        check_frames(x, "LR frames")
        return self.feature_extraction(self.lrelu(self.conv_first(channels_last(x))))

    def encode_hr(self, y: torch.Tensor) -> torch.Tensor:
        """Phantom frames (N, 1, 4h, 4w) -> features on the LR grid (N, C, h, w)."""
        check_frames(y, "HR frames", scale=SCALE)
        return self.feature_extraction(self.hr_branch(channels_last(y)))

    # -- everything after the frames meet -------------------------------------------
    def _pyramid(self, l1: torch.Tensor) -> list[torch.Tensor]:
        l2 = self.lrelu(self.conv_l2_2(self.lrelu(self.conv_l2_1(l1))))
        l3 = self.lrelu(self.conv_l3_2(self.lrelu(self.conv_l3_1(l2))))
        return [l1, l2, l3]

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
        """Cached features of one window batch -> fused frames, TSA attention (B, 5) and,
        with ``hr_warp``, ``tau`` and the mean blend weights (see ``StreamingFusionNet``).

        ``hr_frames`` (B,2,1,4h,4w), the raw HR frames, is needed only with ``hr_gate`` or
        ``hr_warp`` (``needs_hr_frames``); ``motion_cache`` serves ``hr_warp`` only.
        """
        check_fuse_inputs(lr_feats, hr_feats, lr_centre, self.num_feat)
        if self.needs_hr_frames:
            check_gate_frames(hr_frames, lr_centre)
        b, t = lr_feats.shape[0], lr_feats.shape[1] + hr_feats.shape[1]
        c, h, w = lr_feats.shape[2:]
        # one (B * T, C, h, w) batch of every frame, channels-last (see ``ops._layout``)
        nbr = self._pyramid(cat_frames_channels_last([lr_feats, hr_feats]))
        # Every frame aligns to LR frame t of its window.
        ref = [lv.view(b, t, *lv.shape[1:])[:, CENTRE] for lv in nbr]
        aligned = self.pcd_align(nbr, ref).view(b, t, c, h, w)
        feat, attention = self.fusion(aligned)
        out = self.reconstruction(feat)
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        head = self.lrelu(self.conv_hr(out))
        out = self.conv_last(head)
        base = F.interpolate(lr_centre, scale_factor=SCALE, mode="bilinear", align_corners=False)
        out = out + base
        tau = blend = None
        if self.hr_gate is not None:
            assert hr_frames is not None  # checked above
            out = self.hr_gate(out, hr_frames, base, head)
        elif self.hr_warp is not None:
            assert hr_frames is not None  # checked above
            at_t = phantom_at_t(hr_frames, lr_centre, cache=motion_cache)
            out, blend = self.hr_warp(out, at_t, base, lr_centre, head)
            tau = at_t.tau.detach()
        if self.consistency is not None:
            out = self.consistency(out, lr_centre, shimadzu)
        return FusedOutput(out, attention, tau, blend)

    def forward_with_attention(
        self, lq: torch.Tensor, hq: torch.Tensor, shimadzu: ShimadzuMeasurement | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Plain forward that also returns TSA attention (B, 5) per input frame (t-1 lr,
        t lr, t+1 lr, hr before, hr after). ``lq``/``hq`` are BasicSR's names;
        ``shimadzu`` is for the consistency step (default: exact registration, x4)."""
        check_window(lq, hq, like=self.conv_first.weight)
        b, _, _, h, w = lq.shape
        lr = self.encode_lr(lq.reshape(b * NUM_LR, 1, h, w)).view(b, NUM_LR, -1, h, w)
        hr = self.encode_hr(hq.reshape(b * NUM_HR, 1, SCALE * h, SCALE * w))
        fused = self.fuse(lr, hr.view(b, NUM_HR, -1, h, w), lq[:, CENTRE], hq, shimadzu=shimadzu)
        assert fused.attention is not None  # EDVR-STF always has TSA attention
        return fused.image, fused.attention

    def forward(
        self, lq: torch.Tensor, hq: torch.Tensor, shimadzu: ShimadzuMeasurement | None = None
    ) -> torch.Tensor:
        """lq (B,3,1,h,w) LR frames, hq (B,2,1,4h,4w) HR frames -> fused frame t (B,1,4h,4w)."""
        return self.forward_with_attention(lq, hq, shimadzu)[0]
