"""Devices room: scene engine, camera models, simulated and recorded cameras."""

from ._camera_models import render_phantom, render_shimadzu, to_counts

__all__ = ["render_phantom", "render_shimadzu", "to_counts"]
