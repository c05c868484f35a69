import configparser
import json

import pytest

from xfusion_stream.cli import main
from xfusion_stream.core import ConfigError, read_config, update_config


def test_init_writes_conf_and_later_commands_update_it(tmp_path, capsys):
    rc = main(
        [
            "init",
            "--model_type",
            "SwinIRModel",
            "--data_type",
            "virtual",
            "--home",
            str(tmp_path),
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["ok"] and out["config"] == str(tmp_path / "xfusion.conf")
    parser = configparser.ConfigParser()
    parser.read(tmp_path / "xfusion.conf")
    assert parser["general"]["model_type"] == "SwinIRModel"
    assert parser["general"]["data_type"] == "virtual"
    update_config("calibrate", home=tmp_path, record="/data/cal.json")
    assert read_config(tmp_path)["calibrate"]["record"] == "/data/cal.json"


def test_xfusion_home_env_relocates(tmp_path, monkeypatch):
    monkeypatch.setenv("XFUSION_HOME", str(tmp_path))
    assert main(["init"]) == 0
    assert read_config()["general"]["model_type"] == "EDVRModel"


def test_bad_conf_is_named(tmp_path):
    (tmp_path / "xfusion.conf").write_text("[general]\nmodel_type = ResNet\ndata_type = actual\n")
    with pytest.raises(ConfigError, match=r"xfusion.conf: general.model_type: .*'ResNet'"):
        read_config(tmp_path)
    with pytest.raises(ConfigError, match="run `xfusion init`"):
        read_config(tmp_path / "nowhere")


def test_init_rejects_unknown_model_type(tmp_path):
    with pytest.raises(SystemExit):
        main(["init", "--model_type", "UNet", "--home", str(tmp_path)])


def test_calibrate_records_its_result_for_later_commands(xfusion_home, tmp_path, capsys):
    assert main(["init", "--data_type", "actual"]) == 0
    assert (
        main(
            [
                "simulate",
                "--out",
                str(tmp_path / "sim"),
                "--frames",
                "24",
                "--shimadzu-shape",
                "48",
                "64",
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "calibrate",
                "--cal_dir",
                str(tmp_path / "sim"),
                "--cal_id",
                "sim_calibration_grid",
                "--quiet",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["config_updated"] is True
    assert read_config(xfusion_home)["calibrate"]["record"] == str(
        (tmp_path / "sim" / "sim_calibration_grid" / "calibration.json").resolve()
    )
    # a damaged xfusion.conf is said, never silently replaced by the defaults
    conf = xfusion_home / "xfusion.conf"
    conf.write_text(conf.read_text() + "[general]\ndata_type = virtual\n")  # a section twice
    calibrate = ["calibrate", "--cal_dir", str(tmp_path / "sim"), "--quiet", "--json"]
    assert main([*calibrate, "--cal_id", "sim_calibration_grid"]) == 0  # the record is written
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["config_updated"] is False and "xfusion.conf" in out["config_problem"]
    inference = ["inference", "--input_dir", str(tmp_path / "sim"), "--case_list"]
    assert main([*inference, "sim_experiment", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "xfusion.conf: not a valid INI file" in err and "--calibration" not in err
    conf.unlink()  # no xfusion.conf at all: the defaults, and what they need
    assert main([*inference, "sim_experiment", "--quiet"]) == 2
    assert "actual data needs --calibration" in capsys.readouterr().err
