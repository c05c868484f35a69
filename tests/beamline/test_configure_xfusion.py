"""configure_xfusion on a RunEngine and a Tiled client the beamline made itself (issue 14)."""

from __future__ import annotations

import pytest
import torch
from xfusion_plans import dual_camera_burst

from xfusion_stream.calibration import CalibrationRecord
from xfusion_stream.core import ConfigError, XFusionError
from xfusion_stream.fusion import FusionModel
from xfusion_stream.profile import attach_fusion, build_beamline, configure_xfusion, load_profile
from xfusion_stream.publishing import make_tiled_writer


@pytest.fixture(scope="module")
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


def _subscriptions(RE) -> int:
    """Callbacks on the RunEngine's (public) dispatcher, over every document name."""
    return sum(len(cbs) for cbs in RE.dispatcher.cb_registry.callbacks.values())


def _truth(beam) -> CalibrationRecord:
    scene = beam.scene
    return CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )


def test_fusion_on_a_user_made_run_engine_and_detach_leaves_it_clean(
    RE, tiled_client, make_cameras, tiny_model
):
    phantom, shimadzu, beam = make_cameras()
    before = _subscriptions(RE)
    xf = configure_xfusion(
        RE, tiled_client, model=tiny_model, calibration=_truth(beam), progress=False
    )
    assert _subscriptions(RE) > before
    (uid,) = RE(dual_camera_burst(phantom, shimadzu))
    fused_uid = xf.wait(120)
    assert fused_uid is not None
    assert set(tiled_client[uid]) == {"phantom", "shimadzu"}  # the raw writer wrote it
    fused = tiled_client[fused_uid]
    assert fused.metadata["start"]["raw_uid"] == uid
    assert fused.metadata["stop"]["exit_status"] == "success"
    assert fused["fused"]["fused_image"].shape[0] == xf.results[-1].frames > 0

    xf.close()
    assert _subscriptions(RE) == before  # nothing of xfusion left on the RunEngine
    xf.close()  # idempotent
    (uid2,) = RE(dual_camera_burst(phantom, shimadzu))
    assert uid2 not in tiled_client  # no raw writer any more
    assert len(xf.results) == 1  # and nothing fused


def test_a_second_raw_writer_or_session_is_refused_until_the_first_is_closed(
    RE, tiled_client, tiny_model, make_cameras
):
    _, _, beam = make_cameras()
    cal = _truth(beam)
    before = _subscriptions(RE)
    raw = configure_xfusion(RE, tiled_client, fuse=False, progress=False)
    with pytest.raises(XFusionError, match="already has xfusion's raw_writer"):
        configure_xfusion(RE, tiled_client, model=tiny_model, calibration=cal, progress=False)
    # parts that do not overlap combine: the beamline's raw writer, then fusion
    fusion = configure_xfusion(
        RE, tiled_client, model=tiny_model, calibration=cal, raw_writer=False, progress=False
    )
    with pytest.raises(XFusionError, match="already has xfusion's fusion"):
        configure_xfusion(
            RE, tiled_client, model=tiny_model, calibration=cal, raw_writer=False, progress=False
        )
    fusion.close()
    raw.close()
    again = configure_xfusion(RE, tiled_client, fuse=False, progress=False)  # free again
    again.close()
    assert _subscriptions(RE) == before


def test_settings_come_from_arguments_then_the_profile(
    RE, tiled_client, tiny_model, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the profile's data_dir (fused frames, spool) is relative
    before = _subscriptions(RE)
    with pytest.raises(ConfigError, match="calibration"):
        configure_xfusion(RE, tiled_client, model=tiny_model)  # no profile to take it from
    with pytest.raises(ConfigError, match="nothing to do"):
        configure_xfusion(RE, tiled_client, fuse=False, raw_writer=False)
    with pytest.raises(ConfigError, match="traverse"):
        configure_xfusion(RE, tiled_client, profile="sim", model=tiny_model, traverse="double")
    with configure_xfusion(
        RE, tiled_client, profile="sim", model=tiny_model, traverse_mode="double", progress=False
    ) as xf:
        assert xf.session is not None and xf.session.config.traverse_mode == "double"
        assert xf.raw_writer is not None and xf.session.calibration.uid  # 'truth' of the sim
        # the profile's folders: fused frames as HDF5, a spool for Tiled outages
        data = tmp_path / "xfusion-data"
        assert xf.session.config.fused_data_dir == str(data / "fused")
        assert xf.session.spool is not None and xf.session.spool.directory == data / "spool"
    assert _subscriptions(RE) == before


def test_build_beamline_and_attach_fusion_go_through_it(tmp_path, tiny_model, monkeypatch):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: cx\ndevices: {sim: {seed: 5, shimadzu_shape: [16, 24], n_shimadzu: 24}}\n"
        f"data_dir: {tmp_path / 'data'}\ntiled: {{uri: embedded, batch_size: 8}}\n"
    )
    monkeypatch.setattr("xfusion_stream.app._configure.load_fusion_model", lambda spec: tiny_model)
    with build_beamline(load_profile(profile), progress=False) as bl:
        assert bl.xfusion.parts == {"raw_writer"} and bl.tiled_writer is bl.xfusion.raw_writer
        fusion = attach_fusion(bl)
        with pytest.raises(XFusionError, match="fusion"):
            attach_fusion(bl)  # every run would be fused twice
        (uid,) = bl.RE(dual_camera_burst(bl.phantom, bl.shimadzu))
        assert bl.tiled_client[fusion.wait(120)].metadata["start"]["raw_uid"] == uid
    assert fusion.closed and bl.xfusion.closed  # close() detached both


def test_the_readme_profile_collection_snippet(RE, tiled_client, tmp_path, tiny_model, monkeypatch):
    """README "Deploy at a beamline": the collection has RE, tiled_client and cameras."""
    import re
    from pathlib import Path

    from xfusion_stream.testing import sim_cameras

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Deploy at a beamline") :]
    snippet = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert "configure_xfusion(RE, tiled_client" in snippet
    monkeypatch.chdir(tmp_path)  # the profile's data_dir (fused frames, spool) is relative
    monkeypatch.setattr("xfusion_stream.app._configure.load_fusion_model", lambda spec: tiny_model)
    phantom, shimadzu, _ = sim_cameras(load_profile("sim").devices.sim.scene_config(), tmp_path)
    writer = make_tiled_writer(tiled_client)  # the collection's own raw writer
    RE.subscribe(writer)
    before = _subscriptions(RE)
    namespace = {"RE": RE, "tiled_client": tiled_client, "phantom": phantom, "shimadzu": shimadzu}
    namespace["dual_camera_burst"] = dual_camera_burst
    exec(compile(snippet, "README-profile-collection", "exec"), namespace)
    assert namespace["fused"].metadata["start"]["raw_uid"] == namespace["uid"]
    assert namespace["fused"].metadata["stop"]["exit_status"] == "success"
    assert _subscriptions(RE) == before  # closed: only the collection's writer is left
