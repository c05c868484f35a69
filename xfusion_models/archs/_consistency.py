"""Measurement consistency: the fused frame must not contradict the Shimadzu frame t.

The network and its gates propose a frame; the Shimadzu measured the same instant, only
coarser (``ops.measure``: area integration over ``ratio x ratio`` pixels). This step,
which has nothing to train, keeps the proposal where the Shimadzu supports it and
overrules it where it does not:

0a. level (optional, ``level=True``): the proposal's brightness is matched to the
   Shimadzu's region by region (9 x 9 Shimadzu pixels), as a smooth gain. The beam's
   intensity changing from one Shimadzu frame to the next (the bunch pattern, top-up),
   or a cloud absorbing over a wide region between Phantom frames, makes the proposal,
   lit as the Phantom frames were, disagree with the Shimadzu everywhere by a few noise
   units: too little for step 3 to correct, which forgives twice the noise of a 3 x 3
   mean, and enough for step 2 to throw away the Phantom's detail. A regional mean has
   the noise of 81 pixels, so a bias beyond twice that is corrected; each residual is
   clipped to 3 sigma before the mean, so a small event (spatter the proposal lacks)
   leaves no halo of corrected brightness around itself but is left to steps 1-2.
   Transmission is multiplicative, so the correction is a gain (an offset where the
   region is nearly black), and the fine detail keeps its contrast.
0b. position (optional, ``shift=True``): the proposal is moved as a whole, sub-pixel, to
   where the Shimadzu frame saw the field, when that fits it better by more than noise
   can (a drop of ``SHIFT_MIN_GAIN`` in the summed squared residual, in noise units; pure
   noise gives about 2 for two fitted numbers). A sample shaken or oscillating as a whole
   faster than the Phantom samples sits elsewhere at a Shimadzu frame than the Phantom
   frames around it say; half a Shimadzu pixel of that is too little for step 1 to see
   and costs more than bicubic's blur. The place of no motion is the run's own
   registration residual (``ShimadzuMeasurement.offset``, measured where the cameras
   recorded at the same instant): the frame moves only by what goes beyond it, and by
   more than that measurement's own error (``SHIFT_DEAD_ZONE``), so a calibration a
   fraction of a pixel off is not followed; where it was not measured the frame is not
   moved.
1. support: the residual ``S - measure(F)`` in noise units (shot noise estimated from
   ``S`` itself), smoothed over 3x3 Shimadzu pixels. Below ``low`` the proposal is
   supported; above ``high`` it shows a state the fast camera did not see (a keyhole at
   the wrong depth, spatter that is not there, a ghost of the other Phantom frame).
2. fallback: where it is not supported, the proposal's detail is not trusted either, so
   the frame there becomes a reconstruction from the Shimadzu frame alone: bicubic x4
   refined by iterative back-projection until it measures back to ``S`` (sharper than
   bicubic, and consistent by construction). Between ``low`` and ``high`` the two blend
   linearly; the blend is widened by one Shimadzu pixel so a disagreeing region is
   replaced whole, edges included.
3. projection: a few back-projection steps move the blended frame towards measuring to
   ``S``, correcting only the part of the 3x3-averaged residual beyond twice its noise
   (a bias, not noise), so noise in ``S`` is not copied into a frame it supports.

A frame the Shimadzu fully supports passes almost unchanged; the smooth-motion quality
of the Phantom-guided proposal is kept. ADR 0005 records why this design and what else
was measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import (
    OFFSET_ACCURACY,
    ShimadzuMeasurement,
    bicubic_upsample,
    estimate_translation,
    translate,
)

__all__ = ["ShimadzuConsistency"]


class ShimadzuConsistency(nn.Module):
    """Overrule the proposal where the Shimadzu frame contradicts it, then project.

    ``low``/``high``: support thresholds in noise units; ``iterations``: back-projection
    steps for the Shimadzu-only reconstruction and for the final projection, and steps of
    the regional level match (``level``).
    """

    #: Shimadzu pixels a side of the regions whose brightness ``level`` matches
    LEVEL_REGION = 9
    #: residuals are clipped to this many noise sigmas before the regional mean
    LEVEL_CLIP = 3.0
    #: regional measured intensity below which the level is matched by an offset, not a gain
    LEVEL_DARK = 0.02
    #: the most a regional gain may change the proposal in one step (and 1 / it)
    LEVEL_MAX_GAIN = 4.0
    #: the largest move of the whole frame ``shift`` looks for, in Shimadzu pixels
    SHIFT_MAX = 2.0
    #: how much better (summed squared residual, noise units) a move must fit to be taken
    SHIFT_MIN_GAIN = 25.0
    #: Shimadzu pixels at each edge the move's fit leaves out (made up by the move)
    SHIFT_BORDER = 2
    #: Gauss-Newton steps of the move: on the measured frame, then on the frame itself
    SHIFT_STEPS = (4, 2)
    #: Shimadzu pixels a move must go beyond the registration residual to be taken: what
    #: that residual's measurement can tell (a still frame moved by its error of 0.067 px
    #: lost 5-10 dB on texture a Shimadzu pixel resolves)
    SHIFT_DEAD_ZONE = OFFSET_ACCURACY

    def __init__(
        self,
        low: float = 2.0,
        high: float = 4.0,
        iterations: int = 3,
        level: bool = False,
        shift: bool = False,
    ) -> None:
        super().__init__()
        if not 0 <= low < high:
            raise ValueError(f"need 0 <= low < high, got low={low}, high={high}")
        self.low = float(low)
        self.high = float(high)
        self.iterations = int(iterations)
        self.level = bool(level)
        self.shift = bool(shift)

    def match_position(
        self,
        proposal: torch.Tensor,
        lr: torch.Tensor,
        sigma: torch.Tensor,
        shimadzu: ShimadzuMeasurement,
    ) -> torch.Tensor:
        """``proposal`` moved as a whole by how far the Shimadzu saw the field beyond the
        run's registration residual (step 0b), per frame, only where the move fits
        better than noise explains."""
        if not all(math.isfinite(v) and abs(v) <= self.SHIFT_MAX for v in shimadzu.offset):
            # unmeasured: a move could not be told from the registration's residual; past
            # SHIFT_MAX the registration is off by pixels (the run's check flags that)
            return proposal
        weight = sigma.pow(-2)
        measured = shimadzu.measure(proposal)
        ratio = shimadzu.ratio
        # no motion: where the offset puts the frame, less what ``measure`` models of it
        left = [v - m for v, m in zip(shimadzu.offset, shimadzu.modelled_offset)]
        rest = torch.tensor([left], dtype=proposal.dtype, device=proposal.device)
        rest = rest.expand(proposal.shape[0], 2)
        reach = self.SHIFT_MAX + max(abs(v) for v in left)  # SHIFT_MAX beyond rest

        def moved_frame(move: torch.Tensor) -> torch.Tensor:
            return translate(proposal, move[:, 0] * ratio, move[:, 1] * ratio)

        # coarse steps move the measured frame (cheap), the last ones the frame itself and
        # measure it (what the Shimadzu would record of the moved frame, exactly)
        def fit(render: Callable[[torch.Tensor], torch.Tensor], **kwargs: Any) -> torch.Tensor:
            return estimate_translation(
                render, lr, weight, max_px=reach, border=self.SHIFT_BORDER, **kwargs
            )

        coarse, fine = self.SHIFT_STEPS
        move = fit(lambda m: translate(measured, m[:, 0], m[:, 1]), start=rest, steps=coarse)
        if ((move - rest).norm(dim=1) <= self.SHIFT_DEAD_ZONE / 2).all():
            # the coarse fit is good to a few hundredths of a pixel: these frames stay, and
            # the full-frame steps (most of the step's cost) run only where one may move
            return proposal
        move = fit(lambda m: shimadzu.measure(moved_frame(m)), start=move, steps=fine)
        e = self.SHIFT_BORDER
        inner = (slice(None), slice(None), slice(e, -e), slice(e, -e))

        def misfit(frame: torch.Tensor) -> torch.Tensor:
            return ((lr - frame) ** 2 * weight)[inner].flatten(1).sum(1)

        # the move beyond the registration's residual, against where that residual alone
        # puts the frame
        beyond = (move - rest).clamp(-self.SHIFT_MAX, self.SHIFT_MAX)
        at_rest = measured if not rest.any() else shimadzu.measure(moved_frame(rest))
        gain = misfit(at_rest) - misfit(shimadzu.measure(moved_frame(rest + beyond)))
        better = (gain > self.SHIFT_MIN_GAIN) & (beyond.norm(dim=1) > self.SHIFT_DEAD_ZONE)
        return torch.where(better.view(-1, 1, 1, 1), moved_frame(beyond), proposal)

    def match_level(
        self,
        proposal: torch.Tensor,
        lr: torch.Tensor,
        sigma: torch.Tensor,
        shimadzu: ShimadzuMeasurement,
    ) -> torch.Tensor:
        """``proposal`` with each region's brightness matched to the Shimadzu's (step 0a)."""
        size = self.LEVEL_REGION
        pad = size // 2

        def regional_mean(x: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(x, size, stride=1, padding=pad, count_include_pad=False)

        # pixels in each region (fewer at the border) -> noise of the regional mean
        area = F.avg_pool2d(torch.ones_like(lr), size, 1, pad, count_include_pad=True)
        tolerance = 2.0 * (regional_mean(sigma**2) / (area * size * size)).sqrt()
        clip = self.LEVEL_CLIP * sigma

        def grow(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(shimadzu.place(x), scale_factor=shimadzu.ratio, mode="bilinear")

        for _ in range(self.iterations):
            measured = shimadzu.measure(proposal)
            residual = regional_mean(torch.maximum(torch.minimum(lr - measured, clip), -clip))
            bias = residual.sign() * (residual.abs() - tolerance).clamp_min(0.0)
            level = regional_mean(measured)
            lit = level > self.LEVEL_DARK
            gain = ((level + bias) / level.clamp_min(self.LEVEL_DARK)).clamp(
                1.0 / self.LEVEL_MAX_GAIN, self.LEVEL_MAX_GAIN
            )
            gain = torch.where(lit, gain, torch.ones_like(gain))
            offset = torch.where(lit, torch.zeros_like(bias), bias)
            proposal = proposal * grow(gain) + grow(offset)
        return proposal

    def shimadzu_only(self, lr: torch.Tensor, shimadzu: ShimadzuMeasurement) -> torch.Tensor:
        """Bicubic x4 of ``lr`` refined by back-projection so it measures back to ``lr``."""
        out = bicubic_upsample(shimadzu.place(lr), shimadzu.ratio)
        for _ in range(self.iterations):
            out = out + bicubic_upsample(shimadzu.place(lr - shimadzu.measure(out)), shimadzu.ratio)
        return out

    def support(
        self,
        proposal: torch.Tensor,
        lr: torch.Tensor,
        sigma: torch.Tensor,
        shimadzu: ShimadzuMeasurement,
    ) -> torch.Tensor:
        """Per Shimadzu pixel, 0 where ``proposal`` is supported, 1 where it is not."""
        misfit = (lr - shimadzu.measure(proposal)).abs() / sigma
        misfit = F.avg_pool2d(misfit, 3, stride=1, padding=1, count_include_pad=False)
        overruled = ((misfit - self.low) / (self.high - self.low)).clamp(0.0, 1.0)
        return F.max_pool2d(overruled, 3, stride=1, padding=1)

    def forward(
        self,
        proposal: torch.Tensor,
        lr_centre: torch.Tensor,
        shimadzu: ShimadzuMeasurement | None = None,
    ) -> torch.Tensor:
        """``proposal`` (B,1,4h,4w), ``lr_centre`` = Shimadzu frame t (B,1,h,w) -> frame.

        ``shimadzu`` says how the Shimadzu measures (blur, noise after registration);
        default: area integration x4, no extra blur, frames not resampled.
        """
        shimadzu = shimadzu or ShimadzuMeasurement()
        dtype = proposal.dtype
        proposal, lr = proposal.float(), lr_centre.float()
        sigma = shimadzu.sigma(lr)
        # brightness first: a change of light fitted as a move would move the frame wrongly
        if self.level:
            proposal = self.match_level(proposal, lr, sigma, shimadzu)
        if self.shift:
            proposal = self.match_position(proposal, lr, sigma, shimadzu)
        overruled = self.support(proposal, lr, sigma, shimadzu)
        weight = F.interpolate(
            shimadzu.place(overruled), scale_factor=shimadzu.ratio, mode="bilinear"
        )
        out = proposal + weight * (self.shimadzu_only(lr, shimadzu) - proposal)
        # a 3x3 mean of pure noise has sigma / 3: only a bias beyond twice that is corrected
        tolerance = 2.0 * sigma / 3.0
        for _ in range(self.iterations):
            residual = lr - shimadzu.measure(out)
            residual = F.avg_pool2d(residual, 3, stride=1, padding=1, count_include_pad=False)
            beyond_noise = residual.sign() * (residual.abs() - tolerance).clamp_min(0.0)
            out = out + bicubic_upsample(shimadzu.place(beyond_noise), shimadzu.ratio)
        return out.to(dtype)
