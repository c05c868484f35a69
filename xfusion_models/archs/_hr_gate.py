"""Optional full-resolution gates that let Phantom detail pass through EDVR-STF.

``HRGate`` (``hr_gate``, the v3 model) blends the raw Phantom frames; ``WarpGate``
(``hr_warp``) blends Phantom frames first warped to time t by dense optical flow
(``xfusion_models.ops.phantom_at_t``), which carries detail across the whole Phantom
interval instead of only a few Shimadzu frames from a Phantom frame.


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

from ..ops import PhantomAtT, cat_channels_last

__all__ = [
    "HRGate",
    "WarpGate",
    "GATE_START_BIAS",
    "GATE_IMAGE_INPUTS",
    "WARP_IMAGE_INPUTS",
    "WARP_START_OTHERS",
]

#: Start logits (fused, before, after): softmax gives the fused frame ~96.5 % weight,
#: so a gate added to trained weights starts close to their behaviour.
GATE_START_BIAS = (4.0, 0.0, 0.0)
#: fused, before, after, bilinear LR t, |before - fused|, |after - fused|
GATE_IMAGE_INPUTS = 6


#: fused, before@t, after@t, bilinear LR t, |before@t - after@t|, two LR mismatch maps, tau,
#: two flow round-trip error maps
WARP_IMAGE_INPUTS = 10
#: Start logit of the fused and the bilinear LR frame against log(1 - tau), log(tau) of
#: the warped Phantom frames: the gate starts within ~4 % of the time-weighted warp blend.
WARP_START_OTHERS = -4.0
#: tau is clamped to [TAU_FLOOR, 1 - TAU_FLOOR] in the prior's logarithms.
TAU_FLOOR = 1e-3


def _gate_layers(
    name: str, inputs: int, feat: int, layers: int, start_bias: tuple[float, ...]
) -> tuple[nn.Sequential, nn.Conv2d]:
    """3x3 conv body with LeakyReLU and a zero-weight logit head starting at ``start_bias``."""
    if feat < 1 or layers < 2:
        raise ValueError(f"{name} needs feat >= 1 and layers >= 2, got {feat}, {layers}")
    convs: list[nn.Module] = [nn.Conv2d(inputs, feat, 3, 1, 1)]
    for _ in range(layers - 2):
        convs += [nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(feat, feat, 3, 1, 1)]
    convs.append(nn.LeakyReLU(0.1, inplace=True))
    logits = nn.Conv2d(feat, len(start_bias), 3, 1, 1)
    nn.init.zeros_(logits.weight)
    logits.bias = nn.Parameter(torch.tensor(start_bias))
    return nn.Sequential(*convs), logits


class HRGate(nn.Module):
    """Per-pixel softmax blend of the fused frame and the two raw Phantom frames."""

    def __init__(self, head_feat: int, feat: int = 16, layers: int = 3) -> None:
        super().__init__()
        self.body, self.logits = _gate_layers(
            "hr_gate", GATE_IMAGE_INPUTS + head_feat, feat, layers, GATE_START_BIAS
        )

    def weights(
        self,
        fused: torch.Tensor,
        hr_frames: torch.Tensor,
        lr_up: torch.Tensor,
        head: torch.Tensor,
    ) -> torch.Tensor:
        """Blend weights (B, 3, H, W) for (fused, before, after); they sum to 1 per pixel."""
        before, after = hr_frames[:, 0], hr_frames[:, 1]
        x = cat_channels_last(
            (fused, before, after, lr_up, (before - fused).abs(), (after - fused).abs(), head)
        )
        return F.softmax(self.logits(self.body(x)), dim=1)

    def forward(
        self,
        fused: torch.Tensor,
        hr_frames: torch.Tensor,
        lr_up: torch.Tensor,
        head: torch.Tensor,
    ) -> torch.Tensor:
        """fused, lr_up (B,1,H,W), hr_frames (B,2,1,H,W), head (B,F,H,W) -> blend (B,1,H,W)."""
        w = self.weights(fused, hr_frames, lr_up, head)
        frames = torch.cat((fused, hr_frames[:, 0], hr_frames[:, 1]), dim=1)
        return (w * frames).sum(dim=1, keepdim=True)


def _mismatch(warped: torch.Tensor, lr_centre: torch.Tensor) -> torch.Tensor:
    """|area-averaged warped frame - Shimadzu frame t|, smoothed 3x3, back at full size."""
    scale = warped.shape[-1] // lr_centre.shape[-1]
    diff = (F.avg_pool2d(warped, scale) - lr_centre).abs()
    diff = F.avg_pool2d(diff, 3, stride=1, padding=1, count_include_pad=False)
    return F.interpolate(diff, scale_factor=scale, mode="bilinear", align_corners=False)


class WarpGate(nn.Module):
    """Per-pixel softmax blend of four candidates for frame t: the network's fused frame,
    both Phantom frames warped to t, and the bilinear Shimadzu frame t.

    The logits start at the time prior: (1 - tau, tau) for the warped frames and
    ``WARP_START_OTHERS`` for the others, i.e. the Super SloMo blend. From there the gate
    learns, from where each warped frame disagrees with what the Shimadzu recorded at t
    (flow failures, things that appeared or vanished between the Phantom frames), where
    the forward and backward flows disagree, how far the warped frames disagree, ``tau``
    and the network's head features, when to prefer
    one Phantom frame, the network's frame, or (when nothing else fits) the Shimadzu frame.
    """

    def __init__(self, head_feat: int, feat: int = 16, layers: int = 3) -> None:
        super().__init__()
        self.body, self.logits = _gate_layers(
            "hr_warp", WARP_IMAGE_INPUTS + head_feat, feat, layers, (0.0,) * 4
        )

    @staticmethod
    def prior(tau: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Start logits (B, 4, 1, 1): log-weights of the time-weighted blend of the warps."""
        t = tau.to(like.dtype).clamp(TAU_FLOOR, 1 - TAU_FLOOR).view(-1, 1)
        other = torch.full_like(t, WARP_START_OTHERS)
        return torch.cat((other, (1 - t).log(), t.log(), other), dim=1)[..., None, None]

    def weights(
        self,
        fused: torch.Tensor,
        at_t: PhantomAtT,
        lr_up: torch.Tensor,
        lr_centre: torch.Tensor,
        head: torch.Tensor,
    ) -> torch.Tensor:
        """Blend weights (B, 4, H, W) for (fused, before@t, after@t, bilinear LR t)."""
        before, after = at_t.before, at_t.after
        tau = at_t.tau.view(-1, 1, 1, 1).to(fused.dtype).expand_as(fused)
        errors = [
            torch.zeros_like(fused) if e is None else torch.log1p(e.to(fused.dtype))
            for e in (at_t.before_error, at_t.after_error)
        ]
        x = cat_channels_last(
            (
                fused,
                before,
                after,
                lr_up,
                (before - after).abs(),
                _mismatch(before, lr_centre),
                _mismatch(after, lr_centre),
                tau,
                *errors,
                head,
            )
        )
        logits = self.logits(self.body(x)) + self.prior(at_t.tau, fused)
        return F.softmax(logits, dim=1)

    def forward(
        self,
        fused: torch.Tensor,
        at_t: PhantomAtT,
        lr_up: torch.Tensor,
        lr_centre: torch.Tensor,
        head: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """fused, lr_up (B,1,H,W), lr_centre (B,1,h,w), head (B,F,H,W) -> the blend
        (B,1,H,W) and, per window, the mean weight (B, 4) of (fused, before@t, after@t,
        bilinear LR t) over the frame (detached: a report, not a training signal)."""
        w = self.weights(fused, at_t, lr_up, lr_centre, head)
        frames = torch.cat((fused, at_t.before, at_t.after, lr_up), dim=1)
        return (w * frames).sum(dim=1, keepdim=True), w.detach().mean(dim=(2, 3))
