"""Small simulated beamline, a seeded tiny model and the true calibration for fusion tests."""

from __future__ import annotations

import pytest
import torch
from event_model import DocumentNames, schema_validators

from xfusion_stream.calibration import CalibrationRecord, pairing_table
from xfusion_stream.devices import (
    PhantomTMX7510,
    Scene,
    SceneConfig,
    ShimadzuHPVX2,
    SimBeam,
    SimPhantomBackend,
    SimShimadzuBackend,
)
from xfusion_stream.fusion import FusionModel
from xfusion_stream.recorded import PhantomTiming, ShimadzuTiming

SCENE = SceneConfig(seed=5, shimadzu_shape=(24, 40), n_shimadzu=64)


class Collector:
    """Validates each document against event-model's schemas and keeps it."""

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        schema_validators[DocumentNames[name]].validate(doc)
        self.docs.append((name, doc))

    def of(self, name: str) -> list[dict]:
        return [d for n, d in self.docs if n == name]

    def events(self, stream: str = "fused") -> list[dict]:
        uids = {d["uid"] for d in self.of("descriptor") if d["name"] == stream}
        return [e for e in self.of("event") if e["descriptor"] in uids]


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
        beam = SimBeam(config)
        raw = None if inline else tmp_path / "raw"
        phantom = PhantomTMX7510(
            "XF:T:PH:", name="phantom", backend=SimPhantomBackend(beam), data_dir=raw, inline=inline
        )
        shimadzu = ShimadzuHPVX2(
            "XF:T:HPV:",
            name="shimadzu",
            backend=SimShimadzuBackend(beam),
            data_dir=raw,
            inline=inline,
        )
        return phantom, shimadzu

    return make


def expected_table(scene: Scene, mode: str):
    phantom = PhantomTiming(
        frame_numbers=scene.phantom_frame_numbers(),
        times_ns=scene.phantom_times_ns(),
        e_flags=scene.phantom_e_flags(),
        frame_rate_hz=scene.phantom_frame_rate_hz,
        gamma=0.0,
    )
    shimadzu = ShimadzuTiming(
        frame_ns=scene.config.shimadzu_frame_ns,
        n_frames=scene.n_shimadzu,
        times_ns=scene.shimadzu_times_ns(),
    )
    return pairing_table(phantom, shimadzu, mode)
