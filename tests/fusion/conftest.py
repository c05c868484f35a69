"""Small simulated beamline, a seeded tiny model and the true calibration for fusion tests."""

from __future__ import annotations

import pytest
import torch

from xfusion_stream.calibration import CalibrationRecord
from xfusion_stream.fusion import FusionModel
from xfusion_stream.simulation import Scene, SceneConfig
from xfusion_stream.testing import FUSION_SCENE, sim_cameras

SCENE = FUSION_SCENE


@pytest.fixture(scope="session")
def scene() -> Scene:
    return Scene(SCENE)


@pytest.fixture(scope="session")
def calibration(scene) -> CalibrationRecord:
    return CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )


@pytest.fixture(scope="session")
def tiny_model() -> FusionModel:
    import xfusion_models as xm

    torch.set_num_threads(1)  # two cores shared by the suite: no thread oversubscription
    torch.manual_seed(0)
    net = xm.edvr_stf("tiny").eval()
    return FusionModel(
        net=net,
        name="edvr_stf_tiny_seed0",
        arch="edvr_stf",
        sha256="0" * 64,
        device=torch.device("cpu"),
    )


@pytest.fixture
def cameras(tmp_path):
    def make(inline: bool = False, config: SceneConfig = SCENE):
        phantom, shimadzu, _ = sim_cameras(config, tmp_path / "raw", inline=inline)
        return phantom, shimadzu

    return make
