"""The scene engine and what it renders: simulated cases, G400 grids, training clips."""

from ._ad_file import AD_ATTRIBUTES_GROUP, AD_FRAMES_DATASET, ADFileWriter
from ._camera_models import render_phantom, render_shimadzu, to_counts
from ._fast_events import (
    FAST_EVENT_PRESETS,
    FAST_EVENTS_HELP,
    FastEvents,
    fast_events_argument,
    parse_fast_events,
)
from ._g400 import G400_PITCH_UM, g400_grid_image
from ._ioc import (
    BEAM_TARGETS,
    BeamTargetIOC,
    CameraIOC,
    camera_iocs,
    parse_ndattributes,
)
from ._ioc_camera import CAMERA_IDENTITIES, FRAME_PARAMS, SceneCamera
from ._ioc_server import serve_pvdb
from ._scene import Scene, SceneConfig, default_transform, grid_scene_config
from ._simulation_cases import TRUTH_FORMAT, read_event_masks, write_simulation

__all__ = [
    "AD_ATTRIBUTES_GROUP",
    "AD_FRAMES_DATASET",
    "ADFileWriter",
    "CAMERA_IDENTITIES",
    "BEAM_TARGETS",
    "BeamTargetIOC",
    "CameraIOC",
    "grid_scene_config",
    "camera_iocs",
    "FRAME_PARAMS",
    "parse_ndattributes",
    "SceneCamera",
    "serve_pvdb",
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
