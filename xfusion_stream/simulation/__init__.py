"""The scene engine and what it renders: simulated cases, G400 grids, training clips."""

from ._camera_models import render_phantom, render_shimadzu, to_counts
from ._fast_events import (
    FAST_EVENT_PRESETS,
    FAST_EVENTS_HELP,
    FastEvents,
    fast_events_argument,
    parse_fast_events,
)
from ._g400 import G400_PITCH_UM, g400_grid_image
from ._scene import Scene, SceneConfig, default_transform
from ._simulation_cases import TRUTH_FORMAT, read_event_masks, write_simulation

__all__ = [
    "default_transform",
    "FAST_EVENT_PRESETS",
    "FAST_EVENTS_HELP",
    "FastEvents",
    "fast_events_argument",
    "parse_fast_events",
    "read_event_masks",
    "g400_grid_image",
    "G400_PITCH_UM",
    "render_phantom",
    "render_shimadzu",
    "Scene",
    "SceneConfig",
    "to_counts",
    "TRUTH_FORMAT",
    "write_simulation",
]
