"""`xfusion calibrate` end to end on `xfusion simulate` output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xfusion_stream.calibration import load_record
from xfusion_stream.cli import main


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    rc = main(
        ["simulate", "--out", str(out), "--frames", "20", "--rotation-deg", "2.4",
         "--translation-px", "-17", "9", "--scale-col", "0.982", "--scale-row", "1.026", "--json"]
    )  # fmt: skip
    assert rc == 0
    return out


def test_calibrate_reproduces_truth(simulated, tmp_path, capsys) -> None:
    capsys.readouterr()
    record_path = tmp_path / "cal" / "record.json"
    rc = main(
        ["calibrate", "--cal_dir", str(simulated), "--cal_id", "sim_calibration_grid",
         "--out", str(record_path), "--cal_model_file", "ignored.pth", "--quiet", "--json"]
    )  # fmt: skip
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(line)
    truth = json.loads((simulated / "truth.json").read_text())["transform"]
    assert result["ok"]
    assert abs(result["rotation_deg"] - truth["rotation_deg"]) < 0.05
    assert abs(result["scale_col"] / truth["scale_col"] - 1) < 0.002
    assert abs(result["scale_row"] / truth["scale_row"] - 1) < 0.002
    assert np.allclose(result["translation_px"], truth["translation_px"], atol=0.3)
    assert result["residual_mean_px"] < 0.3 and result["residual_max_px"] >= 0
    assert result["n_pairs"] > 100
    assert "cal_model_file" in result["note"]
    record = load_record(result["record"])
    assert record.uid == result["uid"] and record.source.endswith("sim_calibration_grid")
    png = result["png"]
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_calibrate_default_output_next_to_case(simulated, capsys) -> None:
    assert main(["calibrate", "--cal_dir", str(simulated), "--cal_id", "sim_calibration_grid",
                 "--quiet"]) == 0  # fmt: skip
    assert (simulated / "sim_calibration_grid" / "calibration.json").is_file()
    assert (simulated / "sim_calibration_grid" / "calibration.png").is_file()


def test_missing_case_is_a_clear_error(tmp_path, capsys) -> None:
    rc = main(["calibrate", "--cal_dir", str(tmp_path), "--cal_id", "nope", "--json"])
    assert rc == 2
    assert "nope" in capsys.readouterr().err


def test_calibrate_measures_a_shimadzu_with_another_gain(tmp_path, capsys) -> None:
    out = tmp_path / "sim"
    assert main(
        ["simulate", "--out", str(out), "--frames", "10", "--shimadzu-shape", "64", "96",
         "--shimadzu-full-scale", "0.45", "--shimadzu-dark", "2000", "--json"]
    ) == 0  # fmt: skip
    capsys.readouterr()
    record_path = tmp_path / "record.json"
    assert main(
        ["calibrate", "--cal_dir", str(out), "--cal_id", "sim_calibration_grid",
         "--out", str(record_path), "--quiet", "--json"]
    ) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["intensity"]["shimadzu_gain"] == pytest.approx(2.0, rel=0.03)
    assert load_record(record_path).intensity.r2 > 0.98
