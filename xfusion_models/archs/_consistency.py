"""Measurement consistency: the fused frame must not contradict the Shimadzu frame t.

The network and its gates propose a frame; the Shimadzu measured the same instant, only
coarser (``ops.measure``: area integration over ``ratio x ratio`` pixels). This step,
which has nothing to train, keeps the proposal where the Shimadzu supports it and
overrules it where it does not:

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

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import ShimadzuMeasurement, bicubic_upsample

__all__ = ["ShimadzuConsistency"]


class ShimadzuConsistency(nn.Module):
    """Overrule the proposal where the Shimadzu frame contradicts it, then project.

    ``low``/``high``: support thresholds in noise units; ``iterations``: back-projection
    steps for the Shimadzu-only reconstruction and for the final projection.
    """

    def __init__(self, low: float = 2.0, high: float = 4.0, iterations: int = 3) -> None:
        super().__init__()
        if not 0 <= low < high:
            raise ValueError(f"need 0 <= low < high, got low={low}, high={high}")
        self.low = float(low)
        self.high = float(high)
        self.iterations = int(iterations)

    def shimadzu_only(self, lr: torch.Tensor, shimadzu: ShimadzuMeasurement) -> torch.Tensor:
        """Bicubic x4 of ``lr`` refined by back-projection so it measures back to ``lr``."""
        out = bicubic_upsample(lr, shimadzu.ratio)
        for _ in range(self.iterations):
            out = out + bicubic_upsample(lr - shimadzu.measure(out), shimadzu.ratio)
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
        overruled = self.support(proposal, lr, sigma, shimadzu)
        weight = F.interpolate(overruled, scale_factor=shimadzu.ratio, mode="bilinear")
        out = proposal + weight * (self.shimadzu_only(lr, shimadzu) - proposal)
        # a 3x3 mean of pure noise has sigma / 3: only a bias beyond twice that is corrected
        tolerance = 2.0 * sigma / 3.0
        for _ in range(self.iterations):
            residual = lr - shimadzu.measure(out)
            residual = F.avg_pool2d(residual, 3, stride=1, padding=1, count_include_pad=False)
            beyond_noise = residual.sign() * (residual.abs() - tolerance).clamp_min(0.0)
            out = out + bicubic_upsample(beyond_noise, shimadzu.ratio)
        return out.to(dtype)
