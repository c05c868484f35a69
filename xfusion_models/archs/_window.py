"""The fusion window every architecture takes, and its shape checks.

A window is ``lq`` (B, 3, 1, h, w): Shimadzu (LR) frames t-1, t, t+1, and ``hq``
(B, 2, 1, 4h, 4w): the Phantom (HR) frames before and after t (``lq``/``hq`` are
BasicSR's names, kept for ``forward``; the streaming ``fuse`` says lr/hr). Checks run
before any compute so a caller sees which tensor is wrong instead of a conv error deep
inside.
"""

from __future__ import annotations

import torch

__all__ = [
    "SCALE",
    "NUM_LR",
    "NUM_HR",
    "check_window",
    "check_fuse_inputs",
    "check_frames",
    "check_gate_frames",
]

SCALE = 4
NUM_LR = 3
NUM_HR = 2


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def check_window(
    lq: torch.Tensor, hq: torch.Tensor, like: torch.Tensor | None = None, multiple: int = 4
) -> None:
    """Raise ``ValueError`` unless (lq, hq) is one well-formed batch of windows.

    ``like`` is a model parameter: inputs must share its dtype and device.
    """
    if not isinstance(lq, torch.Tensor) or not isinstance(hq, torch.Tensor):
        raise TypeError(f"lq and hq must be tensors, got {type(lq).__name__}, {type(hq).__name__}")
    if lq.ndim != 5 or lq.shape[1] != NUM_LR or lq.shape[2] != 1:
        raise ValueError(
            f"lq must be (B,3,1,h,w) with h,w multiples of {multiple}, got {_shape(lq)}"
        )
    b, _, _, h, w = lq.shape
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise ValueError(
            f"lq must be (B,3,1,h,w) with h,w multiples of {multiple}, got {_shape(lq)}"
        )
    want = (b, NUM_HR, 1, SCALE * h, SCALE * w)
    if _shape(hq) != want:
        raise ValueError(f"hq must be (B,2,1,4h,4w) = {want} for lq {_shape(lq)}, got {_shape(hq)}")
    if not lq.is_floating_point() or lq.dtype != hq.dtype:
        raise ValueError(f"lq and hq must share one floating dtype, got {lq.dtype}, {hq.dtype}")
    if lq.device != hq.device:
        raise ValueError(f"lq and hq must be on one device, got {lq.device}, {hq.device}")
    if like is not None and (lq.dtype != like.dtype or lq.device != like.device):
        raise ValueError(
            f"lq/hq are {lq.dtype} on {lq.device} but the model is {like.dtype} on "
            f"{like.device}; move one to match (model.to(...) or tensor.to(...))"
        )


def check_frames(x: torch.Tensor, name: str, scale: int = 1, multiple: int = 4) -> None:
    """Frames for per-frame encoding: (N, 1, h, w), h,w multiples of ``scale * multiple``."""
    m = scale * multiple
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] % m or x.shape[3] % m:
        raise ValueError(f"{name} must be (N,1,h,w) with h,w multiples of {m}, got {_shape(x)}")


def check_fuse_inputs(
    lr_feats: torch.Tensor, hr_feats: torch.Tensor, lr_centre: torch.Tensor, num_feat: int
) -> None:
    """Cached per-frame features must line up with each other and the LR centre frame."""
    if lr_feats.ndim != 5 or lr_feats.shape[1] != NUM_LR or lr_feats.shape[2] != num_feat:
        raise ValueError(f"lr_feats must be (B,3,{num_feat},h,w), got {_shape(lr_feats)}")
    b, _, c, h, w = lr_feats.shape
    if _shape(hr_feats) != (b, NUM_HR, c, h, w):
        raise ValueError(f"hr_feats must be {(b, NUM_HR, c, h, w)}, got {_shape(hr_feats)}")
    if _shape(lr_centre) != (b, 1, h, w):
        raise ValueError(f"lr_centre must be {(b, 1, h, w)}, got {_shape(lr_centre)}")


def check_gate_frames(hr_frames: torch.Tensor | None, lr_centre: torch.Tensor) -> None:
    """A model with a full-resolution gate needs the raw HR frames in ``fuse``."""
    b, _, h, w = lr_centre.shape
    want = (b, NUM_HR, 1, SCALE * h, SCALE * w)
    if hr_frames is None:
        raise ValueError(
            "this model has hr_gate/hr_warp on (needs_hr_frames is True): fuse(...) needs "
            f"hr_frames={want}, the raw Phantom frames before/after, got hr_frames=None"
        )
    if _shape(hr_frames) != want:
        raise ValueError(
            f"hr_frames must be (B,2,1,4h,4w) = {want} for the gate, got {_shape(hr_frames)}"
        )
    if hr_frames.dtype != lr_centre.dtype or hr_frames.device != lr_centre.device:
        raise ValueError(
            f"hr_frames are {hr_frames.dtype} on {hr_frames.device} but lr_centre is "
            f"{lr_centre.dtype} on {lr_centre.device}; they must match"
        )
