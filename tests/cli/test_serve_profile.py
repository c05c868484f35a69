"""`xfusion serve --profile` (issue 12): the profile gives addresses, calibration and
fusion settings; explicit flags override it."""

from __future__ import annotations

from xfusion_stream.cli import _serve, build_parser, main

PROFILE = """
name: serve-test
devices:
  sim: {seed: 5, shimadzu_shape: [16, 24], n_shimadzu: 24}
data_dir: DATA
zmq: {raw_in: "tcp://127.0.0.1:6601", raw_out: "tcp://127.0.0.1:6602"}
calibration: truth
fusion: {traverse_mode: double, queue_size: 4}
"""


def _args(tmp_path, *extra: str):
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE.replace("DATA", str(tmp_path / "data")))
    return build_parser().parse_args(["serve", "--profile", str(path), *extra])


def test_the_profile_gives_addresses_calibration_and_settings(tmp_path):
    args = _args(tmp_path)
    profile = _serve._profile(args)
    assert _serve._addresses(args, profile) == (
        "tcp://127.0.0.1:6601",
        "tcp://127.0.0.1:6602",
        "tcp://127.0.0.1:6601",  # fused documents go back into the same proxy
    )
    config = _serve._config(args, profile)
    assert (config.traverse_mode, config.queue_size, config.when_full) == ("double", 4, "block")
    record = _serve._calibration(args, profile)
    assert record.shimadzu_shape == (16, 24)  # "truth": the simulated geometry
    assert _serve._data_roots(args, profile) == [str(tmp_path / "data" / "raw")]


def test_explicit_flags_override_the_profile(tmp_path):
    args = _args(
        tmp_path,
        "--traverse-mode", "continuous", "--when_full", "skip",
        "--in-address", "tcp://127.0.0.1:7701", "--data-root", str(tmp_path),
    )  # fmt: skip
    profile = _serve._profile(args)
    in_address, out_address, fused = _serve._addresses(args, profile)
    assert (in_address, out_address, fused) == (
        "tcp://127.0.0.1:7701",
        "tcp://127.0.0.1:6602",
        "tcp://127.0.0.1:7701",
    )
    config = _serve._config(args, profile)
    assert (config.traverse_mode, config.queue_size, config.when_full) == ("continuous", 4, "skip")
    assert _serve._data_roots(args, profile) == [str(tmp_path)]


def test_serve_without_profile_or_calibration_is_one_line(capsys):
    assert main(["serve"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "needs --calibration RECORD or --profile PROFILE" in line
