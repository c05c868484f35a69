"""Numbers from the command line and from profiles: nan, inf and negatives parse as
floats and then pass comparisons the wrong way (a timeout of nan neither fires nor
waits), so each is refused where it is read, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from xfusion_stream.app import load_profile
from xfusion_stream.cli import _main
from xfusion_stream.core import ConfigError

# (command and the options it needs, the numeric option); parsed only, nothing runs
OPTIONS = [
    (["listen"], "--timeout"),
    (["view"], "--poll"),
    (["view"], "--timeout"),
    (["serve"], "--idle-timeout"),
    (["serve"], "--delivery-timeout"),
    (["replay", "--tiled-uri", "http://127.0.0.1:1", "--uid", "x"], "--timeout"),
    (["ioc", "--data-dir", "d"], "--exit-after"),
    (["demo"], "--view-linger"),
    (["simulate", "--out", "o"], "--rotation-deg"),
    (["simulate", "--out", "o"], "--scale-col"),
    (["simulate", "--out", "o"], "--pixel-um"),
    (["calibrate", "--cal_dir", "c", "--cal_id", "i"], "--pitch-um"),
]


#: every option and value pair that must be refused (a negative angle is an angle)
REFUSED = [
    (command, option, value)
    for command, option in OPTIONS
    for value in ("nan", "inf", "-inf", "-1", "ten")
    if not (value == "-1" and option == "--rotation-deg")
]


@pytest.mark.parametrize(("command", "option", "value"), REFUSED)
def test_a_number_no_option_means_is_refused_by_the_parser(capsys, command, option, value):
    with pytest.raises(SystemExit) as info:
        _main.build_parser().parse_args([*command, f"{option}={value}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        (["serve"], "--idle-timeout", "0"),  # 0: never
        (["ioc", "--data-dir", "d"], "--exit-after", "0"),
        (["listen"], "--timeout", "2.5"),
        (["simulate", "--out", "o"], "--rotation-deg", "-1.5"),
    ],
)
def test_the_numbers_each_option_documents_still_parse(command, option, value):
    args = _main.build_parser().parse_args([*command, option, value])
    assert getattr(args, option.lstrip("-").replace("-", "_")) == float(value)


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("Unable to allocate 636. GiB for an array with shape (413028, 413028)"),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to allocate 36000000000 bytes."
        ),
    ],
)
def test_running_out_of_memory_is_one_line(capsys, monkeypatch, error):
    """numpy's MemoryError and torch's allocator RuntimeError were tracebacks."""
    from xfusion_stream.cli import _simulate

    def run(args):  # the command's own work, standing in for a shape this machine lacks
        raise error

    monkeypatch.setattr(_simulate, "run", run)
    assert _main.main(["simulate", "--out", "nowhere", "--json"]) == 2
    out, err = capsys.readouterr()
    assert '"ok": false' in out and "not enough memory" in out
    assert err.count("\n") == 1 and "not enough memory" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("field", "value"),
    [("full_scale", ".inf"), ("max_buffered_mib", ".inf"), ("full_scale", ".nan")],
)
def test_a_profile_number_that_is_not_finite_is_named(tmp_path: Path, field, value):
    path = tmp_path / "profile.yaml"
    path.write_text(f"fusion:\n  {field}: {value}\n")
    with pytest.raises(ConfigError, match=rf"profile\.yaml: fusion\.{field}: .*finite"):
        load_profile(path)


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (
            ["--shimadzu-shape", "413028", "413028"],
            "shimadzu_shape: must be (rows, cols) of 4 to 4096",
        ),
        (["--frames", "99999999999"], "n_shimadzu: Input should be less than or equal to 100000"),
        (["--ratio", "1000"], "ratio: Input should be less than or equal to 16"),
    ],
)
def test_a_simulation_no_machine_holds_is_refused_before_allocating(
    tmp_path, capsys, option, words
):
    """These were numpy MemoryErrors (636 GiB, 745 GiB) after the output folder was made."""
    assert _main.main(["simulate", "--out", str(tmp_path / "sim"), *option]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "sim").exists()
