"""What the CLI prints (issue 12): a few human lines by default, one JSON line with
``--json``, progress on stderr unless ``--quiet``, one-line errors without secrets."""

from __future__ import annotations

import json
import logging

import pytest

from xfusion_stream.cli import _demo, _inference, _replay, main
from xfusion_stream.cli._logging import command_handler

SIM = ["--frames", "24", "--shimadzu-shape", "16", "24", "--phantom-every", "4"]


def _demo_result(out) -> dict:
    stamps = [f"2024-01-01T00:00:{i:02d}.{i:06d}" for i in range(60)]
    return {
        "out": str(out),
        "simulated": {"timestamps": stamps * 3},  # ~3 KB, the old first line
        "calibration": {"uid": "cal1", "rotation_error_deg": 0.01, "scale_error_pct": 0.02},
        "raw_uid": "raw1",
        "fused_uid": "fused1",
        "frames_fused": 44,
        "gaps": 0,
        "exit_status": "success",
        "shimadzu_residual": 1.04,
        "shimadzu_residual_p99": 3.2,
        "metrics_vs_truth": {"psnr_fused": 31.234, "psnr_bicubic": 28.1, "psnr_nearest": 25.0},
        "montage_png": str(out / "fused" / "montage.png"),
        "gif": str(out / "fused" / "fused.gif"),
        "received_by_remote_dispatcher": {"runs": [{"events": {"fused": 44}}]},
        "tiled": {"uri": "http://127.0.0.1:1234", "fused_in_tiled": 44},
        "seconds": 12.5,
        "errors": [],
    }


