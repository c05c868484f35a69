"""``ok`` and exit codes tell the truth: a fused run that failed or fused nothing is not ok."""

from __future__ import annotations

import json

import pytest
import torch

from xfusion_stream.calibration import CalibrationRecord
from xfusion_stream.cli import _inference as inference_cli
from xfusion_stream.cli import main
from xfusion_stream.core import InterCameraTransform
from xfusion_stream.fusion import FusedRunComposer, FusionModel
from xfusion_stream.publishing import make_tiled_writer


@pytest.fixture
def model(monkeypatch) -> FusionModel:
    import xfusion_models as xm
    import xfusion_stream.fusion as fusion

    torch.manual_seed(0)
    tiny = FusionModel(
        net=xm.edvr_stf("tiny").eval(),
        name="tiny",
        arch="edvr_stf",
        sha256="0" * 64,
        device=torch.device("cpu"),
    )
    monkeypatch.setattr(fusion, "load_fusion_model", lambda *a, **kw: tiny)
    return tiny


@pytest.fixture
def record(tmp_path):
    cal = CalibrationRecord.from_transform(InterCameraTransform(), (16, 24), (64, 96))
    return cal.save(tmp_path / "cal.json")


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _replay(tiled_server, uid, record) -> list[str]:
    args = ["replay", "--tiled-uri", tiled_server.uri, "--uid", uid]
    return args + ["--calibration", str(record), "--timeout", "30", "--json"]


def test_replay_of_a_run_without_cameras_is_not_ok(
    RE, tiled_server, tiled_client, model, record, capsys
):
    from bluesky.plans import count
    from ophyd.sim import det

    RE.subscribe(make_tiled_writer(tiled_client))
    (uid,) = RE(count([det], num=2))
    assert main(_replay(tiled_server, uid, record)) == 1
    out = _last_json(capsys)
    assert out["ok"] is False and out["frames_fused"] == 0
    assert "nothing was fused" in out["error"] and uid in out["error"]
    assert out["raw_uid"] == uid and "exit_status" in out  # existing keys kept


def test_replay_of_a_fused_run_is_not_ok(tiled_server, tiled_client, model, record, capsys):
    composer = FusedRunComposer(
        [make_tiled_writer(tiled_client)], {"purpose": "fused", "raw_uid": "r1"}
    )
    composer.start((64, 96), "fused")
    composer.stop("success", "")
    assert main(_replay(tiled_server, composer.uid, record)) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["ok"] is False and out["frames_fused"] == 0 and composer.uid in out["error"]
    assert "itself a fused run (of raw run r1)" in out["error"]
    assert "xfusion replay: failed:" in captured.err


def test_inference_with_a_failed_case_is_not_ok(tmp_path, model, monkeypatch, capsys):
    cases = [
        {"case": "good", "ok": True, "problem": None, "frames_fused": 3},
        {
            "case": "bad",
            "ok": False,
            "problem": "fused run ended with fail: NaN",
            "frames_fused": 0,
        },
    ]
    monkeypatch.setattr(inference_cli, "_actual_cases", lambda *a: cases)
    argv = ["inference", "--data_type", "actual", "--out", str(tmp_path / "o"), "--json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["ok"] is False and out["error"] == "bad: fused run ended with fail: NaN"
    assert out["cases"] == cases
    assert "bad: fused run ended with fail" in captured.err
    monkeypatch.setattr(inference_cli, "_actual_cases", lambda *a: cases[:1])
    assert main(argv) == 0 and _last_json(capsys)["ok"] is True


def test_a_result_that_is_not_ok_exits_non_zero_in_text_mode_too(monkeypatch, capsys):
    from xfusion_stream.cli import _init

    monkeypatch.setattr(_init, "run", lambda args: {"ok": False, "error": "nope"})
    assert main(["init"]) == 1
    captured = capsys.readouterr()
    assert "xfusion init: failed" in captured.out and "nope" in captured.err
    monkeypatch.setattr(_init, "run", lambda args: {"value": 1})
    assert main(["init"]) == 0
