"""The soft camera IOCs (``xfusion ioc``) as a subprocess on loopback, free CA ports, and
EPICS burst detectors connected to them over real Channel Access.

The CA client library reads its environment once per process, so the ports are chosen
once per session and every test here talks to the one IOC process (prefixes are
random, so a stray IOC elsewhere on the machine is never reached).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider

from xfusion_stream.calibration import CalibrationRecord
from xfusion_stream.devices import EpicsBurstDetector
from xfusion_stream.fusion import FusionModel
from xfusion_stream.simulation import Scene
from xfusion_stream.testing import FUSION_SCENE

READY = "xfusion ioc: serving"


def _free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (CA uses both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for Channel Access")


@pytest.fixture(scope="session")
def ca_env():
    """Client and server environment: loopback only, a free server and repeater port."""
    server = _free_port()
    repeater = _free_port()
    while repeater == server:
        repeater = _free_port()
    env = {
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_ADDR_LIST": "127.0.0.1",
        "EPICS_CA_SERVER_PORT": str(server),
        "EPICS_CA_REPEATER_PORT": str(repeater),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="session")
def ioc(ca_env, tmp_path_factory):
    """The two cameras' soft IOCs over the fusion scene: prefixes and data folder."""
    data_dir = tmp_path_factory.mktemp("ioc-data")
    tag = "".join(random.choices(string.ascii_uppercase, k=8))
    prefixes = {"phantom": f"XFT{tag}:PH:", "shimadzu": f"XFT{tag}:HPV:"}
    log = data_dir.parent / f"ioc-{tag}.log"
    cfg = FUSION_SCENE
    argv = [
        sys.executable, "-c", "import sys; from xfusion_stream.cli import main; sys.exit(main())",
        "ioc", "--prefix-phantom", prefixes["phantom"], "--prefix-shimadzu",
        prefixes["shimadzu"], "--data-dir", str(data_dir), "--seed", str(cfg.seed),
        "--frames", str(cfg.n_shimadzu), "--shimadzu-shape", *map(str, cfg.shimadzu_shape),
        "--phantom-every", str(cfg.phantom_every), "--exit-after", "900",
    ]  # fmt: skip
    with open(log, "w") as err:
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **ca_env}
        )
    try:
        deadline = time.monotonic() + 60
        while READY not in log.read_text() and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"xfusion ioc exited with {proc.returncode}: {log.read_text()}")
            time.sleep(0.05)
        assert READY in log.read_text(), log.read_text()
        yield {"prefixes": prefixes, "data_dir": data_dir, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def epics_cameras(RE, ioc):
    """Both EPICS burst detectors, connected over CA on ``RE``'s loop."""
    paths = StaticPathProvider(UUIDFilenameProvider(), Path(ioc["data_dir"]))
    phantom = EpicsBurstDetector(
        ioc["prefixes"]["phantom"], paths, camera="phantom", name="phantom"
    )
    shimadzu = EpicsBurstDetector(
        ioc["prefixes"]["shimadzu"], paths, camera="shimadzu", name="shimadzu"
    )
    for device in (phantom, shimadzu):
        asyncio.run_coroutine_threadsafe(device.connect(timeout=10), RE.loop).result(30)
    return phantom, shimadzu


@pytest.fixture(scope="session")
def scene() -> Scene:
    return Scene(FUSION_SCENE)


@pytest.fixture(scope="session")
def calibration(scene) -> CalibrationRecord:
    return CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )


@pytest.fixture(scope="session")
def tiny_model() -> FusionModel:
    import xfusion_models as xm

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return FusionModel(
        net=xm.edvr_stf("tiny").eval(),
        name="edvr_stf_tiny_seed0",
        arch="edvr_stf",
        sha256="0" * 64,
        device=torch.device("cpu"),
    )
