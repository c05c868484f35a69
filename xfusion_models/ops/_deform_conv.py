"""Modulated deformable convolution (DCNv2) that runs wherever torch runs.

The plain-torch path samples the input with ``grid_sample`` (bilinear, zeros outside the
image, the same rule as the CUDA kernels of DCNv2) and then applies the kernel as one
matrix product. When torchvision imports cleanly its ``deform_conv2d`` kernel is used
instead; torchvision is never a dependency of this package.

Offset layout (the one DCNv2, mmcv, BasicSR and torchvision share): channel
``g * 2 * K + 2 * k`` holds the row (y) shift and ``g * 2 * K + 2 * k + 1`` the column
(x) shift of kernel tap ``k`` (row-major over the kernel) in deformable group ``g``;
mask channel ``g * K + k`` scales the same sample.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["modulated_deform_conv2d", "ModulatedDeformConv2d", "torchvision_deform_conv2d"]

Backend = Literal["auto", "torch", "torchvision"]


@functools.cache
def torchvision_deform_conv2d():  # noqa: ANN201 - returns a callable or None
    """``torchvision.ops.deform_conv2d`` when torchvision imports cleanly, else ``None``."""
    try:
        from torchvision.ops import deform_conv2d
    except (ImportError, RuntimeError, OSError, AttributeError):
        return None
    return deform_conv2d


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@functools.lru_cache(maxsize=64)
def _tap_grid(
    size: tuple[int, int],
    rows: tuple[int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    dev: torch.device,
    dt: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Undeformed tap positions in grid_sample's normalised units, x (K, 1, Wout) and y
    (K, Hout, 1), for output rows ``first_row`` to ``first_row + Hout`` of an input of
    ``size``; the same for every frame and call of a layer, so made once (a frame's
    bands of a 64 x 96 pack otherwise spend ~30 small operators a band building them).
    Read only: callers add the offsets into a new tensor. Made as normal tensors even
    under ``inference_mode``, so a later training step can use them too."""
    (h, w), (first_row, h_out, w_out) = size, rows
    kh, kw = kernel
    k = kh * kw
    with torch.inference_mode(False):
        # Undeformed tap positions in input pixel coordinates.
        ys = torch.arange(first_row, first_row + h_out, device=dev, dtype=dt) * stride[0]
        ys = ys - padding[0]
        xs = torch.arange(w_out, device=dev, dtype=dt) * stride[1] - padding[1]
        ky = (torch.arange(kh, device=dev, dtype=dt) * dilation[0]).repeat_interleave(kw)
        kx = (torch.arange(kw, device=dev, dtype=dt) * dilation[1]).repeat(kh)
        base_y = ky.view(k, 1, 1) + ys.view(1, h_out, 1)
        base_x = kx.view(k, 1, 1) + xs.view(1, 1, w_out)
        # Pixel centre p -> normalised coordinate (2p + 1) / size - 1 for
        # align_corners=False (valid for size 1 too): the undeformed tap's coordinate
        # plus the offset * 2 / size.
        return (2 * base_x + 1) / w - 1, (2 * base_y + 1) / h - 1


