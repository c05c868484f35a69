"""Operators the fusion models need that plain ``torch.nn`` lacks."""

from ._deform_conv import ModulatedDeformConv2d, modulated_deform_conv2d, torchvision_deform_conv2d

__all__ = ["ModulatedDeformConv2d", "modulated_deform_conv2d", "torchvision_deform_conv2d"]
