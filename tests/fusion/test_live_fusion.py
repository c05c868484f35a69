"""Live fusion through a real RunEngine: counts, links, Tiled, replay, failures."""

from __future__ import annotations

import numpy as np
import pytest
from xfusion_plans import dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.testing import DocumentLog as Collector
from xfusion_stream.testing import expected_table


def _fuse_live(RE, cameras, model, calibration, sinks, config, inline=False):
    session = FusionSession(model, calibration, sinks, config)
    phantom, shimadzu = cameras(inline=inline)
    plan = dual_camera_burst(phantom, shimadzu, md={"sample": "sim"})
    result = session.run_plan(plan, RE=RE, timeout=120)  # raises if fusion did not finish
    return result.raw_uid, result


@pytest.mark.parametrize("mode", ["continuous", "double"])
def test_live_fusion_matches_pairing_table(
    RE, cameras, tiny_model, calibration, scene, mode, tiled_client
):
    fused = Collector()
    RE.subscribe(make_tiled_writer(tiled_client))
    uid, result = _fuse_live(
        RE,
        cameras,
        tiny_model,
        calibration,
        [fused, make_tiled_writer(tiled_client)],
        FusionConfig(traverse_mode=mode),
    )
    table = expected_table(scene, mode)
    events = fused.events()
    assert len(events) == len(table.windows) > 0
    assert [e["data"]["window_index"] for e in events] == [w.index for w in table.windows]
    assert [list(e["data"]["lr_indices"]) for e in events] == [list(w.lr) for w in table.windows]
    (start,) = fused.of("start")
    assert start["raw_uid"] == uid and start["calibration_uid"] == calibration.uid
    assert start["traverse_mode"] == mode and start["model"]["sha256"] == "0" * 64
    (stop,) = fused.of("stop")
    assert stop["exit_status"] == "success", stop["reason"]
    image = events[0]["data"]["fused_image"]
    assert image.shape == (calibration.crop.height, calibration.crop.width)
    assert image.dtype == np.float32 and np.isfinite(image).all()
    if mode == "double":
        for e in events:
            assert e["data"]["truth_index"] >= 0 and np.isfinite(e["data"]["psnr"])
            assert np.isfinite(e["data"]["psnr_bicubic"]) and np.isfinite(e["data"]["ssim_nearest"])
    else:
        assert np.isnan(events[0]["data"]["psnr"])
    # the fused run sits in Tiled, linked to the raw run, one row per fused frame
    assert result.frames == len(events) and result.exit_status == "success"
    stored = tiled_client[result.fused_uid]
    assert stored.metadata["start"]["raw_uid"] == uid
    assert stored["fused"]["fused_image"].shape[0] == len(table.windows)
    assert tiled_client[uid].metadata["stop"]["exit_status"] == "success"


# live vs replayed from Tiled, bit for bit: tests/fusion/test_three_paths.py (with offline
# inference) and test_session.py (subscribe, run_plan, replay)


def test_inline_and_file_frames_fuse_identically(RE, cameras, tiny_model, calibration):
    from_files, inline = Collector(), Collector()
    _fuse_live(RE, cameras, tiny_model, calibration, [from_files], FusionConfig())
    _fuse_live(RE, cameras, tiny_model, calibration, [inline], FusionConfig(), inline=True)
    for ea, eb in zip(from_files.events(), inline.events(), strict=True):
        np.testing.assert_array_equal(ea["data"]["fused_image"], eb["data"]["fused_image"])


