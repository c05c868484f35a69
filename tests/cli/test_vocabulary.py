"""One CLI vocabulary (issue 12): every option documented with its default, both
spellings of every long option, the original XFusion's flags kept as they were."""

from __future__ import annotations

import argparse

import pytest

from xfusion_stream.cli._main import COMMANDS, HelpFormatter, build_parser

# every flag of the original XFusion README, by command, in its spelling
SEED_FLAGS = {
    "init": ["--model_type", "--data_type"],
    "convert": ["--dir-lo-convert", "--dir-hi-convert", "--out-dir-lo", "--out-dir-hi"],
    "train": [
        "--dir-lo-train",
        "--dir-hi-train",
        "--dir-lo-val",
        "--dir-hi-val",
        "--opt",
        "--path-train-meta-info-file",
        "--path-val-meta-info-file",
        "--pretrain_network_g",
        "--dataroot_context",
        "--meta_info_context",
    ],
    "train_calibration": [
        "--image_root",
        "--meta_info_file",
        "--evaluator_weights",
        "--flow_weights",
        "--full_weights",
    ],
    "download": ["--dir-inf", "--out-dir-inf"],
    "calibrate": ["--cal_model_file", "--cal_dir", "--cal_id"],
    "inference": [
        "--opt",
        "--arch-opt",
        "--img-class",
        "--model_file",
        "--machine",
        "--traverse_mode",
        "--tfm_file",
        "--meta_file_scale",
        "--input_dir",
        "--case_list",
    ],
}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def _other_spelling(flag: str) -> str:
    body = flag[2:]
    return "--" + (body.replace("_", "-") if "_" in body else body.replace("-", "_"))


def test_every_command_is_walked():
    assert set(_subparsers()) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_help_and_shows_its_default(command):
    parser = _subparsers()[command]
    formatter = HelpFormatter(prog=parser.prog)
    for action in _options(parser):
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help != argparse.SUPPRESS, f"{command} {name}: no help"
        shown = action.default not in (None, False) and not action.required
        if shown:
            text = formatter._get_help_string(action)
            assert "default" in text.lower(), f"{command} {name}: default not shown"
    assert "show this help" in parser.format_help()  # renders (no stray % in a help text)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_long_option_has_both_spellings(command):
    for action in _options(_subparsers()[command]):
        for flag in action.option_strings:
            if flag.startswith("--") and ("_" in flag[2:] or "-" in flag[2:]):
                other = _other_spelling(flag)
                assert other in action.option_strings, f"{command} {flag}: no {other}"


@pytest.mark.parametrize("command", sorted(SEED_FLAGS))
def test_seed_flags_keep_their_spelling_and_gain_the_other(command):
    parser = _subparsers()[command]
    flags = {f for a in _options(parser) for f in a.option_strings}
    for flag in SEED_FLAGS[command]:
        assert flag in flags, f"{command}: the original's {flag} is gone"
        if "_" in flag[2:] or "-" in flag[2:]:
            assert _other_spelling(flag) in flags, f"{command}: no {_other_spelling(flag)}"


def test_both_spellings_parse_to_the_same_value():
    parser = build_parser()
    a = parser.parse_args(["calibrate", "--cal-dir", "d", "--cal-id", "i"])
    b = parser.parse_args(["calibrate", "--cal_dir", "d", "--cal_id", "i"])
    assert (a.cal_dir, a.cal_id) == (b.cal_dir, b.cal_id) == ("d", "i")
    args = ["serve", "--calibration", "c.json", "--model-file", "m", "--traverse-mode", "double"]
    serve = parser.parse_args(args)
    assert serve.model_file == "m" and serve.traverse_mode == "double"
    convert = parser.parse_args(["convert", "--dir_lo_convert", "x", "--out_dir_lo", "y"])
    assert str(convert.dir_lo_convert) == "x" and str(convert.out_dir_lo) == "y"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_one_progress_switch_everywhere(command):
    by_flag = _subparsers()[command]._option_string_actions
    quiet = by_flag["--quiet"]
    assert quiet.dest == "quiet" and by_flag["--no-progress"] is quiet
    assert not [a for a in by_flag.values() if a.dest in ("no_progress", "progress")]
