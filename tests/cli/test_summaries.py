"""Issue 12: every command's default output is a few human lines naming what it made,
where, and its headline numbers (``--json`` keeps every key).

Each test runs the command through ``main`` without ``--json``, for real wherever that
takes seconds (training a fusion model is replaced by its result), and checks that the
lines name the products.
"""

from __future__ import annotations

import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from xfusion_stream.cli import main
from xfusion_stream.cli._main import COMMANDS
from xfusion_stream.cli._summary import SUMMARIES, summary_lines

SIM = ["--frames", "24", "--shimadzu-shape", "16", "24", "--phantom-every", "4"]


def _human(capsys, argv: list[str], code: int = 0) -> list[str]:
    assert main(argv) == code, capsys.readouterr().err[-2000:]
    lines = capsys.readouterr().out.splitlines()
    assert lines and lines[0].startswith(f"xfusion {argv[0]}: ")
    assert all(len(line) < 200 for line in lines) and len(lines) <= 25
    return lines


def _text(lines: list[str]) -> str:
    return "\n".join(lines)


def test_every_command_has_a_summary_of_its_own():
    """No command falls back to the generic key: value dump."""
    missing = sorted(set(COMMANDS) - set(SUMMARIES))
    assert missing == []


def test_view_and_reprocess_say_what_they_did(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = _human(capsys, ["view", "--profile", "sim", "--port", "0", "--timeout", "0.3"])
    text = _text(lines)
    assert lines[0] == "xfusion view: done" and "fed from tcp://127.0.0.1:5578" in text
    assert "0 fused frames of 0 runs shown" in text
    failed = {"raw_uid": "r2", "problem": "nothing was fused", "attempts": 2}
    report = {"ok": False, "runs": 2, "runs_fused": 1, "runs_skipped": 0, "runs_failed": 1}
    report |= {"frames_fused": 8, "workers": 2, "seconds": 3.5, "failed": [failed]}
    ranges = [[0, 3, "tcp://a"], [4, 7, "tcp://b"]]
    report |= {"fused": [{"raw_uid": "r1", "fused_uid": "f1", "frames_fused": 8}]}
    report["fused"][0]["window_ranges"] = ranges
    text = _text(summary_lines("reprocess", report))
    assert "1 fused, 0 skipped" in text and "8 frames on 2 workers" in text
    assert "split: 2 window ranges on 2 workers" in text
    assert "fused r1 -> f1" in text and "failed r2: nothing was fused" in text


def test_init_names_the_file_it_wrote(tmp_path, capsys):
    lines = _human(capsys, ["init", "--home", str(tmp_path), "--model_type", "SwinIRModel"])
    text = _text(lines)
    assert lines[0] == "xfusion init: done"
    assert f"wrote {tmp_path / 'xfusion.conf'}" in text and "SwinIRModel" in text


def test_convert_names_the_gray_clips_and_meta_info(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for clip in ("000", "001"):
        (tmp_path / "rgb" / clip).mkdir(parents=True)
        for k in range(2):
            image = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
            cv2.imwrite(str(tmp_path / "rgb" / clip / f"{k:08d}.png"), image)
    argv = ["convert", "--quiet", "--dir-lo-convert", str(tmp_path / "rgb")]
    text = _text(_human(capsys, [*argv, "--out-dir-lo", str(tmp_path / "lo")]))
    assert f"gray LR clips: 2 clips, 4 frames in {tmp_path / 'lo'}" in text
    assert f"meta info: {tmp_path / 'lo_meta_info.txt'}" in text


def test_train_names_the_weights_scores_and_run_folder(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"

    def fake_train(opt, data, out_dir, **kw):  # the loop itself is tests/training's
        (Path(out_dir) / "checkpoints").mkdir(parents=True)
        for name in ("metrics.csv", "training.png", "checkpoints/latest.pth", "m.pth"):
            (Path(out_dir) / name).write_text("x")
        weights = str(Path(out_dir) / "m.pth")
        return {"iters": 20, "resumed_from": 10, "weights": weights, "val_psnr": 31.25}

    monkeypatch.setattr("xfusion_models.training.train", fake_train)
    monkeypatch.setattr("xfusion_models.training.load_options", lambda path: _Options())
    argv = ["train", "--quiet", "--out", str(out)]
    for flag in ("--dir-lo-train", "--dir-hi-train", "--dir-lo-val", "--dir-hi-val", "--opt"):
        argv += [flag, str(tmp_path)]
    argv += ["--path-train-meta-info-file", "m", "--path-val-meta-info-file", "m"]
    text = _text(_human(capsys, argv))
    assert f"weights: {out / 'm.pth'}" in text and "20 iterations (resumed from 10)" in text
    assert "last validation: PSNR 31.25 dB" in text
    assert f"in {out}: metrics.csv, training.png, checkpoints/latest.pth" in text


class _Options:
    seed = 0

    class train:  # noqa: N801 - the attribute the command sets
        iters = 0


def test_train_calibration_names_its_checkpoint_and_losses(tmp_path, capsys):
    import torch
    from skimage import data

    torch.set_num_threads(1)
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "camera.png"), data.camera()[::4, ::4])
    out = tmp_path / "flow.pth"
    argv = ["train_calibration", "--quiet", "--image_root", str(tmp_path / "images")]
    argv += ["--iters", "1", "--batch-size", "1", "--crop", "32", "--out", str(out)]
    text = _text(_human(capsys, argv))
    assert f"checkpoint: {out}" in text and "1 iterations on 1 images" in text
    assert "loss: first" in text and "loss terms: flow error only" in text


def test_download_names_the_archive_and_what_it_unpacked(tmp_path, capsys):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("case/a.txt", "a" * 1000)
        zf.writestr("case/b.txt", "b")
    body = buf.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/data.zip"
        argv = ["download", "--quiet", "--dir-inf", url, "--out-dir-inf", str(tmp_path)]
        text = _text(_human(capsys, argv))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert f"archive: {tmp_path / 'data.zip'}" in text and "sha256" in text
    assert f"unpacked 2 files into {tmp_path}" in text


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """A simulated experiment big enough to calibrate (made once for this module)."""
    out = tmp_path_factory.mktemp("simulated")
    assert main(["simulate", "--out", str(out), "--frames", "24", "--quiet", "--json"]) == 0
    return out


def test_simulate_names_the_cases_and_the_truth(tmp_path, capsys):
    text = _text(_human(capsys, ["simulate", "--quiet", "--out", str(tmp_path), *SIM]))
    assert f"out: {tmp_path}" in text and "24 Shimadzu frames (16x24 px)" in text
    for product in ("sim_experiment", "sim_calibration_grid", "truth.json", "preview.png"):
        assert product in text


def test_calibrate_names_the_record_the_overlay_and_the_fit(simulated, capsys):
    argv = ["calibrate", "--quiet", "--cal_dir", str(simulated), "--cal_id"]
    text = _text(_human(capsys, [*argv, "sim_calibration_grid"]))
    case = simulated / "sim_calibration_grid"
    assert f"record: {case / 'calibration.json'}" in text
    assert f"overlay png: {case / 'calibration.png'}" in text
    assert "rotation_deg" in text and "n_pairs" in text and "residual_mean_px" in text


def _spooled_run(folder: Path) -> str:
    from event_model import compose_run

    from xfusion_stream.publishing import Spool

    bundle = compose_run(metadata={"purpose": "fused"})
    desc = bundle.compose_descriptor(
        name="fused", data_keys={"x": {"dtype": "number", "shape": [], "source": "t"}}
    )
    spool = Spool(folder)
    uid = bundle.start_doc["uid"]
    spool.append(uid, "start", bundle.start_doc)
    spool.append(uid, "descriptor", desc.descriptor_doc)
    spool.append(uid, "event", desc.compose_event(data={"x": 1.0}, timestamps={"x": 0.0}))
    spool.append(uid, "stop", bundle.compose_stop())
    spool.close()
    return uid


def test_spool_names_the_folder_and_what_went_into_tiled(tiled_server, tmp_path, capsys):
    uid = _spooled_run(tmp_path)
    text = _text(_human(capsys, ["spool", "--spool-dir", str(tmp_path), "--list"]))
    assert f"spool {tmp_path}: 1 files waiting" in text and uid in text
    argv = ["spool", "--spool-dir", str(tmp_path), "--tiled-uri", tiled_server.uri]
    lines = _human(capsys, argv)
    text = _text(lines)
    assert lines[0] == "xfusion spool: done"
    assert f"re-ingested 1 fused runs (4 documents) from {tmp_path} into Tiled" in text
    assert "left in the spool: 0" in text and tiled_server.api_key not in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ioc_names_its_pvs_and_data_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EPICS_CA_AUTO_ADDR_LIST", "NO")
    monkeypatch.setenv("EPICS_CA_ADDR_LIST", "127.0.0.1")
    monkeypatch.setenv("EPICS_CA_SERVER_PORT", str(_free_port()))
    monkeypatch.setenv("EPICS_CA_REPEATER_PORT", str(_free_port()))
    argv = ["ioc", "--data-dir", str(tmp_path), "--exit-after", "0.5", "--frames", "24"]
    text = _text(_human(capsys, argv))
    assert "PVs (phantom XF:SIM:PH:, shimadzu XF:SIM:HPV:, beam XF:SIM:BEAM:) on 127.0.0.1" in text
    assert f"HDF5 files written under {tmp_path.resolve()}" in text


def test_bench_scripts_give_a_line_of_figures_each(tmp_path, capsys):
    script = "import json; print(json.dumps({'runs_in': 4, 'frames_lost': 0, 'rss_mb': 812.5}))"
    (tmp_path / "tiny.py").write_text(script)
    text = _text(_human(capsys, ["bench", "--dir", str(tmp_path), "--list"]))
    assert "benchmarks: tiny" in text
    text = _text(_human(capsys, ["bench", "--dir", str(tmp_path), "tiny"]))
    assert "tiny: runs_in 4, frames_lost 0, rss_mb 812" in text


def test_bench_refuses_a_partial_file_in_a_missing_folder_before_measuring(tmp_path, capsys):
    target = tmp_path / "nowhere" / "bench_partial.json"
    assert main(["bench", "--json", "--partial", str(target)]) == 2
    assert "--partial" in capsys.readouterr().out and not target.parent.exists()


def test_bench_ratios_and_serve_with_a_tiled_outage_read_as_lines():
    """The two long-running commands' summaries, from results of the shape they return
    (their runs are tests/bench and tests/zmq's)."""
    serve = {
        "ok": False,
        "runs": [
            {"raw_uid": "raw1", "fused_uid": "f1", "frames": 10, "exit_status": "success",
             "ok": False, "problem": "Tiled: fused run f1 not delivered within 2 s; kept in the spool"},
        ],
        "delivery": {"spool": {"directory": "/s", "documents_spooled": 14, "runs_reingested": 0}},
        "spool_waiting": ["f1"],
        "fusion_processes": {"processes": 2, "pids": [11, 12], "replaced": 1, "windows_redone": 1},
    }  # fmt: skip
    text = _text(summary_lines("serve", serve))
    assert "fusion processes: 2 (pids 11, 12); replaced after dying: 1" in text
    assert "raw1: fused 10 frames (exit status success)" in text
    assert "not ok: Tiled: fused run f1 not delivered within 2 s" in text
    assert "spool /s: 14 documents spooled, 0 runs re-ingested" in text
    assert "1 fused runs wait in the spool for Tiled" in text and "f1" in text
    shipped = {"cases": {"raw_400x250_uint16": {"shipped": {"fps": 325.0}}}}
    bench = {"targets_met": {"persistence": True}, "persistence": shipped}
    text = _text(summary_lines("bench", bench))
    assert "persistence (raw frames/s, HDF5 + documents to Tiled): 325" in text
    assert "325 (meets its target)" in text
    bench["scaling"] = {
        "pixel_exponent": 0.97, "length_exponent": 1.3,
        "by_pixels": [{"shimadzu_shape": [64, 96], "s_per_frame": 0.25}],
        "by_burst_length": [{"frames": 256, "s_per_frame": 0.071}],
    }  # fmt: skip
    bench["full_burst"] = {
        "frames": 256, "shimadzu_shape": [250, 400],
        "models": {"edvr_stf_paper": {"burst_s": 4.2, "frames_per_s": 61.0, "cpu_side_share": 0.3}},
    }  # fmt: skip
    bench["heap"] = {"refaulted_blocks_per_block": {"main_default": 1.0, "main_retained": 0.0}}
    text = _text(summary_lines("bench", bench))
    assert "burst length 1.3 (misses its target)" in text and "256 frames: 0.071 s/frame" in text
    assert "edvr_stf_paper: 4.2 s, 61 frames/s, CPU-side share 0.3" in text
    assert "main_default 1.0, main_retained 0.0" in text


def test_summaries_survive_missing_keys():
    """A result with only ``ok`` (a command that changed its keys) still prints."""
    for command in SUMMARIES:
        lines = summary_lines(command, {"ok": True})
        assert lines[0] == f"xfusion {command}: done"
