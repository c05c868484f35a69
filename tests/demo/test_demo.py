"""`xfusion demo` end to end on a small scene (the README's first command, scaled down)."""

from __future__ import annotations

import csv
import json

import torch

from xfusion_stream.cli import main


def test_demo_runs_the_whole_beamline(tmp_path, capsys):
    import xfusion_models as xm

    torch.set_num_threads(1)
    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny.pth"
    xm.save_checkpoint(xm.edvr_stf("tiny"), checkpoint)
    rc = main(
        [
            "demo",
            "--out",
            str(tmp_path / "demo"),
            "--frames",
            "44",
            "--shimadzu-shape",
            "64",
            "96",
            "--model_file",
            str(checkpoint),
            "--overlay",
            "residual",
            "--json",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["exit_status"] == "success" and summary["frames_fused"] > 0
    # live calibration from the simulated grid run recovered the simulated geometry
    assert summary["calibration"]["rotation_error_deg"] < 0.05
    assert summary["calibration"]["scale_error_pct"] < 0.2
    assert summary["calibration"]["stored_in_tiled"]  # a fused run can name it by uid
    # an independent RemoteDispatcher process received every fused frame, linked to raw
    (run,) = summary["received_by_remote_dispatcher"]["runs"]
    assert run["raw_uid"] == summary["raw_uid"] and run["start_uid"] == summary["fused_uid"]
    assert run["events"]["fused"] == summary["frames_fused"]
    assert summary["tiled"]["fused_in_tiled"] == summary["frames_fused"]
    metrics = summary["metrics_vs_truth"]
    assert {"psnr_fused", "psnr_bicubic", "psnr_nearest"} <= metrics.keys()
    for key in ("montage_png", "gif", "metrics_csv"):
        assert (tmp_path / "demo" / "fused").exists() and summary[key]
    assert (tmp_path / "demo" / "summary.json").exists()
    # how far the fused frames are from the Shimadzu frames, in noise units
    assert summary["shimadzu_residual"] > 0 and summary["shimadzu_residual_p99"] > 0
    assert summary["overlay"] == "residual" and summary["mp4"] and summary["errors"] == []
    # the simulated truth reaches the products: every CSV row scored, named, plotted
    with open(summary["metrics_csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == summary["frames_fused"]
    for row in rows:
        assert row["truth_reference"].startswith("simulated scene at Shimadzu")
        assert all(row[k] != "" for k in ("psnr", "psnr_bicubic", "psnr_nearest", "ssim"))
    csv_mean = sum(float(r["psnr"]) for r in rows) / len(rows)
    assert abs(csv_mean - metrics["psnr_fused"]) < 1e-3
    assert summary["metrics_png"] and summary["fidelity_png"]


def test_a_second_demo_gets_its_own_folder(tmp_path):
    from xfusion_stream.cli._demo import default_out

    base = tmp_path / "xfusion-demo"
    assert default_out(base) == base
    base.mkdir()
    assert default_out(base) == base  # empty: usable
    (base / "summary.json").write_text("{}")
    assert default_out(base) == tmp_path / "xfusion-demo-2"
    (tmp_path / "xfusion-demo-2").mkdir()
    (tmp_path / "xfusion-demo-2" / "x").write_text("")
    assert default_out(base) == tmp_path / "xfusion-demo-3"
