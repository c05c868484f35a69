"""Issue 11: a profile with ``backend: epics`` builds the ophyd-async EPICS detectors on
the profile's PV prefixes (here the soft IOCs' own), so ``build_beamline`` +
``attach_fusion`` acquire ``fly_dual_camera_burst`` over Channel Access and fuse it;
renamed device names and data keys fuse when the profile says so, and are refused with
a reason naming the descriptor when it does not."""

from __future__ import annotations

import pytest
from xfusion_plans import fly_dual_camera_burst

from xfusion_stream.profile import attach_fusion, build_beamline, load_profile

#: the renamed cameras: device names and the names of every per-frame value
RENAMED = {
    "phantom": "name: ph7510, keys: {image: frames, time_ns: t_ns, trigger_flag: e_flag}",
    "shimadzu": "name: hpvx2, keys: {image: frames, frame_number: index, time_ns: t_ns}",
}


def epics_profile(tmp_path, ioc, calibration, extra=None, fusion: str = "") -> str:
    """A profile YAML for the soft IOCs' prefixes; ``extra`` adds to each camera's block."""
    extra = extra or {}
    record = calibration.save(tmp_path / "calibration.json")
    cams = "".join(
        f"  {cam}: {{backend: epics, prefix: '{ioc['prefixes'][cam]}', "
        f"file_dir: '{ioc['data_dir']}'{', ' + extra[cam] if cam in extra else ''}}}\n"
        for cam in ("phantom", "shimadzu")
    )
    path = tmp_path / "epics.yaml"
    path.write_text(
        f"name: epics-test\ndevices:\n{cams}data_dir: {tmp_path / 'data'}\n"
        f"tiled: {{uri: embedded, batch_size: 16}}\ncalibration: {record}\n{fusion}"
    )
    return str(path)


@pytest.fixture
def tiny_model_loaded(monkeypatch, tiny_model):
    monkeypatch.setattr("xfusion_stream.app._configure.load_fusion_model", lambda spec: tiny_model)
    return tiny_model


def _acquire_and_fuse(profile_path: str) -> tuple[dict, dict, dict]:
    """(raw start, raw descriptor data keys per stream, fused stop) of one burst."""
    with build_beamline(load_profile(profile_path), progress=False) as bl:
        fusion = attach_fusion(bl)
        (uid,) = bl.RE(fly_dual_camera_burst(bl.phantom, bl.shimadzu))
        fused = bl.tiled_client[fusion.wait(120)]
        raw = bl.tiled_client[uid]
        keys = {stream: sorted(raw[stream].metadata["data_keys"])
                for stream in ("phantom", "shimadzu")}  # fmt: skip
        start = dict(fused.metadata["start"])
        return start, keys, dict(fused.metadata["stop"])


@pytest.mark.timeout(180)
def test_epics_profile_acquires_a_fly_burst_and_fuses(
    tmp_path, ioc, calibration, tiny_model_loaded
):
    start, keys, stop = _acquire_and_fuse(epics_profile(tmp_path, ioc, calibration))
    assert stop["exit_status"] == "success", stop.get("reason")
    assert "phantom_image" in keys["phantom"] and "phantom_time_ns" in keys["phantom"]
    assert start["raw_uid"] and stop["num_events"]["fused"] > 0


@pytest.mark.timeout(180)
def test_renamed_keys_fuse_when_the_profile_names_them(
    tmp_path, ioc, calibration, tiny_model_loaded
):
    path = epics_profile(tmp_path, ioc, calibration, RENAMED)
    _, keys, stop = _acquire_and_fuse(path)
    assert stop["exit_status"] == "success", stop.get("reason")
    assert keys["phantom"] == [
        "ph7510_e_flag", "ph7510_frame_number", "ph7510_frames", "ph7510_t_ns"
    ]  # fmt: skip
    assert keys["shimadzu"] == ["hpvx2_frames", "hpvx2_index", "hpvx2_t_ns"]
    assert stop["num_events"]["fused"] > 0


def test_renamed_keys_are_refused_with_the_default_recognition(
    tmp_path, ioc, calibration, tiny_model_loaded
):
    # the detectors name their values as the profile says, fusion uses today's names
    path = epics_profile(tmp_path, ioc, calibration, RENAMED)
    profile = load_profile(path)
    default = profile.fusion_config(tmp_path / "data").model_copy(
        update={"cameras": type(profile.fusion.cameras)()}
    )
    with build_beamline(profile, progress=False) as bl:
        fusion = attach_fusion(bl, config=default)
        bl.RE(fly_dual_camera_burst(bl.phantom, bl.shimadzu))
        stop = bl.tiled_client[fusion.wait(60)].metadata["stop"]
    assert stop["exit_status"] == "fail"
    assert "descriptor " in stop["reason"] and "no data key 'image'" in stop["reason"]
