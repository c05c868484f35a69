"""The two XFusion architectures and the streaming protocol they share.

Both take one window — ``lq`` (B, 3, 1, h, w) Shimadzu frames t-1, t, t+1 and ``hq``
(B, 2, 1, 4h, 4w) Phantom frames before/after t — and return the fused frame t
(B, 1, 4h, 4w). See :mod:`xfusion_models` for the cached-feature protocol.
"""

from ._edvr_stf import EDVR_STF_PRESETS, EDVRSTF, EDVRSTFConfig
from ._swin_xvr import SWIN_XVR_PRESETS, SwinXVR, SwinXVRConfig

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
