"""``xfusion demo --cameras epics``: the whole demo over Channel Access (its own soft
IOCs, fly-scanned grid calibration and burst) prints the simulated demo's summary and
writes bit-identical fused frames for the same scene, model and device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from xfusion_stream.cli import main

ARGS = ["--frames", "32", "--shimadzu-shape", "64", "96", "--seed", "7", "--json", "--quiet"]
#: what differs between any two demo runs: uids, addresses, timings, folders
PER_RUN = ("uid", "seconds", "address", "uri", "dir", "png", "gif", "mp4", "csv", "out")


def _datasets(folder: Path) -> dict[str, np.ndarray]:
    (path,) = folder.glob("*.h5")
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(
            lambda n, o: found.update({n: o[()]}) if isinstance(o, h5py.Dataset) else None
        )
    return found


def _same_values(a: dict, b: dict, where: str = "") -> None:
    assert a.keys() == b.keys(), where
    for key, value in a.items():
        if any(part in key for part in PER_RUN) or key == "cameras":
            continue
        if isinstance(value, dict):
            _same_values(value, b[key], f"{where}/{key}")
        else:
            assert value == b[key], f"{where}/{key}: {value!r} != {b[key]!r}"


@pytest.mark.timeout(240)
def test_epics_demo_matches_the_simulated_demo(tmp_path, capsys):
    import xfusion_models as xm

    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny.pth"
    xm.save_checkpoint(xm.edvr_stf("tiny"), checkpoint)
    common = [*ARGS, "--model_file", str(checkpoint), "--no-listener"]
    argv = [
        sys.executable, "-c", "import sys; from xfusion_stream.cli import main; sys.exit(main())",
        "demo", "--cameras", "epics", "--out", str(tmp_path / "epics"), *common,
    ]  # fmt: skip
    # its own process: the CA client reads its ports once per process
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XFUSION_TORCH_THREADS": "1"}
    epics = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert main(["demo", "--out", str(tmp_path / "sim"), *common]) == 0
        out, err = epics.communicate(timeout=200)
    finally:
        if epics.poll() is None:
            epics.kill()
            epics.communicate()
    assert epics.returncode == 0, err.decode()[-3000:]
    sim = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    over_ca = json.loads(out.decode().strip().splitlines()[-1])

    assert (sim["cameras"], over_ca["cameras"]) == ("sim", "epics")
    assert over_ca["exit_status"] == "success" and over_ca["frames_fused"] == 32
    assert over_ca["tiled"]["fused_in_tiled"] == 32 and over_ca["errors"] == []
    assert over_ca["calibration"]["stored_in_tiled"]
    _same_values(sim, over_ca)  # same keys; the same calibration, scores and residuals
    # the live alignment check pairs frames as they arrive: a fly run delivers each
    # camera's whole burst in turn, the simulated run interleaves them in time; it checks
    # the same pairs either way (compared above), and finds the calibration plausible
    assert (
        over_ca["calibration_check"]["plausible"]
        and over_ca["calibration_check"]["pairs_checked"] >= 2
    )
    fused_ca = _datasets(tmp_path / "epics" / "fused" / "hdf5")
    fused_sim = _datasets(tmp_path / "sim" / "fused" / "hdf5")
    assert fused_ca.keys() == fused_sim.keys() and "entry/data/fused_image" in fused_ca
    for key, frames in fused_sim.items():
        assert frames.dtype == fused_ca[key].dtype
        np.testing.assert_array_equal(fused_ca[key], frames, err_msg=key)
    # the soft IOCs stopped with the demo; their log says they served
    (log,) = (tmp_path / "epics" / "ioc").glob("ioc-log-*.txt")
    assert "xfusion ioc: serving" in log.read_text()
