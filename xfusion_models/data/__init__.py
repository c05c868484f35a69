"""Training data: clip folders, degradations, virtual and actual dual-camera samples."""

from ._actual import ActualPairDataset, read_index_map
from ._clips import (
    FRAME_PATTERN,
    ClipEntry,
    frame_paths,
    read_frame,
    read_meta_info,
    write_frame,
    write_meta_info,
)
from ._convert import convert_to_gray
from ._degradations import augment, poisson_noise, random_crop
from ._virtual import SamplingConfig, VirtualClipDataset, bracket_context

__all__ = [
    "ActualPairDataset",
    "ClipEntry",
    "FRAME_PATTERN",
    "SamplingConfig",
    "VirtualClipDataset",
    "augment",
    "bracket_context",
    "convert_to_gray",
    "frame_paths",
    "poisson_noise",
    "random_crop",
    "read_frame",
    "read_index_map",
    "read_meta_info",
    "write_frame",
    "write_meta_info",
]
