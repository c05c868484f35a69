"""Issue 5 acceptance: fused runs leave over a real 0MQ proxy and land in Tiled.

A simulated ``dual_camera_burst`` goes through a real RunEngine; an independent
RemoteDispatcher in another process counts what arrives through a real
``bluesky-0MQ-proxy``. Counts must equal the pairing table computed from the scene's
timelines by the file-path pairer, and the fused run in Tiled must name its raw run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from xfusion_plans import dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.calibration import Registration, load_record
from xfusion_stream.fusion import FusionConfig, load_fusion_model
from xfusion_stream.publishing import (
    FUSED_PREFIX,
    RAW_PREFIX,
    ListenerProcess,
    make_publisher,
    make_tiled_writer,
)

CLI = [sys.executable, "-c", "import sys; from xfusion_stream.cli import main; sys.exit(main())"]


def _fused_run(summary: dict, raw_uid: str) -> dict:
    runs = [r for r in summary["runs"] if r["raw_uid"] == raw_uid]
    assert len(runs) == 1, summary
    return runs[0]


def _check_tiled(client, fused_uid: str, raw_uid: str, n_frames: int, shape) -> None:
    run = client[fused_uid]
    start = run.metadata["start"]
    assert start["raw_uid"] == raw_uid and start["purpose"] == "fused"
    assert run.metadata["stop"]["exit_status"] == "success"
    images = run["fused"]["fused_image"]
    assert tuple(images.shape) == (n_frames, *shape)
    assert raw_uid in client  # the raw run it links to is there too


def test_in_process_fusion_reaches_a_separate_process_and_tiled(
    RE,
    proxy,
    make_cameras,
    tiled_server,
    tiny_checkpoint,
    calibration_file,
    expected_windows,
    child_env,
    one_torch_thread,
    tmp_path,
):
    in_address, out_address = proxy
    record = load_record(calibration_file)
    model = load_fusion_model(tiny_checkpoint)
    publisher = make_publisher(in_address, FUSED_PREFIX)
    session = FusionSession(
        model, record, [publisher, make_tiled_writer(tiled_server.client())], FusionConfig()
    )
    raw_writer = make_tiled_writer(tiled_server.client())
    phantom, shimadzu, _ = make_cameras(inline=False)
    try:
        with ListenerProcess(out_address, tmp_path, runs=1, timeout=60, env=child_env) as listener:
            listener.wait_ready()
            plan = dual_camera_burst(phantom, shimadzu)
            result = session.run_plan(plan, RE=RE, raw_sinks=[raw_writer], timeout=60)
            raw_uid = result.raw_uid
            summary = listener.result(60)
    finally:
        publisher.close()

    fused = _fused_run(summary, raw_uid)
    hr_shape = tuple(Registration(record).hr_shape)
    assert fused["purpose"] == "fused" and fused["exit_status"] == "success"
    assert fused["events"]["fused"] == expected_windows
    assert tuple(fused["first_fused_shape"]) == hr_shape
    assert fused["start_uid"] == result.fused_uid and result.frames == expected_windows
    _check_tiled(tiled_server.client(), fused["start_uid"], raw_uid, expected_windows, hr_shape)


def _start_serve(in_address, out_address, tmp_path, checkpoint, calibration, env, *extra):
    ready = tmp_path / "serve.ready"
    cmd = [
        *CLI, "serve", "--json",
        "--in-address", in_address, "--out-address", out_address,
        "--calibration", str(calibration), "--model_file", str(checkpoint),
        "--ready-file", str(ready), *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"xfusion serve did not start: {out.decode()} {err.decode()[-3000:]}")
        time.sleep(0.05)
    return proc


def _serve_result(proc, timeout: float) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"xfusion serve did not finish: {err.decode()[-3000:]}")
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


def test_xfusion_serve_fuses_raw_documents_from_the_proxy(
    RE,
    proxy,
    make_cameras,
    tiled_server,
    tiny_checkpoint,
    calibration_file,
    expected_windows,
    child_env,
    tmp_path,
):
    in_address, out_address = proxy
    serve = _start_serve(
        in_address, out_address, tmp_path, tiny_checkpoint, calibration_file, child_env,
        "--max-runs", "1", "--tiled-uri", tiled_server.uri,
        "--data-root", str(tmp_path / "raw"),  # frames come from files: serve may read these
    )  # fmt: skip
    raw_publisher = make_publisher(in_address, RAW_PREFIX)
    RE.subscribe(raw_publisher)
    RE.subscribe(make_tiled_writer(tiled_server.client()))
    phantom, shimadzu, _ = make_cameras(inline=False)  # serve reads the HDF5 files itself
    try:
        with ListenerProcess(out_address, tmp_path, runs=1, timeout=90, env=child_env) as listener:
            listener.wait_ready()
            (raw_uid,) = RE(dual_camera_burst(phantom, shimadzu))
            result = _serve_result(serve, 90)
            summary = listener.result(30)
    finally:
        raw_publisher.close()
        if serve.poll() is None:
            serve.kill()
            serve.communicate()

    assert result["ok"] and result["raw_runs"] == 1 and result["stopped_by"] == "max-runs"
    (served,) = result["runs"]
    assert served["raw_uid"] == raw_uid and served["exit_status"] == "success"
    assert served["frames"] == expected_windows
    fused = _fused_run(summary, raw_uid)
    assert fused["start_uid"] == served["fused_uid"]
    assert fused["events"]["fused"] == expected_windows and fused["exit_status"] == "success"
    hr_shape = tuple(Registration(load_record(calibration_file)).hr_shape)
    _check_tiled(tiled_server.client(), served["fused_uid"], raw_uid, expected_windows, hr_shape)


def test_xfusion_serve_stops_cleanly_on_sigterm(
    proxy, tiny_checkpoint, calibration_file, child_env, tmp_path
):
    in_address, out_address = proxy
    serve = _start_serve(
        in_address, out_address, tmp_path, tiny_checkpoint, calibration_file, child_env
    )
    serve.send_signal(signal.SIGTERM)
    result = _serve_result(serve, 30)
    assert result["stopped_by"] == "SIGTERM" and result["runs"] == []


def test_xfusion_serve_names_bad_inputs(tmp_path, tiny_checkpoint, calibration_file, capsys):
    from xfusion_stream.cli import main

    missing = tmp_path / "nope.json"
    assert main(["serve", "--calibration", str(missing), "--model_file", str(tiny_checkpoint)]) == 2
    assert str(missing) in capsys.readouterr().err
    bad_model = tmp_path / "bad.pth"
    bad_model.write_bytes(b"not a checkpoint")
    code = main(["serve", "--calibration", str(calibration_file), "--model_file", str(bad_model)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--model_file" in err and str(bad_model) in err


def test_bad_addresses_are_named(calibration_file, tiny_checkpoint, capsys):
    from xfusion_stream.cli import main
    from xfusion_stream.publishing.listen import main as listen_main

    args = ["serve", "--calibration", str(calibration_file), "--model_file", str(tiny_checkpoint)]
    assert main([*args, "--out-address", "tcp://127.0.0.1"]) == 2
    assert "--out-address 'tcp://127.0.0.1'" in capsys.readouterr().err
    assert listen_main(["--address", "udp://127.0.0.1:5578", "--timeout", "1"]) == 2
    assert "udp://127.0.0.1:5578" in capsys.readouterr().err
