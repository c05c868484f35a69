"""Issue 13, Build 4: ``xfusion serve`` killed with SIGKILL in the middle of a fused run.

The real command in its own process, behind a real ``bluesky-0MQ-proxy``: a raw run
(already stored in Tiled, as the beamline's own TiledWriter does it) arrives over 0MQ in
part; once serve's spool holds a fused event the process gets ``kill -9`` (so the kill
lands mid-run by construction, not by timing). A second ``serve`` on the same spool
finds the run without a stop at start-up (``app/_recovery.py``), re-fuses the raw run
from Tiled under the same fused uid and writes it whole: its frames, read through Tiled,
equal an uninterrupted run's bit for bit. With ``--fused-data-dir`` (the facility mode,
fused frames in one HDF5 file per run) the partial file stays and the recovered run
gets a file of its own (``fused_<uid>-r2.h5``), the one Tiled's arrays come from.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_spool import reference  # noqa: F401 - a fixture

from xfusion_stream.publishing import (
    RAW_PREFIX,
    iter_spool,
    make_publisher,
    make_tiled_writer,
    spool_files,
    spool_status,
)
from xfusion_stream.testing import fused_frames

XFUSION = Path(sys.executable).parent / "xfusion"


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"xfusion serve exited ({proc.returncode}) waiting for {what}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _fused_events(path: Path) -> int:
    """Events of the ``fused`` stream in one spool file (a torn tail is not counted)."""
    fused: set[str] = set()
    n = 0
    for name, doc in iter_spool(path):
        if name == "descriptor" and doc.get("name") == "fused":
            fused.add(doc["uid"])
        elif name == "event" and doc.get("descriptor") in fused:
            n += 1
    return n


def _serve(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    with log.with_suffix(".out").open("wb") as out, log.open("wb") as err:
        return subprocess.Popen([str(XFUSION), "serve", *args], stdout=out, stderr=err, env=env)


def _stopped(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


@pytest.mark.timeout(240)
# fused frames stored as HDF5, the facility way; the inline recovery path is the same code
# after the frames are written, and test_spool.py covers it in-process
@pytest.mark.parametrize("frames_in", ["hdf5"])
def test_serve_killed_mid_run_completes_the_run_when_restarted(
    frames_in,
    proxy,
    tiled_server,
    reference,  # noqa: F811 - the fixture imported above
    inline_run,
    fuzz_calibration,
    tiny_checkpoint,
    fresh_uids,
    child_env,
    tmp_path,
):
    direct = tiled_server.client()
    docs = fresh_uids(inline_run)
    raw_uid = docs[0][1]["uid"]
    writer = make_tiled_writer(direct)
    for name, doc in docs:  # the raw run, as the beamline's TiledWriter stored it
        writer(name, doc)
    # all but the last two Phantom frames and the stop: enough for every window (the
    # first Phantom frame after the burst closes them), never the end of the run
    assert [n for n, _ in docs[-3:]] == ["event", "event", "stop"]
    first_part = docs[:-3]

    spool_dir, fused_dir = tmp_path / "spool", tmp_path / "fused"
    in_address, out_address = proxy
    common = [
        "--json", "--quiet", "--torch-threads", "1",
        "--in-address", in_address, "--out-address", out_address,
        "--calibration", str(fuzz_calibration.save(tmp_path / "calibration.json")),
        "--model_file", str(tiny_checkpoint),
        "--tiled-uri", tiled_server.uri, "--spool-dir", str(spool_dir),
        *(["--fused-data-dir", str(fused_dir)] if frames_in == "hdf5" else []),
    ]  # fmt: skip

    # ---- the first serve: fuses part of the run, then kill -9 ----------------------
    ready = tmp_path / "ready-1"
    crashed = _serve([*common, "--ready-file", str(ready)], tmp_path / "serve-1.log", child_env)
    publisher = make_publisher(in_address, RAW_PREFIX)
    try:
        _wait(ready.exists, 120, "the first serve to subscribe", crashed)
        time.sleep(0.5)  # slow joiner: the subscription reaches the proxy
        for name, doc in first_part:
            publisher(name, doc)
        _wait(lambda: spool_files(spool_dir), 60, "a spool file", crashed)
        (spooled,) = spool_files(spool_dir)
        _wait(lambda: _fused_events(spooled) >= 1, 60, "a fused event in the spool", crashed)
        os.kill(crashed.pid, signal.SIGKILL)
        assert crashed.wait(10) == -signal.SIGKILL
    finally:
        publisher.close()
        _stopped(crashed)
    fused_uid = spool_status(spooled).uid
    names = [n for n, _ in iter_spool(spooled)]
    assert names[0] == "start" and "stop" not in names  # what kill -9 left: no stop
    spooled_events = _fused_events(spooled)
    assert 1 <= spooled_events <= 10
    if frames_in == "hdf5":
        assert [p.name for p in fused_dir.iterdir()] == [f"fused_{fused_uid}.h5"]

    # ---- the second serve: recovers the run at start, then serves on --------------
    ready = tmp_path / "ready-2"
    restarted = _serve([*common, "--ready-file", str(ready)], tmp_path / "serve-2.log", child_env)
    try:
        _wait(ready.exists, 120, "the restarted serve to subscribe", restarted)

        def recovered() -> bool:
            meta = direct[fused_uid].metadata if fused_uid in direct else {}
            return not spool_files(spool_dir) and "stop" in meta

        _wait(recovered, 60, "the recovered run in Tiled", restarted)
        restarted.send_signal(signal.SIGINT)
        assert restarted.wait(60) == 0, (tmp_path / "serve-2.log").read_text()[-3000:]
    finally:
        _stopped(restarted)

    err = (tmp_path / "serve-2.log").read_text()
    summary = json.loads((tmp_path / "serve-2.out").read_text())
    assert "Traceback" not in err and tiled_server.api_key not in err
    assert summary["ok"] is True and summary["runs"] == [] and summary["spool_waiting"] == []
    assert summary["recovery"]["recovered"] == {
        "runs_completed": 1,
        "runs_closed": 0,
        "failed": {},
        "left": [],
    }
    assert "SIGINT" in summary["stopped_by"]

    # the fused run: whole, under its uid, its frames those of an uninterrupted run
    run = direct[fused_uid]
    start, stop = run.metadata["start"], run.metadata["stop"]
    assert start["raw_uid"] == raw_uid and "recovered" in start
    assert stop["exit_status"] == "success" and stop["num_events"]["fused"] == 10
    frames = fused_frames(direct, fused_uid)
    assert frames.dtype == reference.dtype and frames.shape == reference.shape
    np.testing.assert_array_equal(frames, reference)
    if frames_in == "hdf5":
        # the partial file stays (documents may point at it); the recovered run has its own
        partial, whole = fused_dir / f"fused_{fused_uid}.h5", fused_dir / f"fused_{fused_uid}-r2.h5"
        assert set(fused_dir.iterdir()) == {partial, whole}
        with h5py.File(partial, "r", swmr=True) as h5:  # untouched: what serve 1 wrote
            assert spooled_events <= len(h5["/entry/data/fused_image"]) <= 10
        with h5py.File(whole, "r") as h5:
            np.testing.assert_array_equal(h5["/entry/data/fused_image"][()], reference)
        sources = run["fused"]["fused_image"].data_sources()
        uris = {asset.data_uri for source in sources for asset in source.assets}
        assert uris == {f"file://localhost{whole.resolve().as_posix()}"}
