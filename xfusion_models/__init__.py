"""PyTorch models for dual-camera x-ray fusion: EDVR-STF and SWIN-XVR, weights, checkpoints.

Importing this package does not import torch; the names below load on first use.

Streaming protocol (both architectures, what the live fusion callback calls)
----------------------------------------------------------------------------
A window is ``lq`` (B, 3, 1, h, w): Shimadzu (LR) frames t-1, t, t+1, and ``hq``
(B, 2, 1, 4h, 4w): the Phantom (HR) frames before and after t; h and w are multiples
of 4. Everything computed before frames interact is exposed per frame, so features of
frames shared by consecutive windows can be cached and reused:

``model.encode_lr(x)``
    x (N, 1, h, w) -> per-frame LR features (N, C, h, w).
``model.encode_hr(y)``
    y (N, 1, 4h, 4w) -> per-frame HR features on the LR grid (N, C, h, w).
``model.fuse(lr_feats, hr_feats, lq_centre, hq=None)``
    lr_feats (B, 3, C, h, w) for t-1, t, t+1; hr_feats (B, 2, C, h, w) for before,
    after; lq_centre (B, 1, h, w) = LR frame t -> ``(out (B, 1, 4h, 4w), attention)``,
    attention (B, 5) in the order (t-1 lo, t lo, t+1 lo, before hi, after hi) for
    EDVR-STF, ``None`` for SWIN-XVR. ``hq`` (B, 2, 1, 4h, 4w), the raw Phantom frames,
    is required when ``getattr(model, "needs_hr_frames", False)`` (EDVR-STF built with
    ``hr_gate=True``) and ignored-by-omission otherwise: callers pass it only then.
``model(lq, hq)``
    the plain stateless forward -> out (B, 1, 4h, 4w);
    ``model.forward_with_attention(lq, hq)`` -> (out, attention or None).

``fuse(encode_lr(...), encode_hr(...), lq[:, 1])`` (plus ``hq=hq`` when the model
needs HR frames) equals ``model(lq, hq)`` to float tolerance. ``C`` is
``model.num_feat``. Inputs are intensities in [0, 1].
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "EDVRSTF",
    "PRESETS",
    "CheckpointError",
    "ModulatedDeformConv2d",
    "SwinXVR",
    "WeightsEntry",
    "build_model",
    "default_weights",
    "edvr_stf",
    "get_weights",
    "list_weights",
    "load_checkpoint",
    "load_original_checkpoint",
    "save_checkpoint",
    "swin_xvr",
]

_WHERE = {
    "EDVRSTF": ".archs",
    "SwinXVR": ".archs",
    "PRESETS": ".archs",
    "ModulatedDeformConv2d": ".ops",
    "CheckpointError": ".weights",
    "WeightsEntry": ".weights",
    "default_weights": ".weights",
    "get_weights": ".weights",
    "list_weights": ".weights",
    "load_checkpoint": ".weights",
    "load_original_checkpoint": ".weights",
    "save_checkpoint": ".weights",
    "build_model": "._builders",
    "edvr_stf": "._builders",
    "swin_xvr": "._builders",
}

if TYPE_CHECKING:
    from ._builders import build_model, edvr_stf, swin_xvr
    from .archs import EDVRSTF, PRESETS, SwinXVR
    from .ops import ModulatedDeformConv2d
    from .weights import (
        CheckpointError,
        WeightsEntry,
        default_weights,
        get_weights,
        list_weights,
        load_checkpoint,
        load_original_checkpoint,
        save_checkpoint,
    )


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'xfusion_models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
