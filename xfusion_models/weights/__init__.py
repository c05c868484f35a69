"""Weights registry and checkpoint I/O (safe loading, sha256, original BasicSR files)."""

from ._checkpoint import (
    CheckpointError,
    file_sha256,
    load_checkpoint,
    load_original_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from ._registry import WEIGHTS_DIR, WeightsEntry, default_weights, get_weights, list_weights

__all__ = [
    "CheckpointError",
    "WEIGHTS_DIR",
    "WeightsEntry",
    "default_weights",
    "file_sha256",
    "get_weights",
    "list_weights",
    "load_checkpoint",
    "load_original_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]
