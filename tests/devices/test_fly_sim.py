"""A burst as a fly scan of two simulated ophyd-async detectors: the run opens before the
cameras are armed, every document validates, the cameras' files hold frames and the
per-frame NDAttributes, and the StreamDatum-only run fuses."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from xfusion_plans._fly import fly_dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.documents import StreamDatumEvents, camera_stream
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.testing import DocumentLog, expected_table


def test_fly_burst_documents_and_files(RE, fly_cameras, scene):
    phantom, shimadzu = fly_cameras
    log = DocumentLog()  # validates every document against event-model's schemas
    RE.subscribe(log)
    names: list[str] = []
    RE.msg_hook = lambda msg: names.append(msg.command)
    (uid,) = RE(fly_dual_camera_burst(phantom, shimadzu))

    assert names.index("open_run") < names.index("prepare") < names.index("kickoff")
    (start,) = log.of("start")
    assert start["uid"] == uid and start["n_frames"] == {
        "phantom": scene.n_phantom,
        "shimadzu": scene.n_shimadzu,
    }
    assert not log.of("event") and log.of("stop")[0]["exit_status"] == "success"
    streams = {d["name"]: camera_stream(d) for d in log.of("descriptor")}
    assert streams["phantom"].camera == "phantom" and streams["shimadzu"].camera == "shimadzu"
    assert streams["phantom"].flag_key == "phantom_trigger_flag"
    (path,) = {r["uri"].removeprefix("file://localhost") for r in log.of("stream_resource")
               if r["data_key"] == "phantom_image"}  # fmt: skip
    with h5py.File(path, "r") as h5:
        assert h5["/entry/data/data"].shape == (scene.n_phantom, *scene.phantom_shape)
        attrs = h5["/entry/instrument/NDAttributes"]
        np.testing.assert_array_equal(attrs["phantom_time_ns"][()], scene.phantom_times_ns())
        np.testing.assert_array_equal(
            attrs["phantom_trigger_flag"][()].astype(bool), scene.phantom_e_flags()
        )
        np.testing.assert_array_equal(h5["/entry/data/data"][2], scene.phantom_frame(2))


def test_stream_datum_events_give_one_event_per_frame(RE, fly_cameras, scene):
    phantom, shimadzu = fly_cameras
    log = DocumentLog()
    RE.subscribe(StreamDatumEvents(log))
    RE(fly_dual_camera_burst(phantom, shimadzu))

    by_stream = {d["uid"]: d["name"] for d in log.of("descriptor")}
    events = {"phantom": [], "shimadzu": []}
    for event in log.of("event"):
        events[by_stream[event["descriptor"]]].append(event)
    assert [e["seq_num"] for e in events["shimadzu"]] == list(range(1, scene.n_shimadzu + 1))
    assert [e["data"]["shimadzu_time_ns"] for e in events["shimadzu"]] == list(
        scene.shimadzu_times_ns()
    )
    assert [e["data"]["phantom_trigger_flag"] for e in events["phantom"]] == list(
        scene.phantom_e_flags()
    )
    assert [e["data"]["phantom_frame_number"] for e in events["phantom"]] == list(
        scene.phantom_frame_numbers()
    )


@pytest.mark.timeout(120)
def test_fly_burst_fuses(RE, fly_cameras, scene, tiny_model, calibration):
    phantom, shimadzu = fly_cameras
    fused = DocumentLog()
    session = FusionSession(tiny_model, calibration, [fused], FusionConfig())
    RE.subscribe(session.router())  # the router implies the events of fly-scanned streams
    (raw_uid,) = RE(fly_dual_camera_burst(phantom, shimadzu))
    result = session.wait(90)
    session.close()

    assert result is not None and result.raw_uid == raw_uid
    assert result.exit_status == "success", result.reason
    assert result.problem is None, result.problem
    assert result.frames == len(expected_table(scene, "continuous").windows) > 0


def test_stream_datum_events_read_only_inside_the_data_roots(RE, fly_cameras, scene, tmp_path):
    phantom, shimadzu = fly_cameras
    allowed, refused = DocumentLog(), DocumentLog()
    inside = StreamDatumEvents(allowed, data_roots=[tmp_path])
    nowhere = StreamDatumEvents(refused, data_roots=())  # no file access at all
    RE.subscribe(inside)
    RE.subscribe(nowhere)
    RE(fly_dual_camera_burst(phantom, shimadzu))

    assert len(allowed.of("event")) == scene.n_phantom + scene.n_shimadzu
    assert inside.rejected == 0
    assert not refused.of("event") and nowhere.rejected > 0
    assert refused.of("stop")  # every document still reaches the callback
