"""The two XFusion architectures.

Both take one window — ``lq`` (B, 3, 1, h, w) Shimadzu frames t-1, t, t+1 and ``hq``
(B, 2, 1, 4h, 4w) Phantom frames before/after t — and return the fused frame t
(B, 1, 4h, 4w); both satisfy ``xfusion_models.StreamingFusionNet``, the cached-feature
interface of a live caller.
"""

from typing import TYPE_CHECKING

from ._edvr_stf import EDVR_STF_PRESETS, EDVRSTF, EDVRSTFConfig
from ._swin_xvr import SWIN_XVR_PRESETS, SwinXVR, SwinXVRConfig

if TYPE_CHECKING:
    from .._protocol import StreamingFusionNet

__all__ = [
    "ARCHS",
    "PRESETS",
    "EDVRSTF",
    "EDVRSTFConfig",
    "EDVR_STF_PRESETS",
    "SwinXVR",
    "SwinXVRConfig",
    "SWIN_XVR_PRESETS",
]

#: Architecture name -> model class.
ARCHS = {"edvr_stf": EDVRSTF, "swin_xvr": SwinXVR}
#: Architecture name -> preset name -> hyper-parameters.
PRESETS = {"edvr_stf": EDVR_STF_PRESETS, "swin_xvr": SWIN_XVR_PRESETS}

if TYPE_CHECKING:  # mypy proves both classes satisfy the streaming protocol
    _EDVR_STF: type[StreamingFusionNet] = EDVRSTF
    _SWIN_XVR: type[StreamingFusionNet] = SwinXVR
