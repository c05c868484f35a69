"""`xfusion train_calibration`: a few iterations run, with and without the evaluator."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from xfusion_models.calibration import (
    CalibrationFlowNet,
    load_flow_weights,
    random_flow,
    warp,
)
from xfusion_stream.cli import main


@pytest.fixture
def image_root(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    cv2.imwrite(str(root / "camera.png"), data.camera()[::4, ::4])
    cv2.imwrite(str(root / "moon.png"), data.moon()[::4, ::4])
    (tmp_path / "meta.txt").write_text("camera.png 1 (128,128,1)\nmoon.png 1 (128,128,1)\n")
    return root


def test_warp_follows_the_flow_convention() -> None:
    image = torch.arange(48.0).reshape(1, 1, 6, 8)
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = warp(image, flow)
    torch.testing.assert_close(out[..., :-1], image[..., 1:])


def test_train_calibration_runs_and_saves(image_root, tmp_path, capsys) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "flow.pth"
    rc = main(
        ["train_calibration", "--image_root", str(image_root), "--meta_info_file",
         str(tmp_path / "meta.txt"), "--evaluator_weights", "None", "--flow_weights", "None",
         "--full_weights", "None", "--iters", "3", "--batch-size", "2", "--crop", "32",
         "--out", str(out), "--quiet", "--json"]
    )  # fmt: skip
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["iters"] == 3 and result["n_images"] == 2 and not result["evaluator"]
    assert np.isfinite(result["last_loss"]["flow"])
    net = CalibrationFlowNet()
    load_flow_weights(net, out)
    # resume from it (full weights) with the fusion model as evaluator
    from xfusion_models import edvr_stf, save_checkpoint

    save_checkpoint(edvr_stf("tiny"), tmp_path / "fusion.pth")
    rc = main(
        ["train_calibration", "--image_root", str(image_root), "--evaluator_weights",
         str(tmp_path / "fusion.pth"), "--full_weights", str(out), "--iters", "2",
         "--batch-size", "1", "--crop", "32", "--out", str(tmp_path / "flow2.pth"),
         "--quiet", "--json"]
    )  # fmt: skip
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["evaluator"] and "evaluator" in result["last_loss"]


def test_missing_images_are_a_clear_error(tmp_path, capsys) -> None:
    rc = main(["train_calibration", "--image_root", str(tmp_path), "--iters", "1"])
    assert rc == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_random_flow_is_smooth_and_bounded() -> None:
    flow = random_flow(2, (32, 32), 3.0, torch.Generator().manual_seed(0))
    assert flow.shape == (2, 2, 32, 32)
    assert flow.abs().max() <= 3.0 + 1e-5
    assert (flow[..., 1:] - flow[..., :-1]).abs().max() < 1.0  # no folding
