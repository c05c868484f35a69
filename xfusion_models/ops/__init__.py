"""Operators the fusion models need that plain ``torch.nn`` lacks."""

from ._deform_conv import ModulatedDeformConv2d, modulated_deform_conv2d, torchvision_deform_conv2d
from ._layout import (
    cat_channels_last,
    cat_frames_channels_last,
    channels_last,
    merge_frames_channels_last,
)
from ._measurement import (
    OFFSET_ACCURACY,
    SIGMA_FLOOR,
    ShimadzuMeasurement,
    measure,
    noise_sigma,
    residual_in_noise_units,
    shot_noise_gain,
)
from ._phantom_motion import (
    PhantomAtT,
    PhantomMotionCache,
    dense_flow,
    pair_motion,
    phantom_at_t,
    warp,
)
from ._pooling import HalvingMaxPool, halving_max_pool
from ._translation import estimate_translation, translate
from ._upsampling import bicubic_upsample

__all__ = [
    "OFFSET_ACCURACY",
    "SIGMA_FLOOR",
    "ShimadzuMeasurement",
    "HalvingMaxPool",
    "ModulatedDeformConv2d",
    "bicubic_upsample",
    "PhantomAtT",
    "PhantomMotionCache",
    "cat_channels_last",
    "cat_frames_channels_last",
    "channels_last",
    "dense_flow",
    "estimate_translation",
    "halving_max_pool",
    "measure",
    "merge_frames_channels_last",
    "noise_sigma",
    "modulated_deform_conv2d",
    "pair_motion",
    "residual_in_noise_units",
    "shot_noise_gain",
    "phantom_at_t",
    "torchvision_deform_conv2d",
    "translate",
    "warp",
]
