"""The live fusion callback on a virtual experiment: counts, truth, finite metrics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from xfusion_plans import virtual_experiment

from xfusion_models.metrics import psnr
from xfusion_stream.app import identity_calibration
from xfusion_stream.calibration import pairing_table
from xfusion_stream.devices import VirtualOptions, VirtualSequence, virtual_cameras
from xfusion_stream.fusion import FusionConfig, FusionModel, fusion_router


@pytest.fixture(scope="module")
def tiny_model() -> FusionModel:
    import xfusion_models as xm

    torch.set_num_threads(1)  # two cores shared by the suite
    torch.manual_seed(0)
    return FusionModel(
        net=xm.edvr_stf("tiny").eval(),
        name="edvr_stf_tiny_seed0",
        arch="edvr_stf",
        sha256="0" * 64,
        device=torch.device("cpu"),
    )


@pytest.mark.parametrize("mode", ["continuous", "double"])
def test_fused_run_of_a_virtual_experiment(RE, collector, hr_stack, tiny_model, mode):
    seq = VirtualSequence(hr_stack, VirtualOptions(photons=None))
    record = identity_calibration(seq.lr_shape, seq.hr_shape)
    fused, callbacks = collector(), []
    RE.subscribe(
        fusion_router(
            tiny_model,
            record,
            [fused],
            FusionConfig(traverse_mode=mode),
            on_callback=callbacks.append,
        )
    )
    (uid,) = RE(virtual_experiment(*virtual_cameras(seq, inline=True)))
    (cb,) = callbacks
    assert cb.join(120), "fusion did not finish"
    (stop,) = fused.of("stop")
    assert stop["exit_status"] == "success", stop.get("reason")
    assert fused.of("start")[0]["raw_uid"] == uid
    table = pairing_table(seq.phantom_timing(), seq.shimadzu_timing(), mode)
    events = fused.events("fused")
    assert len(events) == len(table) >= 1
    for e in events:
        image = e["data"]["fused_image"]
        assert image.shape == (64, 96) and np.isfinite(image).all()
    if mode == "continuous":
        return
    (event,) = events
    data = event["data"]
    assert data["shimadzu_index"] == 20 and data["truth_index"] == 1
    for key in ("psnr", "ssim", "aad", "psnr_bicubic", "psnr_nearest"):
        assert np.isfinite(data[key]), key
    # the callback scored against the held-out Phantom frame = the sequence's truth
    truth = seq.ground_truth(20).astype(np.float32) / 65535
    lr = seq.shimadzu_frame(20).astype(np.float32) / 65535
    bicubic = np.clip(cv2.resize(lr, (96, 64), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert data["psnr_bicubic"] == pytest.approx(float(psnr(bicubic, truth)), abs=1e-4)
    assert data["psnr_bicubic"] > 20.0
