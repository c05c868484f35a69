"""Which fraction ``tau`` of the Phantom interval a Shimadzu frame was recorded at.

For each candidate ``tau`` both Phantom frames are warped to that time (the quadratic
flow approximation in ``_phantom_motion``), blended by time and area-averaged to the
Shimadzu grid: what the Shimadzu would have seen at ``tau``. The candidate whose view
correlates best with the frame the Shimadzu recorded wins (correlation, so a gain or
offset between the cameras does not bias it): 11 coarse values 0, 0.1, ..., 1, then
11 fine ones +-0.1 around the best in steps of 0.02.

Every candidate lies on one lattice, multiples of ``TAU_FINE_STEP``, so a view is named
by its lattice index. The views depend on the Phantom pair and the index only, not on
the Shimadzu frame, so every window between the same two Phantom frames can reuse them:
a ``views`` memo (one per pair, owned by ``PhantomMotionCache``) keeps each view it has
made, at most 51 a pair, and a fine pass shares the views of the one next to it. Each
view is computed on its own, so the correlation, the only per-window step, runs on
identical numbers whether a view came from the memo or not.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["TAU_COARSE", "TAU_FINE_STEP", "TauViews", "search_tau"]

#: First pass of the tau search: 0, 0.1, ..., 1.
TAU_COARSE = 11
#: Second pass: +-0.1 around the best coarse value in steps of 0.02.
TAU_FINE_STEP = 0.02
#: Lattice steps from tau 0 to tau 1, and from one coarse candidate to the next.
_STEPS = round(1 / TAU_FINE_STEP)
_COARSE_EVERY = _STEPS // (TAU_COARSE - 1)


class TauViews:
    """Memo of one pair: its sampling grids and the views made so far, keyed by (scale,
    lattice index), (1, 1, h, w) each."""

    __slots__ = ("grids", "views")

    def __init__(self) -> None:
        self.grids: _PairGrids | None = None
        self.views: dict[tuple[int, int], torch.Tensor] = {}


class _PairGrids:
    """Sampling grids of one pair for any ``tau``: a base grid plus both flows, already
    in grid_sample's normalised units, so each candidate's grid is one product. Built on
    the first view the memo does not hold."""

    def __init__(self, pair: torch.Tensor, f01: torch.Tensor, f10: torch.Tensor) -> None:
        self.pair, self.flow_pair, self.shape = pair, (f01, f10), tuple(pair.shape[-2:])

    @functools.cached_property
    def _grids(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, H * W * 2) base grid, x then y per pixel; (2, H * W * 2) both flows."""
        h, w = self.shape
        dev, dt = self.pair.device, self.pair.dtype
        units = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=dev, dtype=dt)
        xs = torch.arange(w, device=dev, dtype=dt) * units[0] - 1.0
        ys = torch.arange(h, device=dev, dtype=dt) * units[1] - 1.0
        base = torch.stack((xs.expand(h, w), ys[:, None].expand(h, w)), dim=-1)
        flows = torch.stack(self.flow_pair) * units.view(1, 2, 1, 1)  # (2, 2, H, W)
        return base.reshape(1, -1), flows.permute(0, 2, 3, 1).reshape(2, -1)

    def views(self, taus: torch.Tensor, scale: int) -> torch.Tensor:
        """What the Shimadzu would see of the pair warped to each of ``taus``: (K, 1, h, w)."""
        k, (h, w) = taus.numel(), self.shape
        base, flows = self._grids
        t = taus.view(k, 1).to(base.dtype)
        # F_t0 = -(1 - t) t F_01 + t^2 F_10 and F_t1 = (1 - t)^2 F_01 - t (1 - t) F_10
        weights = (
            torch.cat((-(1 - t) * t, t * t), dim=1),
            torch.cat(((1 - t) * (1 - t), -t * (1 - t)), dim=1),
        )
        seen = []
        for frame, coeff in zip(self.pair, weights):
            grid = torch.addmm(base, coeff, flows).view(k, h, w, 2)
            image = frame.view(1, 1, h, w).expand(k, 1, h, w)
            warped = F.grid_sample(
                image, grid, mode="bilinear", padding_mode="border", align_corners=True
            )
            seen.append(F.avg_pool2d(warped, scale))  # the Shimadzu integrates its pixels
        blend = t.view(k, 1, 1, 1)
        return (1 - blend) * seen[0] + blend * seen[1]


def _correlation(views: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each view (K, ...) with one frame -> (K,)."""
    a = views.flatten(1)
    a = a - a.mean(dim=1, keepdim=True)
    b = frame.flatten()
    b = b - b.mean()
    den = (a.square().sum(dim=1) * b.square().sum()).sqrt().clamp_min(1e-12)
    return (a @ b) / den


def _view(grids: _PairGrids, index: int, scale: int, memo: TauViews) -> torch.Tensor:
    """The view at lattice ``index`` (1, 1, h, w), from the memo when it holds it."""
    key = (scale, index)  # the views' grid is part of what they are
    view = memo.views.get(key)
    if view is None:
        tau = torch.tensor([index / _STEPS], device=grids.pair.device, dtype=grids.pair.dtype)
        view = memo.views[key] = grids.views(tau, scale)
    return view


def _best(
    indices: list[int], grids: _PairGrids, frame: torch.Tensor, scale: int, memo: TauViews
) -> int:
    """The lattice index among ``indices`` whose view correlates best with ``frame``."""
    views = torch.cat([_view(grids, i, scale, memo) for i in indices])
    return indices[int(_correlation(views, frame).argmax())]


def search_tau(
    pair: torch.Tensor,
    f01: torch.Tensor,
    f10: torch.Tensor,
    frame: torch.Tensor,
    memo: TauViews | None = None,
) -> torch.Tensor:
    """The ``tau`` (0-d float32) whose warped view of ``pair`` best matches ``frame``.

    pair (2, H, W): the Phantom frames before and after, float32; f01, f10 (2, H, W):
    their flows both ways; frame (1, h, w): the Shimadzu frame, on a divisor grid of
    (H, W). ``memo`` holds the pair's views across windows (None: computed here; the
    chosen ``tau`` is the same either way).
    """
    scale = pair.shape[-1] // frame.shape[-1]
    memo = TauViews() if memo is None else memo  # this window's own: its passes share views
    if memo.grids is None:
        memo.grids = _PairGrids(pair, f01, f10)
    grids = memo.grids
    # under a bf16/fp16 autocast the grid products and the correlation would drop to 16
    # bits: sampling positions 2 px apart past 256 px, and a coarse tau
    with torch.autocast(pair.device.type, enabled=False):
        best = _best(list(range(0, _STEPS + 1, _COARSE_EVERY)), grids, frame, scale, memo)
        fine = [min(max(best + k, 0), _STEPS) for k in range(-5, 6)]
        best = _best(fine, grids, frame, scale, memo)
    return torch.tensor(best / _STEPS, device=pair.device, dtype=torch.float32)
