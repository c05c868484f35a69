"""Devices room: scene engine, camera models, simulated and recorded cameras."""

from ._camera_models import render_phantom, render_shimadzu, to_counts
from ._g400 import G400_PITCH_UM, g400_grid_image
from ._scene import Scene, SceneConfig, default_transform

__all__ = ["render_phantom", "render_shimadzu", "to_counts"]
__all__ += ["Scene", "SceneConfig", "default_transform", "g400_grid_image", "G400_PITCH_UM"]
