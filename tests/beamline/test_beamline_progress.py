"""Progress in the IPython snippet (issue 12): a beamline shows its burst being read out
and acquired, and attach_fusion its frames being fused, on stderr; progress=False
silences both."""

from __future__ import annotations

from pathlib import Path

import pytest
from xfusion_plans import dual_camera_burst

from xfusion_stream.profile import attach_fusion, build_beamline, load_profile

PROFILE = """
name: progress-sim
devices:
  phantom: {backend: sim, prefix: "XF:P:PH:"}
  shimadzu: {backend: sim, prefix: "XF:P:HPV:"}
  sim: {seed: 5, shimadzu_shape: [16, 24], n_shimadzu: 24}
data_dir: DATA
tiled: {uri: URI, api_key_env: XF_PROGRESS_KEY, batch_size: 8}
model: MODEL
calibration: truth
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    import xfusion_models as xm

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    xm.save_checkpoint(xm.edvr_stf("tiny"), path)
    return path


@pytest.mark.parametrize("progress", [True, False])
def test_the_snippet_shows_progress_on_stderr_unless_told_not_to(
    tmp_path, tiled_server, tiny_model, monkeypatch, capsys, progress
):
    monkeypatch.setenv("XF_PROGRESS_KEY", tiled_server.api_key)
    text = PROFILE.replace("DATA", str(tmp_path / "data")).replace("MODEL", str(tiny_model))
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("URI", f"{tiled_server.base_uri}/api/v1"))
    with build_beamline(load_profile(path), progress=progress) as bl:
        fusion = attach_fusion(bl)
        bl.RE(dual_camera_burst(bl.phantom, bl.shimadzu))
        assert fusion.wait(120) is not None
        frames = fusion.results[-1].frames
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing on stdout either way
    err = captured.err
    if not progress:
        assert err == ""
        return
    n_phantom = bl.sim_beam.scene.n_phantom
    assert "phantom memory read out" in err and "shimadzu memory read out" in err
    assert (
        "acquired (dual_camera_burst): 100%" in err and f"{24 + n_phantom}/{24 + n_phantom}" in err
    )
    assert frames == 24 and "fused: 100%" in err and "24/24" in err and "frame/s" in err
