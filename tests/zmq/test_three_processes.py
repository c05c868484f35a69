"""The three-process recipe from the README (issue 12): a bluesky-0MQ-proxy, ``xfusion
serve --profile`` and ``xfusion listen --profile``, all reading one profile, and a
RunEngine burst on a beamline built from that profile."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import xfusion_profiles
from xfusion_plans import dual_camera_burst

from xfusion_stream.profile import build_beamline, load_profile


def _profile(tmp_path: Path, proxy: tuple[str, str], model: Path, tiled_server) -> Path:
    """The shipped small ``sim`` profile with free ports, a temporary data folder, the
    session's Tiled and a tiny model."""
    text = (Path(xfusion_profiles.__file__).parent / "sim.yaml").read_text()
    text = text.replace("tcp://127.0.0.1:5577", proxy[0]).replace("tcp://127.0.0.1:5578", proxy[1])
    text = text.replace("data_dir: xfusion-data", f"data_dir: {tmp_path / 'data'}")
    text = text.replace("uri: embedded", f"uri: {tiled_server.base_uri}/api/v1")
    text = text.replace("api_key_env: TILED_API_KEY", "api_key_env: XF_THREE_KEY")
    text = text.replace("model: default", f"model: {model}")
    path = tmp_path / "three.yaml"
    path.write_text(text)
    return path


def _xfusion(args: list[str], log: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    out = log.with_suffix(".out")
    exe = Path(sys.executable).parent / "xfusion"
    exe = exe if exe.exists() else Path(shutil.which("xfusion") or "xfusion")
    cmd = [str(exe), *args]
    with out.open("wb") as stdout, log.open("wb") as stderr:
        return subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env), out


def _wait_ready(files: list[Path], procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(f.exists() for f in files):
        for proc in procs:
            assert proc.poll() is None, f"{proc.args} exited with {proc.returncode}"
        assert time.monotonic() < deadline, "serve/listen did not subscribe in time"
        time.sleep(0.1)
    time.sleep(0.5)  # slow joiner: let the subscriptions reach the proxy


def test_proxy_serve_and_listen_from_one_profile(
    proxy, tmp_path, tiny_checkpoint, tiled_server, child_env, monkeypatch
):
    profile = _profile(tmp_path, proxy, tiny_checkpoint, tiled_server)
    env = {**child_env, "XF_THREE_KEY": tiled_server.api_key}
    monkeypatch.setenv("XF_THREE_KEY", tiled_server.api_key)
    ready = [tmp_path / f"{name}.ready" for name in ("serve", "listen", "listen-json")]
    common = ["--profile", str(profile), "--max-runs", "1"]
    procs = []
    try:
        serve, serve_out = _xfusion(
            [
                "serve",
                *common,
                "--json",
                "--quiet",
                "--torch-threads",
                "1",
                "--ready-file",
                str(ready[0]),
            ],
            tmp_path / "serve.log",
            env,
        )
        listen, listen_out = _xfusion(
            [
                "listen",
                *common,
                "--quiet",
                "--every",
                "16",
                "--timeout",
                "120",
                "--ready-file",
                str(ready[1]),
            ],
            tmp_path / "listen.log",
            env,
        )
        as_json, json_out = _xfusion(
            ["listen", *common, "--json", "--timeout", "120", "--ready-file", str(ready[2])],
            tmp_path / "listen-json.log",
            env,
        )
        procs = [serve, listen, as_json]
        _wait_ready(ready, procs, 60)
        with build_beamline(load_profile(profile), progress=False) as bl:
            (raw_uid,) = bl.RE(dual_camera_burst(bl.phantom, bl.shimadzu))
            n_frames = bl.sim_beam.scene.n_shimadzu
        for proc in procs:
            assert proc.wait(90) == 0, (tmp_path / "serve.log").read_text()[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    # serve fused the raw run (reading its HDF5 files from the profile's data folder)
    (served,) = json.loads(serve_out.read_text())["runs"]
    assert served["raw_uid"] == raw_uid and served["frames"] == n_frames
    fused_uid = served["fused_uid"]
    assert tiled_server.client()[fused_uid].metadata["start"]["raw_uid"] == raw_uid

    # listen printed the fused run: its start, frames as they came, its stop
    lines = listen_out.read_text().splitlines()
    head = f"start {fused_uid[:8]}: fused run of raw run {raw_uid[:8]}, continuous mode"
    assert lines[0].startswith(head)
    assert f"  {fused_uid[:8]}: 16 frames" in "\n".join(lines)
    stop = [line for line in lines if line.startswith(f"stop  {fused_uid[:8]}")]
    assert stop and f"success, {n_frames} frames, 0 gaps, shimadzu_residual " in stop[0]
    assert (tmp_path / "listen.log").read_text() == ""  # --quiet: no bar on stderr

    # --json: one line per document summary, then the result; the bar still on stderr
    records = [json.loads(line) for line in json_out.read_text().splitlines()]
    kinds = [r.get("document") for r in records]
    assert kinds[0] == "start" and kinds.count("event") == n_frames and kinds[-2] == "stop"
    assert records[-1]["ok"] is True and records[-1]["runs"][0]["uid"] == fused_uid
    assert records[-2]["frames"] == n_frames and records[-2]["shimadzu_residual"] is not None
    assert "fused" in (tmp_path / "listen-json.log").read_text()  # progress, on stderr
