"""PyTorch models for dual-camera x-ray fusion: EDVR-STF and SWIN-XVR, weights, checkpoints.

Importing this package does not import torch; the names below load on first use.

Both architectures take a window through ``model(lq, hq)`` (BasicSR's names: ``lq``
(B, 3, 1, h, w) LR Shimadzu frames t-1, t, t+1; ``hq`` (B, 2, 1, 4h, 4w) HR Phantom
frames before and after t) and offer the cached-feature streaming interface a live
caller uses: see :class:`StreamingFusionNet` (and :class:`FusedOutput`, what ``fuse``
returns; :class:`PhantomMotionCache`, the flow cache a caller may own and pass in).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "EDVRSTF",
    "PRESETS",
    "CheckpointError",
    "FusedOutput",
    "ModulatedDeformConv2d",
    "PhantomMotionCache",
    "StreamingFusionNet",
    "SwinXVR",
    "WeightsEntry",
    "build_model",
    "default_weights",
    "edvr_stf",
    "file_sha256",
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
    "PhantomMotionCache": ".ops",
    "FusedOutput": "._protocol",
    "StreamingFusionNet": "._protocol",
    "file_sha256": ".weights",
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
    from ._protocol import FusedOutput, StreamingFusionNet
    from .archs import EDVRSTF, PRESETS, SwinXVR
    from .ops import ModulatedDeformConv2d, PhantomMotionCache
    from .weights import (
        CheckpointError,
        WeightsEntry,
        default_weights,
        file_sha256,
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
