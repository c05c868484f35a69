"""Channels-last memory for the convolutions of the fusion network.

On CPU, oneDNN runs many of EDVR-STF's convolutions two to three times faster on
channels-last (N, H, W, C) memory than on the default (N, C, H, W), measured on two
threads: the 32 -> 108 offset conv of a deformable pack 68 -> 184 GFLOP/s at 64 x 96,
the 1 -> 32 first conv of the Phantom branch 379 -> 173 ms on two full 1040 x 1600
frames, the full-resolution gate's first conv 80 -> 171 GFLOP/s. A conv keeps the
layout of its input, and so do element-wise ops, pooling, interpolation, pixel shuffle
and a ``cat`` of channels-last tensors; a mixed ``cat`` or a reshape across the channel
dimension falls back to (N, C, H, W), and converting there costs a pass over memory that
eats most of the gain. So the network converts once where frames come in and keeps the
layout through; the helpers here are for the few places that would lose it. Values are
those of the same ops on (N, C, H, W) up to float rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

__all__ = [
    "cat_channels_last",
    "cat_frames_channels_last",
    "channels_last",
    "merge_frames_channels_last",
]


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) in channels-last memory.

    A one-channel tensor is the same memory in both layouts, but torch reads its
    contiguous strides as (N, C, H, W) and a conv then answers in that layout; it is
    given channels-last strides over the same storage instead of a copy.
    """
    if x.ndim != 4:
        raise ValueError(f"channels_last wants (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[1] != 1:
        return x.contiguous(memory_format=torch.channels_last)
    h, w = x.shape[-2:]
    return x.contiguous().as_strided(x.shape, (h * w, 1, w, 1))


def _empty_channels_last(like: Sequence[torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor:
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in like))
    return torch.empty(shape, dtype=dtype, device=like[0].device, memory_format=torch.channels_last)


def _copy_side_by_side(out: torch.Tensor, dim: int, parts: Sequence[torch.Tensor]) -> None:
    """Copy ``parts`` into consecutive slices of ``out`` along ``dim``."""
    start = 0
    for part in parts:
        out.narrow(dim, start, part.shape[dim]).copy_(part)
        start += part.shape[dim]


def cat_channels_last(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(tensors, dim=1)`` of (N, C_i, H, W) tensors, written straight into
    channels-last memory (a plain ``cat`` of mixed layouts answers in (N, C, H, W))."""
    n, _, h, w = tensors[0].shape
    out = _empty_channels_last(tensors, (n, sum(t.shape[1] for t in tensors), h, w))
    _copy_side_by_side(out, 1, tensors)
    return out


def cat_frames_channels_last(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(parts, dim=1).flatten(0, 1)`` of (B, T_i, C, H, W) frame stacks: one
    (B * T, C, H, W) batch, window by window, in channels-last memory."""
    b, _, c, h, w = parts[0].shape
    frames = sum(p.shape[1] for p in parts)
    out = _empty_channels_last(parts, (b * frames, c, h, w))
    _copy_side_by_side(out.view(b, frames, c, h, w), 1, parts)
    return out


def merge_frames_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x.reshape(B, T * C, H, W)`` of a (B, T, C, H, W) stack, in channels-last memory
    (the frames of each pixel side by side, as a 1x1 conv over all frames reads them)."""
    b, t, c, h, w = x.shape
    out = _empty_channels_last([x], (b, t * c, h, w))
    out.view(b, t, c, h, w).copy_(x)
    return out
