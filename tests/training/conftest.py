"""Shared fixtures: tiny scene-engine clip sets rendered once per session."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from xfusion_models.data import ClipEntry, write_frame, write_meta_info
from xfusion_stream.simulation.training_set import TrainingSetSpec, build_training_set


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    """2 training + 1 validation clip of 12 frames, Shimadzu 16x16 (HR 64x64)."""
    root = tmp_path_factory.mktemp("tiny_set")
    spec = TrainingSetSpec(seed=5, clips=2, val_clips=1, frames=12, shimadzu_shape=(16, 16))
    build_training_set(root, spec, progress=False)
    return root


@pytest.fixture
def actual_tree(tmp_path):
    """Paired Phantom/Shimadzu folders, the full Shimadzu run and the index map CSV."""
    root = tmp_path
    rng = np.random.default_rng(0)
    ctx = rng.random((10, 8, 8)).astype(np.float32)
    pairs = [(0, 1), (1, 4), (2, 7), (3, 9)]
    for sub in ("hr", "lr", "ctx"):
        (root / sub / "run1").mkdir(parents=True)
    for i, (hr_i, lr_i) in enumerate(pairs):
        write_frame(root / "hr" / "run1" / f"{hr_i:08d}.png", np.full((32, 32), 0.1 * (i + 1)))
        write_frame(root / "lr" / "run1" / f"{hr_i:08d}.png", ctx[lr_i])
    for k, frame in enumerate(ctx):
        write_frame(root / "ctx" / "run1" / f"{k:08d}.png", frame)
    with (root / "map.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["clip", "hr_index", "lr_index"])
        writer.writerows([["run1", h, lr] for h, lr in pairs])
    write_meta_info(root / "meta.txt", [ClipEntry("run1", 4, (32, 32, 1))])
    return root
