"""Devices room: scene engine, camera models, simulated and recorded cameras."""

from ._camera_models import render_phantom, render_shimadzu, to_counts
from ._g400 import G400_PITCH_UM, g400_grid_image
from ._scene import Scene, SceneConfig, default_transform
from ._simulation_cases import write_simulation

__all__ = ["render_phantom", "render_shimadzu", "to_counts"]
__all__ += ["Scene", "SceneConfig", "default_transform", "g400_grid_image", "G400_PITCH_UM"]
__all__ += ["write_simulation"]
