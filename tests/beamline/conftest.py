"""Small simulated cameras and a document validator for the beamline tests."""

from __future__ import annotations

import pytest

from xfusion_stream.simulation import SceneConfig
from xfusion_stream.testing import BEAMLINE_SCENE, DocumentLog, sim_cameras

SMALL = BEAMLINE_SCENE


@pytest.fixture
def make_cameras(tmp_path):
    """Factory: (phantom, shimadzu, beam) over one small simulated scene."""

    def make(config: SceneConfig = SMALL, *, inline: bool = False, grid_frames: int = 24):
        return sim_cameras(config, tmp_path / "raw", inline=inline, grid_frames=grid_frames)

    return make


@pytest.fixture
def doc_log(RE):
    log = DocumentLog()
    RE.subscribe(log)
    return log
