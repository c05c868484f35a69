"""3D-window Swin transformer parts: windows over (frame, row, column) of a feature stack.

Tensors inside a stage are channel-last (B, D, H, W, C); D is the 5 stacked frames.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "DropPath",
    "WindowAttention3D",
    "SwinBlock3D",
    "ResidualSwinStage",
    "per_frame_conv",
]

Triple = tuple[int, int, int]
StageGeometry = tuple[Triple, Triple, "torch.Tensor | None"]


def per_frame_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 2D conv on each frame of (B, C, D, H, W); CPU Conv3d with a 1-frame kernel is slow."""
    b, c, d, h, w = x.shape
    y = conv(x.transpose(1, 2).reshape(b * d, c, h, w))
    return y.view(b, d, -1, h, w).transpose(1, 2)


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def window_partition(x: torch.Tensor, window: Triple) -> torch.Tensor:
    """(B, D, H, W, C) -> (B, nW, wd*wh*ww, C)."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.view(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b, -1, wd * wh * ww, c)


def window_reverse(windows: torch.Tensor, window: Triple, size: Triple) -> torch.Tensor:
    """(B, nW, N, C) -> (B, D, H, W, C)."""
    b, c = windows.shape[0], windows.shape[-1]
    (d, h, w), (wd, wh, ww) = size, window
    x = windows.view(b, d // wd, h // wh, w // ww, wd, wh, ww, c)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, c)


@functools.lru_cache(maxsize=16)
def relative_position_index(table_window: Triple, window: Triple) -> torch.Tensor:
    """Index into a bias table sized for ``table_window`` for every token pair of ``window``."""
    coords = torch.stack(torch.meshgrid(*(torch.arange(n) for n in window), indexing="ij"))
    coords = coords.flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    td, th, tw = table_window
    rel = rel + torch.tensor([td - 1, th - 1, tw - 1])
    return rel[..., 0] * (2 * th - 1) * (2 * tw - 1) + rel[..., 1] * (2 * tw - 1) + rel[..., 2]


def effective_window(size: Triple, window: Sequence[int]) -> tuple[Triple, Triple]:
    """A window no larger than the stack, and a half-window shift only where it fits."""
    eff = tuple(min(s, w) for s, w in zip(size, window))
    shift = tuple(0 if s <= w else w // 2 for s, w in zip(size, window))
    return eff, shift  # type: ignore[return-value]


def shifted_window_mask(size: Triple, window: Triple, shift: Triple, device) -> torch.Tensor:
    """(nW, N, N) additive mask keeping shifted windows from mixing wrapped-around regions."""
    labels = torch.zeros(1, *size, 1, device=device)
    regions = [
        (slice(None),) if s == 0 else (slice(0, -w), slice(-w, -s), slice(-s, None))
        for w, s in zip(window, shift)
    ]
    count = 0
    for sd in regions[0]:
        for sh in regions[1]:
            for sw in regions[2]:
                labels[:, sd, sh, sw, :] = count
                count += 1
    win = window_partition(labels, window).squeeze(0).squeeze(-1)  # (nW, N)
    diff = win[:, None, :] - win[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class WindowAttention3D(nn.Module):
    """Multi-head self-attention inside a window, with a learned relative position bias."""

    def __init__(self, dim: int, window: Triple, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} not divisible by {num_heads} heads")
        self.window, self.num_heads = window, num_heads
        wd, wh, ww = window
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1), num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.scale = (dim // num_heads) ** -0.5

    def forward(self, x: torch.Tensor, window: Triple, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, nW, N, C) -> same; ``mask`` (nW, N, N) or None."""
        b, nw, n, c = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).view(b, nw, n, 3, heads, c // heads).permute(3, 0, 1, 4, 2, 5)
        index = relative_position_index(self.window, window).to(x.device)
        bias = self.relative_position_bias_table[index.flatten()].view(n, n, heads)
        # Written out rather than scaled_dot_product_attention: on CPU its masked path
        # spends a third of the time checking for fully masked rows.
        attn = (qkv[0] * self.scale) @ qkv[1].transpose(-2, -1)  # (B, nW, heads, N, N)
        attn = attn + bias.permute(2, 0, 1)
        if mask is not None:
            attn = attn + mask[None, :, None].to(x.dtype)
        out = attn.softmax(dim=-1) @ qkv[2]
        return self.proj(out.transpose(2, 3).reshape(b, nw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock3D(nn.Module):
    """Pre-norm window attention and MLP, each a residual branch with drop path."""

    def __init__(
        self, dim: int, num_heads: int, window: Triple, mlp_ratio: float, drop_path: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, window, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(
        self, x: torch.Tensor, window: Triple, shift: Triple, mask: torch.Tensor | None
    ) -> torch.Tensor:
        size = tuple(x.shape[1:4])
        y = self.norm1(x)
        if any(shift):
            y = torch.roll(y, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        y = self.attn(window_partition(y, window), window, mask if any(shift) else None)
        y = window_reverse(y, window, size)  # type: ignore[arg-type]
        if any(shift):
            y = torch.roll(y, shifts=shift, dims=(1, 2, 3))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ResidualSwinStage(nn.Module):
    """Swin blocks (plain and shifted windows alternating), a conv, and a skip around all."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: Triple,
        mlp_ratio: float,
        drop_path: Sequence[float],
    ) -> None:
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList(
            SwinBlock3D(dim, num_heads, window, mlp_ratio, drop_path[i]) for i in range(depth)
        )
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def geometry(self, x: torch.Tensor) -> StageGeometry:
        """Window, shift and shift mask for a stack shaped like ``x`` (B, C, D, H, W)."""
        d, h, w = x.shape[2:]
        size = (d, h, w)
        window, shift = effective_window(size, self.window)
        mask = shifted_window_mask(size, window, shift, x.device) if any(shift) else None
        return window, shift, mask

    def forward(self, x: torch.Tensor, geometry: StageGeometry | None = None) -> torch.Tensor:
        """x (B, C, D, H, W) with H, W multiples of the window -> same shape.

        ``geometry`` from :meth:`geometry` may be shared by stages with the same window.
        """
        window, shift, mask = geometry if geometry is not None else self.geometry(x)
        y = x.permute(0, 2, 3, 4, 1)
        for i, block in enumerate(self.blocks):
            y = block(y, window, shift if i % 2 else (0, 0, 0), mask)
        return x + per_frame_conv(self.conv, y.permute(0, 4, 1, 2, 3))