def test_corrupt_frame_fails_the_fused_run_not_the_raw_run(
    RE, cameras, tiny_model, calibration, tiled_client
):
    """A frame mangled on the fusion path: the raw run completes, the fused run fails."""
    fused, raw = Collector(), Collector()
    router = FusionSession(tiny_model, calibration, [fused], FusionConfig()).router()

    def mangling(name, doc):
        if name == "event" and doc["seq_num"] == 9 and "shimadzu_image" in doc["data"]:
            doc = {**doc, "data": {**doc["data"], "shimadzu_image": np.zeros((3, 3), np.uint16)}}
        router(name, doc)

    RE.subscribe(raw)
    RE.subscribe(make_tiled_writer(tiled_client))
    RE.subscribe(mangling)
    phantom, shimadzu = cameras(inline=True)
    (uid,) = RE(dual_camera_burst(phantom, shimadzu))
    assert raw.of("stop")[0]["exit_status"] == "success"
    assert tiled_client[uid].metadata["stop"]["exit_status"] == "success"
    n_shimadzu = len([e for e in raw.events("shimadzu")])
    assert tiled_client[uid]["shimadzu"]["shimadzu_frame_number"].read().shape[0] == n_shimadzu
    import time

    deadline = time.monotonic() + 60
    while not fused.of("stop") and time.monotonic() < deadline:
        time.sleep(0.05)
    (stop,) = fused.of("stop")
    assert stop["exit_status"] == "fail"
    assert "corrupt Shimadzu HPV-X2 frame 8" in stop["reason"]
    assert fused.of("start")[0]["raw_uid"] == uid


def test_descriptor_that_does_not_match_calibration_fails_clearly(
    RE, cameras, tiny_model, calibration
):
    from xfusion_stream.simulation import SceneConfig

    fused = Collector()
    other = SceneConfig(seed=1, shimadzu_shape=(16, 24), n_shimadzu=32)
    session = FusionSession(tiny_model, calibration, [fused], FusionConfig())
    phantom, shimadzu = cameras(inline=True, config=other)
    result = session.run_plan(dual_camera_burst(phantom, shimadzu), RE=RE, timeout=30)
    assert result.exit_status == "fail" and "calibration" in result.reason
    (stop,) = fused.of("stop")
    assert stop["exit_status"] == "fail" and "calibration" in stop["reason"]
    assert "(16, 24)" in stop["reason"] or "(64, 96)" in stop["reason"]


def test_runs_without_cameras_get_no_fused_run(RE, tiny_model, calibration):
    from bluesky.plans import count
    from ophyd.sim import det

    fused = Collector()
    session = FusionSession(tiny_model, calibration, [fused], FusionConfig())
    session.subscribe(RE)
    (uid,) = RE(count([det], num=3))
    assert fused.docs == []
    (result,) = session.results
    assert result.raw_uid == uid and result.fused_uid is None and result.exit_status is None


def test_missing_model_file_is_a_clear_error(tmp_path):
    from xfusion_stream.core import ConfigError
    from xfusion_stream.fusion import load_fusion_model

    with pytest.raises(ConfigError, match="model file not found"):
        load_fusion_model(str(tmp_path / "nope.pth"))
    with pytest.raises(ConfigError, match="unknown weights 'no_such_weights'"):
        load_fusion_model("no_such_weights")
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="corrupt.pth"):
        load_fusion_model(str(bad))


def test_event_pages_fuse_like_events(RE, cameras, tiny_model, calibration):
    """A stream that packs its events into pages (as some stores replay them) fuses the same."""
    from event_model import pack_event_page

    from xfusion_stream.fusion import FusionCallback

    raw = Collector()
    RE.subscribe(raw)
    phantom, shimadzu = cameras(inline=True)
    RE(dual_camera_burst(phantom, shimadzu))
    by_events, by_pages = Collector(), Collector()
    cb = FusionCallback(tiny_model, calibration, [by_events])
    for name, doc in raw.docs:
        cb(name, doc)
    assert cb.join(120)
    cb = FusionCallback(tiny_model, calibration, [by_pages])
    pending: list[dict] = []
    for name, doc in raw.docs:
        if name == "event" and (not pending or pending[-1]["descriptor"] == doc["descriptor"]):
            pending.append(doc)
            continue
        if pending:
            cb("event_page", pack_event_page(*pending))
            pending = []
        if name == "event":
            pending.append(doc)
        else:
            cb(name, doc)
    assert cb.join(120)
    a, b = by_events.events(), by_pages.events()
    assert len(a) == len(b) > 0
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea["data"]["fused_image"], eb["data"]["fused_image"])
