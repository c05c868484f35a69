"""Operators the fusion models need that plain ``torch.nn`` lacks."""

from ._deform_conv import ModulatedDeformConv2d, modulated_deform_conv2d, torchvision_deform_conv2d
from ._phantom_motion import (
    PhantomAtT,
    PhantomMotionCache,
    dense_flow,
    pair_motion,
    phantom_at_t,
    warp,
)

__all__ = [
    "ModulatedDeformConv2d",
    "PhantomAtT",
    "PhantomMotionCache",
    "dense_flow",
    "modulated_deform_conv2d",
    "pair_motion",
    "phantom_at_t",
    "torchvision_deform_conv2d",
    "warp",
]
