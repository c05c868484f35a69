"""Issue 5 acceptance: live, `xfusion replay` and `xfusion inference --data_type actual`
give bit-identical fused frames for the same data (same device and dtype)."""

from __future__ import annotations

import csv
import json

import numpy as np
import tifffile
import torch
from xfusion_plans import dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.calibration import record_to_documents
from xfusion_stream.cli import main
from xfusion_stream.fusion import FusionConfig, load_fusion_model
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.simulation import write_simulation
from xfusion_stream.testing import FUSION_SCENE as SCENE
from xfusion_stream.testing import DocumentLog as Collector
from xfusion_stream.testing import expected_table


def _tiffs(folder) -> dict[int, np.ndarray]:
    return {int(p.stem.split("_")[1]): tifffile.imread(p) for p in sorted(folder.glob("*.tif"))}


def test_live_replay_and_inference_are_bit_identical(
    RE, cameras, calibration, scene, tiled_server, tiled_client, tmp_path, capsys
):
    import xfusion_models as xm

    torch.manual_seed(1)
    checkpoint = tmp_path / "tiny.pth"
    # with the motion-compensated gate (as the shipped model): flow, the tau search and
    # the gate must be as deterministic as the network; random gate weights make it matter
    net = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4)
    with torch.no_grad():
        net.hr_warp.logits.weight.normal_(0, 0.5)
    xm.save_checkpoint(net, checkpoint)
    model = load_fusion_model(str(checkpoint))
    record = tmp_path / "calibration.json"
    calibration.save(record)
    write_simulation(tmp_path / "sim", SCENE, progress=False)

    # live
    live = Collector()
    RE.subscribe(make_tiled_writer(tiled_client))
    session = FusionSession(model, calibration, [live], FusionConfig())
    session.subscribe(RE)
    phantom, shimadzu = cameras()
    (uid,) = RE(dual_camera_burst(phantom, shimadzu))
    assert session.wait(120) is not None, "live fusion did not finish"
    live_frames = {e["data"]["shimadzu_index"]: e["data"]["fused_image"] for e in live.events()}
    assert len(live_frames) == len(expected_table(scene, "continuous").windows)

    # replay from Tiled, naming the calibration record stored there as a run by its uid
    store = make_tiled_writer(tiled_client)
    for name, doc in record_to_documents(calibration):
        store(name, doc)
    replay_args = ["--tiled-uri", tiled_server.uri, "--uid", uid, "--out", str(tmp_path / "replay")]
    replay_args += ["--calibration-uid", calibration.uid, "--model_file", str(checkpoint), "--json"]
    replay_args += ["--overlay", "residual"]  # tints products only, never the fused frames
    assert main(["replay", *replay_args]) == 0
    replay = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert replay["exit_status"] == "success" and replay["frames_fused"] == len(live_frames)
    live_rms = [e["data"]["shimadzu_residual_rms"] for e in live.events()]
    assert replay["shimadzu_residual"] == round(float(np.mean(live_rms)), 3)
    assert replay["products"]["shimadzu_residual"] == replay["shimadzu_residual"]
    assert replay["products"]["overlay"] == "residual" and replay["products"]["mp4"]
    assert tiled_client[replay["fused_uid"]].metadata["start"]["raw_uid"] == uid

    # offline inference of the recorded folder written from the same scene, its windows
    # fused in two processes (``--workers 2``, one torch thread each as here)
    common = ["--calibration", str(record), "--model_file", str(checkpoint), "--json"]
    common += ["--workers", "2"]
    assert (
        main(
            [
                "inference",
                "--data_type",
                "actual",
                "--input_dir",
                str(tmp_path / "sim"),
                "--case_list",
                "sim_experiment",
                "--traverse_mode",
                "continuous",
                "--out",
                str(tmp_path / "inference"),
                *common,
            ]
        )
        == 0
    )
    inference = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (case,) = inference["cases"]
    assert case["exit_status"] == "success" and case["frames_fused"] == len(live_frames)
    assert (
        case["shimadzu_residual"] == inference["shimadzu_residual"] == replay["shimadzu_residual"]
    )
    assert inference["shimadzu_residual_p99"] == case["shimadzu_residual_p99"] > 0

    for name in ("replay", "inference/sim_experiment"):
        frames = _tiffs(tmp_path / name / "frames")
        assert frames.keys() == live_frames.keys()
        for index, image in live_frames.items():
            np.testing.assert_array_equal(frames[index], image, err_msg=f"{name} frame {index}")
        with open(tmp_path / name / "metrics.csv", newline="") as fh:
            rms = [float(row["shimadzu_residual_rms"]) for row in csv.DictReader(fh)]
        assert rms == live_rms, name  # the residual is as bit-identical as the frames
