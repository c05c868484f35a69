"""The soft camera IOCs (``xfusion ioc``) as a subprocess on loopback, free CA ports, and
EPICS burst detectors connected to them over real Channel Access.

The CA client library reads its environment once per process, so the ports are chosen
once per session and every test here talks to the one IOC process (prefixes are
random, so a stray IOC elsewhere on the machine is never reached).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
from ophyd_async.epics.core import epics_signal_rw

from xfusion_stream.app import ca_loopback_env, soft_iocs
from xfusion_stream.calibration import CalibrationRecord
from xfusion_stream.devices import EpicsBurstDetector
from xfusion_stream.fusion import FusionModel
from xfusion_stream.simulation import Scene
from xfusion_stream.testing import FUSION_SCENE


@pytest.fixture(scope="session")
def ca_env():
    """Client and server environment: loopback only, a free server and repeater port."""
    env = ca_loopback_env()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="session")
def ioc(ca_env, tmp_path_factory):
    """The two cameras' soft IOCs over the fusion scene: prefixes and data folder."""
    data_dir = tmp_path_factory.mktemp("ioc-data")
    with soft_iocs(data_dir, FUSION_SCENE, env=ca_env, exit_after=900) as iocs:
        yield {"prefixes": iocs.prefixes, "data_dir": iocs.data_dir, "log": iocs.log}


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


@pytest.fixture
def grid_stage(RE, ioc):
    """What sits in the beam (``<beam>Target``: sample or grid), over CA on ``RE``'s loop."""
    stage = epics_signal_rw(str, ioc["prefixes"]["beam"] + "Target", name="grid_stage")
    asyncio.run_coroutine_threadsafe(stage.connect(timeout=10), RE.loop).result(30)
    return stage


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