def test_a_human_summary_by_default_and_one_json_line_with_json(tmp_path, monkeypatch, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    monkeypatch.setattr(_demo, "run", lambda args: _demo_result(out))
    assert main(["demo"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == "xfusion demo: done" and 4 <= len(lines) <= 15
    assert max(len(line) for line in lines) < 160 and "2024-01-01" not in text
    assert f"summary: {out / 'summary.json'}" in text  # where the summary is
    assert "fused 44 frames" in text and "PSNR vs truth: fused 31.23" in text
    assert "montage.png" in text and str(out) in text
    assert main(["demo", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()  # exactly one line on stdout
    assert json.loads(line) == {"ok": True, **_demo_result(out)}


def test_inference_summary_names_each_case_and_its_summary_json(tmp_path, monkeypatch, capsys):
    case_dir = tmp_path / "o" / "c1"
    case_dir.mkdir(parents=True)
    (case_dir / "summary.json").write_text("{}")
    case = {"case": "c1", "ok": True, "frames_fused": 7, "exit_status": "success"}
    case.update(out_dir=str(case_dir), mean={"psnr": 30.0, "psnr_bicubic": 27.0})
    monkeypatch.setattr(_inference, "_actual_cases", lambda *a: [case])
    monkeypatch.setattr("xfusion_stream.fusion.load_fusion_model", lambda *a, **k: _Model())
    assert main(["inference", "--data_type", "actual", "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "c1: fused 7 frames" in text and f"summary: {case_dir / 'summary.json'}" in text
    assert "PSNR vs truth: fused 30, bicubic 27 dB" in text


class _Model:
    def metadata(self) -> dict:
        return {"name": "tiny"}


def test_progress_goes_to_stderr_with_json_and_quiet_silences_it(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "a"), "--json", *SIM]) == 0
    captured = capsys.readouterr()
    (line,) = captured.out.splitlines()
    assert json.loads(line)["ok"] is True
    assert "frame/s" in captured.err or "frame]" in captured.err  # tqdm bars, on stderr
    assert main(["simulate", "--out", str(tmp_path / "b"), "--json", "--quiet", *SIM]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and captured.err == ""


def test_an_unreachable_tiled_is_one_line_without_the_key(tmp_path, capsys):
    uri = "http://127.0.0.1:9/api/v1?api_key=sekrit123"
    argv = ["replay", "--tiled-uri", uri, "--uid", "x", "--calibration", str(tmp_path / "c")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert "api_key=***: cannot connect to 127.0.0.1:9: " in line
    assert "sekrit123" not in captured.err + captured.out and "Traceback" not in captured.err
    assert main([*argv, "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and "sekrit123" not in result["error"]


def test_a_connection_error_anywhere_is_one_masked_line(monkeypatch, capsys):
    def refuse(args):
        raise ConnectionRefusedError("http://h:1/?api_key=abc987 refused\n  more")

    monkeypatch.setattr(_replay, "run", refuse)
    assert main(["replay", "--tiled-uri", "http://h:1", "--uid", "u"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "cannot connect" in line and "abc987" not in line and "api_key=***" in line


@pytest.mark.parametrize("message", ["xfusion serve: raw from %s", "raw from %s"])
def test_serve_log_lines_have_one_prefix_no_key_and_no_colour(message, tmp_path):
    log_file = tmp_path / "serve.log"
    with log_file.open("w") as stream:
        handler = command_handler("serve", stream)
        logger = logging.getLogger("xfusion_stream.test_cli_output")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            logger.info(message, "http://127.0.0.1:5/api/v1?api_key=topsecret")
        finally:
            logger.removeHandler(handler)
    text = log_file.read_text()
    assert text.count("xfusion serve:") == 1 and "raw from http://127.0.0.1:5" in text
    assert "topsecret" not in text and "\x1b[" not in text


def test_the_embedded_tiled_log_files_have_no_key_and_no_colour(tmp_path):
    from xfusion_stream.publishing import EmbeddedTiled

    with EmbeddedTiled(tmp_path / "tiled") as tiled:
        list(tiled.client())
        key = tiled.api_key
    logs = "".join(p.read_text() for p in (tmp_path / "tiled").glob("*.log"))
    assert "GET /api/v1?api_key=***" in logs  # the request is logged, the key is not
    assert key not in logs and "\x1b[" not in logs


def test_mask_secrets_keeps_the_text_around_the_key():
    from xfusion_stream.core import mask_secrets

    assert mask_secrets("http://h:1/api/v1?api_key=ab12&x=1") == "http://h:1/api/v1?api_key=***&x=1"
    assert mask_secrets('{"api_key": "ab12", "n": 1}') == '{"api_key": "***", "n": 1}'
    assert mask_secrets("GET /api/v1?API_KEY=ab12 HTTP/1.1") == "GET /api/v1?API_KEY=*** HTTP/1.1"


@pytest.mark.parametrize("flag", [None, "--quiet", "--no-progress"])
def test_the_training_set_builder_has_the_one_progress_switch(tmp_path, capsys, flag):
    from xfusion_stream.simulation.training_set import main as build

    argv = ["--out", str(tmp_path), "--seed", "9", "--clips", "1", "--val-clips", "0"]
    argv += ["--frames", "3", "--shape", "8", "8"] + ([flag] if flag else [])
    assert build(argv) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["spec"]["clips"] == 1  # the result, on stdout
    assert ("clips" in captured.err) is (flag is None)  # the bar, on stderr unless quiet


def test_progress_bars_draw_on_the_given_stream_and_enabled_false_silences_them():
    import io

    from xfusion_stream.app import AcquisitionProgress, FusionProgress

    start = {"uid": "r1", "num_points": 3, "plan_name": "dual_camera_burst"}
    start.update(n_frames={"phantom": 1, "shimadzu": 2}, phantom_every=20)
    fused = [
        ("start", {"uid": "f1", "raw_uid": "r1", "traverse_mode": "continuous"}),
        ("descriptor", {"uid": "d2", "run_start": "f1", "name": "fused"}),
        *[("event", {"descriptor": "d2", "data": {"shimadzu_residual_rms": 1.5}})] * 2,
        ("stop", {"run_start": "f1", "exit_status": "success"}),
    ]
    for enabled in (True, False):
        stream = io.StringIO()
        acquired = AcquisitionProgress(enabled=enabled, file=stream)
        for name, doc in [("start", start), ("descriptor", {"uid": "d1", "run_start": "r1"})]:
            acquired(name, doc)
        for _ in range(3):
            acquired("event", {"descriptor": "d1"})
        acquired("stop", {"run_start": "r1"})
        bars = FusionProgress(acquired.raw_start, enabled=enabled, file=stream)
        for name, doc in fused:
            bars(name, doc)
        text = stream.getvalue()
        if not enabled:
            assert text == ""
            continue
        assert "acquired (dual_camera_burst)" in text and "3/3" in text
        assert "fused" in text and "2/2" in text and "frame/s" in text  # total from raw start
        assert "residual=1.50" in text


def test_serve_and_listen_summaries_count_the_frames():
    from xfusion_stream.cli._summary import summary_lines

    run = {"raw_uid": "raw1", "frames": 64, "exit_status": "success"}
    serve = "\n".join(summary_lines("serve", {"ok": True, "runs": [run]}))
    assert "raw1: fused 64 frames (exit status success)" in serve
    fused = {"uid": "f1", "frames": 64, "exit_status": "success", "shimadzu_residual": 1.001}
    listen = summary_lines("listen", {"ok": True, "address": "tcp://h:1", "runs": [fused]})
    assert listen[1:] == [
        "  fused runs received: 1 at tcp://h:1",
        "  f1: 64 frames (success), shimadzu_residual 1.001",
    ]