def _sample_columns(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    deform_groups: int,
    first_row: int = 0,
) -> torch.Tensor:
    """Bilinear samples at the deformed taps, times the mask: (B, C, K, Hout * Wout).

    ``offset`` and ``mask`` may cover output rows ``first_row`` onwards only (a tile)."""
    b, c, h, w = x.shape
    k = kernel[0] * kernel[1]
    h_out, w_out = offset.shape[-2:]
    dev, dt = x.device, x.dtype
    norm_x, norm_y = _tap_grid(
        (h, w), (first_row, h_out, w_out), kernel, stride, padding, dilation, dev, dt
    )
    off = offset.view(b, deform_groups, k, 2, h_out, w_out)
    if torch.is_grad_enabled():
        grid = torch.stack(
            (
                torch.add(norm_x, off[:, :, :, 1], alpha=2 / w),
                torch.add(norm_y, off[:, :, :, 0], alpha=2 / h),
            ),
            dim=-1,
        )
    else:  # written in place into the interleaved grid: a third of the passes over memory
        grid = torch.empty((b, deform_groups, k, h_out, w_out, 2), device=dev, dtype=dt)
        torch.add(norm_x, off[:, :, :, 1], alpha=2 / w, out=grid[..., 0])
        torch.add(norm_y, off[:, :, :, 0], alpha=2 / h, out=grid[..., 1])
    grid = grid.view(b * deform_groups, k * h_out, w_out, 2)
    xg = x.reshape(b * deform_groups, c // deform_groups, h, w)
    sampled = F.grid_sample(xg, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.view(b, deform_groups, c // deform_groups, k, h_out, w_out)
    taps = mask.view(b, deform_groups, 1, k, h_out, w_out)
    # in place when nothing needs the unmasked samples for a backward pass: the columns
    # are the largest tensor of the layer, and a second copy is another pass over memory
    sampled = sampled * taps if torch.is_grad_enabled() else sampled.mul_(taps)
    return sampled.reshape(b, c, k, h_out * w_out)


def _deform_conv_torch(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    deform_groups: int,
) -> torch.Tensor:
    b, c = x.shape[:2]
    c_out, c_per_group, kh, kw = weight.shape
    h_out, w_out = offset.shape[-2:]
    out_dtype = x.dtype
    if x.dtype in (torch.float16, torch.bfloat16):
        # Half types cannot hold sampling positions (bf16: 2-px steps past 256 px).
        x, offset, mask = x.float(), offset.float(), mask.float()
        weight = weight.float()
        bias = bias.float() if bias is not None else None
    if groups == 1 and not torch.is_grad_enabled() and x.device.type == "cpu":
        # bands keep a CPU's caches warm; on a GPU they would only add kernel launches
        out = _deform_conv_tiled(x, offset, mask, weight, stride, padding, dilation, deform_groups)
    elif groups == 1:
        # (B, L, CK) @ (CK, O): the columns read transposed as they lie, and the product
        # lands as (B, H, W, O), i.e. channels-last, the layout the next convs run fastest
        # on (see ``_layout``); values equal those of the (O, CK) @ (CK, L) product
        # (a batched product: torch.matmul would fold B into L and copy the columns)
        cols = _sample_columns(x, offset, mask, (kh, kw), stride, padding, dilation, deform_groups)
        wmat = weight.reshape(c_out, c * kh * kw).to(cols.dtype)
        cols_t = cols.view(b, c * kh * kw, h_out * w_out).transpose(1, 2)
        out = torch.bmm(cols_t, wmat.t().expand(b, -1, -1))
        out = out.view(b, h_out, w_out, c_out).permute(0, 3, 1, 2)
    else:
        cols = _sample_columns(x, offset, mask, (kh, kw), stride, padding, dilation, deform_groups)
        cols = cols.view(b, groups, (c // groups) * kh * kw, h_out * w_out)
        wmat = weight.reshape(groups, c_out // groups, c_per_group * kh * kw).to(cols.dtype)
        # (1, g, O, CK) @ (B, g, CK, L): a batched product over the columns as they lie
        out = torch.matmul(wmat.unsqueeze(0), cols).reshape(b, c_out, h_out, w_out)
    if bias is not None:
        out.add_(bias.view(1, -1, 1, 1))  # the product is fresh and its backward needs neither
    return out.to(out_dtype)


#: Bytes of sampled columns per tile at inference: small enough to stay in cache from
#: the sampling through the mask to the product.
TILE_BYTES = 4 << 20


def _deform_conv_tiled(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    deform_groups: int,
) -> torch.Tensor:
    """The inference path (one group, no gradients): frame by frame and a band of output
    rows at a time, each band's product written into a channels-last (B, O, H, W) output.

    Whole-batch columns are 570 MB for a 5-frame 248 x 400 pack and go to memory and
    back three times (sampling, mask, product); a band's stay in cache. One frame of a
    channels-last input is already (groups, C / groups, H, W) as the sampler wants it,
    so no copy of the input is made either. Same values as the batched product.
    """
    b, c = x.shape[:2]
    c_out, _, kh, kw = weight.shape
    h_out, w_out = offset.shape[-2:]
    wmat_t = weight.reshape(c_out, c * kh * kw).t().to(x.dtype)
    out = torch.empty((b, h_out, w_out, c_out), device=x.device, dtype=x.dtype)
    rows = max(1, TILE_BYTES // (c * kh * kw * w_out * x.element_size()))
    for i in range(b):
        for top in range(0, h_out, rows):
            band = slice(top, min(top + rows, h_out))
            cols = _sample_columns(
                x[i : i + 1],
                offset[i : i + 1, :, band],
                # the band's mask (N, C, H, W)-contiguous: a channels-last one is read
                # with a stride of G * K floats by the mask multiply, which then cannot
                # vectorise (the copy stays in cache; 10% of the layer at 64 x 96)
                mask[i : i + 1, :, band].contiguous(),
                (kh, kw),
                stride,
                padding,
                dilation,
                deform_groups,
                first_row=top,
            )
            target = out[i, band].view(-1, c_out)
            torch.mm(cols.view(c * kh * kw, -1).t(), wmat_t, out=target)
    return out.permute(0, 3, 1, 2)


def _expected_out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _check_shapes(x, offset, mask, weight, stride, padding, dilation, groups, deform_groups):
    if x.ndim != 4:
        raise ValueError(f"deform conv input must be (B, C, H, W), got {tuple(x.shape)}")
    b, c, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    k = kh * kw
    if c % groups or c_out % groups or c // groups != c_per_group:
        raise ValueError(
            f"weight {tuple(weight.shape)} does not fit {c} input channels in {groups} groups"
        )
    if c % deform_groups:
        raise ValueError(f"{c} input channels not divisible by {deform_groups} deformable groups")
    h_out = _expected_out_size(h, kh, stride[0], padding[0], dilation[0])
    w_out = _expected_out_size(w, kw, stride[1], padding[1], dilation[1])
    want_off = (b, 2 * deform_groups * k, h_out, w_out)
    want_mask = (b, deform_groups * k, h_out, w_out)
    if tuple(offset.shape) != want_off:
        raise ValueError(f"offset must be {want_off}, got {tuple(offset.shape)}")
    if tuple(mask.shape) != want_mask:
        raise ValueError(f"mask must be {want_mask}, got {tuple(mask.shape)}")


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    deform_groups: int = 1,
    backend: Backend = "auto",
) -> torch.Tensor:
    """DCNv2: ``sum_k w_k * mask_k * x(p + p_k + offset_k)`` with bilinear sampling."""
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    _check_shapes(x, offset, mask, weight, stride, padding, dilation, groups, deform_groups)
    fast = torchvision_deform_conv2d() if backend != "torch" else None
    if backend == "torchvision" and fast is None:
        raise RuntimeError("backend='torchvision' asked for, but torchvision does not import")
    if fast is not None:
        # torchvision infers groups and deformable groups from the tensor shapes.
        return fast(x, offset, weight, bias, stride, padding, dilation, mask)
    return _deform_conv_torch(
        x, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups
    )


class ModulatedDeformConv2d(nn.Module):
    """A DCNv2 layer: weights live here, offsets and masks come from the caller."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels}->{out_channels} not divisible by {groups}")
        if in_channels % deform_groups:
            raise ValueError(f"{in_channels} channels not divisible by {deform_groups} groups")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.groups, self.deform_groups = groups, deform_groups
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @property
    def offset_channels(self) -> int:
        """Channels an offset tensor needs (the mask needs half as many)."""
        return 2 * self.deform_groups * self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return modulated_deform_conv2d(
            x,
            offset,
            mask,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.deform_groups,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, deform_groups={self.deform_groups}"
        )
