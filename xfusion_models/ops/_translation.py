"""Whole-frame sub-pixel translation: move a frame, and find the move that fits a target.

The consistency step uses it to put the fused frame where the Shimadzu frame saw the
field: a sample shaken or oscillating faster than the Phantom samples sits elsewhere at
a Shimadzu frame than the two Phantom frames around it say.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["estimate_translation", "translate"]


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, H, W) with its content moved by (``dy``, ``dx``) pixels, one pair per
    batch item (B,): bicubic, the border pixels repeated where nothing moved in."""
    b, _, h, w = x.shape
    rows = torch.arange(h, dtype=x.dtype, device=x.device).view(1, h, 1) - dy.view(b, 1, 1)
    cols = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, w) - dx.view(b, 1, 1)
    # pixel centre p -> normalised (2p + 1) / size - 1 (align_corners=False)
    grid = torch.stack(
        (((2 * cols + 1) / w - 1).expand(b, h, w), ((2 * rows + 1) / h - 1).expand(b, h, w)),
        dim=-1,
    )
    return F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=False)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences along rows and columns (the outermost pixels are cropped away
    by the caller)."""
    gy = (torch.roll(x, -1, 2) - torch.roll(x, 1, 2)) / 2
    gx = (torch.roll(x, -1, 3) - torch.roll(x, 1, 3)) / 2
    return gy, gx


def estimate_translation(
    render: Callable[[torch.Tensor], torch.Tensor],
    target: torch.Tensor,
    weight: torch.Tensor,
    *,
    start: torch.Tensor | None = None,
    steps: int = 4,
    max_px: float = 2.0,
    border: int = 2,
) -> torch.Tensor:
    """The (dy, dx) per batch item, (B, 2), for which ``render(move)`` (B, 1, h, w) best
    fits ``target`` in weighted least squares (``weight``: 1 / noise variance).

    Gauss-Newton with one global motion (Lucas-Kanade on the whole frame) from ``start``
    (default no move), ``steps`` times, the move clamped to +-``max_px``; ``border``
    pixels at each edge are left out (what moves in there is made up). A frame with no
    gradient keeps its start.
    """
    b = target.shape[0]
    inner = (slice(None), slice(None), slice(border, -border), slice(border, -border))
    move = torch.zeros(b, 2, dtype=target.dtype, device=target.device)
    if start is not None:
        move = start.to(move)
    w = weight[inner]
    for _ in range(steps):
        moved = render(move)
        gy, gx = (g[inner] for g in _gradients(moved))
        residual = (target - moved)[inner]
        # moved(d + e) ~ moved(d) - e . grad: solve the 2 x 2 normal equations per item
        a11, a12, a22 = ((w * p * q).flatten(1).sum(1) for p, q in ((gy, gy), (gy, gx), (gx, gx)))
        b1 = -(w * gy * residual).flatten(1).sum(1)
        b2 = -(w * gx * residual).flatten(1).sum(1)
        det = a11 * a22 - a12 * a12
        solvable = det > 1e-12 * (a11 * a22).clamp_min(1e-30)
        safe = torch.where(solvable, det, torch.ones_like(det))
        step = torch.stack(((a22 * b1 - a12 * b2) / safe, (a11 * b2 - a12 * b1) / safe), 1)
        move = (move + torch.where(solvable.view(-1, 1), step, torch.zeros_like(step))).clamp(
            -max_px, max_px
        )
    return move
