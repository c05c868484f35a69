"""The default model the project ships: registered, intact, and better than bicubic."""

import numpy as np
import pytest
import torch

import xfusion_models
from xfusion_models.training import score_windows, scoring_windows, summarise
from xfusion_stream.simulation.training_set import TrainingSetSpec, clip_seed, render_clip

TEST_BASE_SEED = 11  # held out: the shipped model's training set used another base seed


@pytest.fixture(scope="module")
def shipped():
    entry = xfusion_models.default_weights()
    assert entry is not None, "no weights entry is marked default"
    return entry


def test_default_entry_is_the_small_edvr_stf_with_its_recipe(shipped):
    assert shipped.arch == "edvr_stf" and shipped.preset == "small"
    assert shipped.path.stat().st_size < 8 * 2**20
    assert shipped.recipe["training_set"]["seed"] != TEST_BASE_SEED
    assert "xfusion train" in " ".join(shipped.recipe["commands"])
    assert shipped.metrics["continuous"]["model"]["psnr"] > 0


def test_shipped_weights_verify_sha256_and_reject_tampering(shipped, tmp_path):
    model = xfusion_models.edvr_stf(weights=shipped.name)
    assert model.config == shipped.config
    damaged = tmp_path / "damaged.pth"
    data = bytearray(shipped.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(xfusion_models.CheckpointError, match="sha256"):
        xfusion_models.load_checkpoint(model, damaged, sha256=shipped.sha256)


def test_shipped_model_meets_the_quality_targets_on_a_held_out_clip(shipped):
    torch.set_num_threads(2)
    model = xfusion_models.build_model(shipped.name)
    spec = TrainingSetSpec(
        seed=TEST_BASE_SEED, clips=1, val_clips=0, frames=21, shimadzu_shape=(64, 64),
        motion_px=(4.0, 4.0), feature_px=(8.0, 8.0),
    )  # fmt: skip
    seed = clip_seed(TEST_BASE_SEED, 0)
    hr, lr = render_clip(spec, seed)
    windows = scoring_windows(hr, lr, 20, layout="continuous", photons=1000.0, seed=seed, stride=6)
    result = summarise(score_windows(model, windows))
    assert result["n_frames"] == 4
    # issue 3's targets: >= +3 dB over bicubic and >= +1 dB over the nearest Phantom frame
    # (v4 measured +17.6 / +11.6 dB on this clip; the v1-v3 models missed the second)
    assert result["gain_db"]["vs_bicubic"] >= 3.0
    assert result["gain_db"]["vs_nearest_phantom"] >= 1.0
    assert np.isfinite(result["model"]["ssim"])
