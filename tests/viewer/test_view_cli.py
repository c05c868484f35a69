"""``xfusion view`` refuses what it cannot serve with one line and exit code 2."""

from __future__ import annotations

import json

import pytest

from xfusion_stream.cli import main


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--zmq", "no-port-here"], "not a 0MQ address"),
        (["--zmq", "127.0.0.1:5578", "--uid", "abc"], "--uid goes with --tiled-uri"),
        (["--tiled-uri", "http://127.0.0.1:1"], "needs --uid"),
        (["--tiled-uri", "http://127.0.0.1:1", "--uid", "abc"], "cannot connect"),
        (["--zmq", "127.0.0.1:5578", "--max-frames", "0"], "--max-frames"),
        (["--zmq", "127.0.0.1:5578", "--port", "70000"], "out of range"),
    ],
)
def test_view_refuses_bad_flags_in_one_line(argv, says, capsys):
    assert main(["view", "--json", *argv]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is False and says in err and len(err.splitlines()) == 1


def test_view_needs_a_source(capsys):
    assert main(["view"]) == 2
    assert "--zmq" in capsys.readouterr().err


def test_view_takes_proxy_and_fused_folder_from_a_profile(tmp_path, monkeypatch, capsys):
    """``xfusion view --profile sim``: the profile's proxy (its out side, where fused
    documents arrive too) and its fused-frames folder as the only data root."""
    monkeypatch.chdir(tmp_path)
    args = ["view", "--profile", "sim", "--port", "0", "--timeout", "0.5", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["zmq"] == "tcp://127.0.0.1:5578" and out["frames"] == 0
    assert out["data_roots"] == [str(tmp_path / "xfusion-data" / "fused")]
