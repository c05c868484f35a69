"""Damaged inputs end in one line naming the file and the problem, never a traceback."""

from __future__ import annotations

import json

import pytest
import torch

from xfusion_stream.cli import main
from xfusion_stream.cli._main import _device_error
from xfusion_stream.core import RecordedFormatError


def _simulated_case(tmp_path):
    out = tmp_path / "case"
    args = ["simulate", "--out", str(out), "--shimadzu-shape", "32", "48", "--frames", "24"]
    assert main([*args, "--quiet", "--json"]) == 0
    return out


def _case_with_record(tmp_path, monkeypatch):
    """A simulated case, its calibration record, and the tiny model in place of the
    shipped one; XFUSION_DEBUG unset (no traceback)."""
    import xfusion_models as xm
    import xfusion_stream.fusion as fusion
    from xfusion_stream.calibration import CalibrationRecord
    from xfusion_stream.fusion import FusionModel

    monkeypatch.delenv("XFUSION_DEBUG", raising=False)
    torch.manual_seed(0)
    tiny = FusionModel(
        xm.edvr_stf("tiny").eval(), "tiny", "edvr_stf", "0" * 64, torch.device("cpu")
    )
    monkeypatch.setattr(fusion, "load_fusion_model", lambda *a, **kw: tiny)
    case = _simulated_case(tmp_path)
    truth = json.loads((case / "truth.json").read_text())
    scene = truth["experiment"]["scene"]
    shimadzu_shape, phantom_shape = scene["shimadzu_shape"], scene["phantom_shape"]
    record = CalibrationRecord.from_transform(
        _transform(scene), tuple(shimadzu_shape), tuple(phantom_shape)
    ).save(tmp_path / "cal.json")
    return case, record


def _infer(case, record, out) -> list[str]:
    return (
        ["inference", "--data_type", "actual", "--input_dir", str(case)]
        + ["--case_list", "sim_experiment", "--calibration", str(record)]
        + ["--traverse_mode", "continuous", "--out", str(out), "--quiet"]
    )


def test_a_damaged_frame_is_named_in_one_line(tmp_path, capsys, monkeypatch):
    """A truncated TIFF fails the camera's readout inside the RunEngine; the command says
    which file, in one line, with exit code 2 (XFUSION_DEBUG unset: no traceback)."""
    case, record = _case_with_record(tmp_path, monkeypatch)
    frames = sorted((case / "sim_experiment" / "TIFF16").rglob("*.tif"))
    damaged = frames[4]
    damaged.write_bytes(damaged.read_bytes()[:300])
    capsys.readouterr()
    code = main(_infer(case, record, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert damaged.name in err and "not a readable TIFF" in err
    assert "Traceback" not in err


def test_times_that_do_not_pair_name_both_files(tmp_path, capsys, monkeypatch):
    """One E-flagged Phantom frame: no Shimadzu frame lies between two, so nothing can
    be fused; the refusal names the XML and the INI whose times these are."""
    case, record = _case_with_record(tmp_path, monkeypatch)
    xml = case / "sim_experiment" / "phantom" / "sim_experiment.xml"
    text = xml.read_text()
    flagged = [i for i in range(len(text)) if text.startswith(" E<", i)]
    assert len(flagged) >= 2
    for i in reversed(flagged[1:]):  # keep the first E flag only
        text = text[:i] + text[i + 2 :]
    xml.write_text(text)
    capsys.readouterr()
    code = main(_infer(case, record, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert str(xml) in err and "sim_experiment.ini" in err, err


def test_a_grid_calibration_without_a_grid_names_the_case_and_camera(tmp_path, capsys):
    import numpy as np
    import tifffile

    case = _simulated_case(tmp_path)
    grid = case / "sim_calibration_grid"
    for f in sorted((grid / "phantom").glob("img_*.tif")):
        tifffile.imwrite(f, np.full((tifffile.imread(f).shape), 1000, np.uint16))
    capsys.readouterr()
    code = main(
        ["calibrate", "--cal_dir", str(case), "--cal_id", "sim_calibration_grid"]
        + ["--out", str(tmp_path / "rec.json"), "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert str(grid) in err and "phantom" in err, err


def _transform(scene: dict):
    from xfusion_stream.core import InterCameraTransform

    return InterCameraTransform.from_dict(scene["transform"])


def test_the_cause_behind_a_failed_device_status_is_found():
    from bluesky.utils import FailedStatus
    from ophyd.status import Status

    status = Status()
    cause = RecordedFormatError("/data/x.tif", "image", "not a readable TIFF")
    status.set_exception(cause)
    try:
        try:
            raise FailedStatus(status)
        except FailedStatus as exc:
            raise RuntimeError("plan aborted") from exc
    except RuntimeError as outer:
        assert _device_error(outer) is cause
    assert _device_error(RuntimeError("unrelated")) is None


def test_mistyped_architecture_options_are_named(tmp_path, capsys):
    arch = tmp_path / "arch.yaml"
    arch.write_text("arch: edvr_stf\npreset: small\nnum_feats: 32\n")
    weights = tmp_path / "w.pth"
    torch.save({"params": {}}, weights)
    code = main(
        ["inference", "--data_type", "actual", "--input_dir", str(tmp_path), "--case_list", "x"]
        + ["--model_file", str(weights), "--arch-opt", str(arch), "--calibration", "c.json"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "num_feats" in err and "num_feat'" in err and "Traceback" not in err


@pytest.mark.parametrize("content", [b"not a checkpoint\n", b"\x80\x04K\x01."])
def test_a_file_that_is_not_a_checkpoint_says_so_without_unsafe_advice(tmp_path, content):
    from xfusion_models.weights import CheckpointError, read_checkpoint

    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    text = str(info.value)
    assert str(path) in text and "weights_only=False" not in text


def test_control_characters_in_a_named_path_stay_on_one_line(tmp_path, capsys):
    """A file name is someone else's choice: a newline (or an ESC) in it must not split
    the one-line error or reach the terminal raw."""
    folder = tmp_path / "case\nFAKE: ok \x1b[31m"
    code = main(
        ["inference", "--data_type", "actual", "--input_dir", str(folder), "--case_list", "x"]
        + ["--calibration", str(tmp_path / "c.json")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and "\x1b" not in err
    assert "case\\nFAKE" in err and "\\x1b" in err, err


@pytest.mark.parametrize("dead", ["zeros", "open beam"])
def test_a_dead_or_covered_shimadzu_is_not_fused_as_ok(tmp_path, capsys, monkeypatch, dead):
    """An all-zero Shimadzu burst was fused ``ok: true``: a black fused frame that no
    measurement supports, from a camera that saw nothing of the Phantom's scene."""
    import numpy as np

    from xfusion_stream.recorded import write_frame

    case, record = _case_with_record(tmp_path, monkeypatch)
    frames = sorted((case / "sim_experiment" / "TIFF16").rglob("*.tif"))
    assert frames
    level = 0 if dead == "zeros" else 40000
    for path in frames:
        write_frame(path, np.full((32, 48), level, np.uint16))
    capsys.readouterr()
    code = main([*_infer(case, record, tmp_path / "out"), "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and json.loads(out.strip().splitlines()[-1])["ok"] is False
    assert "the Shimadzu frames" in err and "are flat, every pixel alike" in err
    assert "Traceback" not in err
