"""Shared fixtures: tiny scene-engine clip sets rendered once per session."""

from __future__ import annotations

import pytest

from xfusion_stream.training_set import TrainingSetSpec, build_training_set


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    """2 training + 1 validation clip of 12 frames, Shimadzu 16x16 (HR 64x64)."""
    root = tmp_path_factory.mktemp("tiny_set")
    spec = TrainingSetSpec(seed=5, clips=2, val_clips=1, frames=12, shimadzu_shape=(16, 16))
    build_training_set(root, spec, progress=False)
    return root
