"""Records, profiles, options and xfusion.conf come from outside: each refusal names the
file in one line (a ConfigError), none is a traceback or a reader blocked for ever."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xfusion_stream.core import ConfigError, read_config, read_mapping

DAMAGES = {
    "FIFO": lambda p: os.mkfifo(p),
    "directory": lambda p: p.mkdir(),
    "not UTF-8": lambda p: p.write_bytes(b"\xff\xfeg\x00a\x00"),
    "JSON nested 100000 deep": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
    "YAML nested 100000 deep": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
    "an integer of 5000 digits": lambda p: p.write_text('{"a": ' + "9" * 5000 + "}"),
    "larger than a configuration file": lambda p: os.truncate(_touch(p), 64 << 20),
}


def _touch(path: Path) -> Path:
    path.touch()
    return path


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_mapping_file_is_named(tmp_path: Path, damage: str) -> None:
    path = tmp_path / ("record.yaml" if "YAML" in damage else "record.json")
    DAMAGES[damage](path)
    with pytest.raises(ConfigError) as info:
        read_mapping(path, what="calibration record")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("record.json", '{"crop": {"x": 1, "y": 2}, "ratio": 4, "crop": {"x": 9}}'),
        ("record.json", '{"intensity": {"shimadzu_gain": 1.1, "shimadzu_gain": 3}}'),
        ("profile.yaml", "fusion:\n  full_scale: 1.0\n  window: 5\n  full_scale: 4095\n"),
        ("profile.yaml", "a: 1\nb: 2\na: 1\n"),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path: Path, name: str, text: str) -> None:
    """JSON and YAML readers keep the last of two equal keys silently: a value edited
    above a forgotten copy would do nothing."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match="appears twice") as info:
        read_mapping(path)
    assert str(path) in str(info.value)


def test_yaml_merge_keys_and_equal_keys_in_other_mappings_still_load(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nfast:\n  <<: *b\n  x: 3\nslow: {x: 4}\n")
    assert read_mapping(path) == {
        "base": {"x": 1, "y": 2},
        "fast": {"x": 3, "y": 2},
        "slow": {"x": 4},
    }


@pytest.mark.parametrize("text", ["[general]\nmodel_type = %(nope)s\n", "[general]\na = 5%\n"])
def test_a_percent_in_xfusion_conf_is_a_character(tmp_path: Path, text: str) -> None:
    """configparser's interpolation made a % in a value a traceback (a path may hold one)."""
    (tmp_path / "xfusion.conf").write_text(text)
    with pytest.raises(ConfigError) as info:  # refused for its missing keys, by name
        read_config(tmp_path)
    assert "xfusion.conf" in str(info.value)


def test_xfusion_conf_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "xfusion.conf")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_config(tmp_path)


def test_worker_processes_are_bounded_by_the_cores(capsys: pytest.CaptureFixture[str]) -> None:
    """--workers 99999 started that many interpreters; the parser refuses it in one line
    (parsed only: a regression must not start them here either)."""
    from xfusion_stream.cli._main import build_parser

    for command in ("inference", "serve", "reprocess"):
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args([command, "--workers", "99999"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "99999 processes" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["FIFO", "directory"])
def test_a_model_file_that_is_no_regular_file_is_named(tmp_path: Path, kind: str) -> None:
    from xfusion_stream.fusion import load_fusion_model

    path = tmp_path / "model.pth"
    os.mkfifo(path) if kind == "FIFO" else path.mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        load_fusion_model(path)


@pytest.mark.parametrize("device", ["tpu:9", "cuda:-1", "meta", "nonsense"])
def test_a_device_torch_cannot_run_the_models_on_is_named(device: str) -> None:
    from xfusion_stream.fusion import load_fusion_model

    with pytest.raises(ConfigError, match="device"):
        load_fusion_model(None, device=device)
