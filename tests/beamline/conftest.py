"""Small simulated cameras and a document validator for the beamline tests."""

from __future__ import annotations

import pytest
from event_model import DocumentNames, schema_validators

from xfusion_stream.devices import (
    PhantomTMX7510,
    SceneConfig,
    ShimadzuHPVX2,
    SimBeam,
    SimPhantomBackend,
    SimShimadzuBackend,
)

SMALL = SceneConfig(seed=3, shimadzu_shape=(32, 48), n_shimadzu=32)


@pytest.fixture
def make_cameras(tmp_path):
    """Factory: (phantom, shimadzu, beam) over one small simulated scene."""

    def make(config: SceneConfig = SMALL, *, inline: bool = False, grid_frames: int = 24):
        beam = SimBeam(config, grid_frames=grid_frames)
        raw = None if inline else tmp_path / "raw"
        phantom = PhantomTMX7510(
            "XF:TEST:PH:",
            name="phantom",
            backend=SimPhantomBackend(beam),
            data_dir=raw,
            inline=inline,
        )
        shimadzu = ShimadzuHPVX2(
            "XF:TEST:HPV:",
            name="shimadzu",
            backend=SimShimadzuBackend(beam),
            data_dir=raw,
            inline=inline,
        )
        return phantom, shimadzu, beam

    return make


class DocumentLog:
    """Validates every document against event-model's schema and keeps them."""

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        schema_validators[DocumentNames[name]].validate(doc)
        self.docs.append((name, doc))

    def of(self, name: str) -> list[dict]:
        return [d for n, d in self.docs if n == name]


@pytest.fixture
def doc_log(RE):
    log = DocumentLog()
    RE.subscribe(log)
    return log
