"""Pixel losses of the original recipe: Charbonnier for EDVR-STF, L1 for SWIN-XVR."""

from __future__ import annotations

import torch

__all__ = ["charbonnier_loss", "l1_loss", "pixel_loss"]


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean of ``sqrt((pred - target)^2 + eps^2)``: L1 that stays smooth near zero."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


def pixel_loss(name: str, eps: float = 1e-6):
    """The loss function named in the options."""
    if name == "charbonnier":
        return lambda p, t: charbonnier_loss(p, t, eps)
    if name == "l1":
        return l1_loss
    raise ValueError(f"unknown loss {name!r}")
