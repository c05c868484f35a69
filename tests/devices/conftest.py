"""Simulated ophyd-async burst detectors over the fusion scene, a tiny model and the
scene's true calibration."""

from __future__ import annotations

import asyncio

import pytest
import torch
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider

from xfusion_stream.calibration import CalibrationRecord
from xfusion_stream.devices import (
    SimBeam,
    SimBurstDetector,
    SimPhantomBackend,
    SimShimadzuBackend,
)
from xfusion_stream.fusion import FusionModel
from xfusion_stream.simulation import Scene
from xfusion_stream.testing import FUSION_SCENE


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


@pytest.fixture
def fly_cameras(RE, tmp_path):
    """Both simulated burst detectors, connected on ``RE``'s loop; files in tmp_path."""
    beam = SimBeam(FUSION_SCENE)
    paths = StaticPathProvider(UUIDFilenameProvider(), tmp_path)
    phantom = SimBurstDetector(SimPhantomBackend(beam), paths, camera="phantom", name="phantom")
    shimadzu = SimBurstDetector(SimShimadzuBackend(beam), paths, camera="shimadzu", name="shimadzu")
    for device in (phantom, shimadzu):
        asyncio.run_coroutine_threadsafe(device.connect(), RE.loop).result(10)
    return phantom, shimadzu
