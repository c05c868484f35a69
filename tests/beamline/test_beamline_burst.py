"""Issue 2 acceptance: dual_camera_burst -> RunEngine -> TiledWriter -> embedded Tiled."""

from __future__ import annotations

from collections import Counter

import h5py
import numpy as np
import pytest
from event_model import DocumentNames, schema_validators
from xfusion_plans import dual_camera_burst, grid_calibration

from xfusion_stream.devices import FRAME_DATASET
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.simulation import Scene
from xfusion_stream.testing import BEAMLINE_SCENE as SMALL


def _events_in_order(log):
    """(stream, frame_number, time_ns) of every event, in emission order."""
    streams = {d["uid"]: d["name"] for d in log.of("descriptor")}
    out = []
    for doc in log.of("event"):
        stream = streams[doc["descriptor"]]
        out.append(
            (stream, doc["data"][f"{stream}_frame_number"], doc["data"][f"{stream}_time_ns"])
        )
    return out


@pytest.fixture
def burst(RE, doc_log, make_cameras, tiled_client):
    phantom, shimadzu, _ = make_cameras()
    RE.subscribe(make_tiled_writer(tiled_client, batch_size=16))
    (uid,) = RE(dual_camera_burst(phantom, shimadzu, md={"sample": "test"}))
    return uid, doc_log, tiled_client, phantom, shimadzu


def test_every_document_is_schema_valid_and_complete(burst):
    uid, log, _, _, _ = burst
    scene = Scene(SMALL)
    counts = Counter(name for name, _ in log.docs)
    n_events = scene.n_phantom + scene.n_shimadzu
    assert counts == {
        "start": 1,
        "descriptor": 2,
        "stream_resource": 2,
        "event": n_events,
        "stream_datum": n_events,
        "stop": 1,
    }
    (start,) = log.of("start")
    assert start["uid"] == uid and start["plan_name"] == "dual_camera_burst"
    assert start["n_frames"] == {"phantom": scene.n_phantom, "shimadzu": scene.n_shimadzu}
    assert start["pixel_ratio"] == 4 and start["phantom_every"] == 20
    assert start["camera_models"]["phantom"] == "Phantom TMX7510"
    assert log.of("stop")[0]["exit_status"] == "success"


def test_descriptors_carry_camera_configuration(burst):
    _, log, _, _, _ = burst
    desc = {d["name"]: d for d in log.of("descriptor")}
    assert set(desc) == {"phantom", "shimadzu"}
    ph = desc["phantom"]["configuration"]["phantom"]["data"]
    sh = desc["shimadzu"]["configuration"]["shimadzu"]["data"]
    assert ph["phantom_camera_model"] == "Phantom TMX7510"
    assert sh["shimadzu_camera_model"] == "Shimadzu HPV-X2"
    assert sh["shimadzu_frame_time_ns"] == 200.0 and ph["phantom_frame_time_ns"] == 4000.0
    assert ph["phantom_frame_rate_hz"] == pytest.approx(250_000.0)
    assert ph["phantom_frame_shape"] == [128, 192] and sh["shimadzu_frame_shape"] == [32, 48]
    image = desc["phantom"]["data_keys"]["phantom_image"]
    assert image["external"] == "STREAM:" and image["dtype_numpy"] == "<u2"
    assert image["shape"] == [128, 192]
    assert desc["phantom"]["data_keys"]["phantom_trigger_flag"]["dtype"] == "boolean"


def test_events_interleave_in_hardware_time_order(burst):
    _, log, _, _, _ = burst
    events = _events_in_order(log)
    times = [t for _, _, t in events]
    assert times == sorted(times)
    assert {s for s, _, _ in events} == {"phantom", "shimadzu"}
    # the stream changes many times: interleaved, not one camera after the other
    changes = sum(a[0] != b[0] for a, b in zip(events, events[1:]))
    assert changes >= 4


def test_stream_resources_point_at_complete_hdf5_files(burst):
    _, log, _, phantom, _ = burst
    res = {d["data_key"]: d for d in log.of("stream_resource")}
    assert set(res) == {"phantom_image", "shimadzu_image"}
    ph = res["phantom_image"]
    assert ph["mimetype"] == "application/x-hdf5"
    assert ph["parameters"]["dataset"] == FRAME_DATASET
    assert ph["uri"] == f"file://localhost{phantom.burst_path.as_posix()}"
    with h5py.File(phantom.burst_path, "r") as h5:
        assert h5[FRAME_DATASET].shape == (Scene(SMALL).n_phantom, 128, 192)
    datums = [d for d in log.of("stream_datum") if d["stream_resource"] == ph["uid"]]
    assert [d["indices"]["start"] for d in datums] == list(range(len(datums)))
    assert [d["seq_nums"]["start"] for d in datums] == list(range(1, len(datums) + 1))


def test_tiled_reads_back_both_streams_bit_identical(burst):
    uid, _, client, _, _ = burst
    scene = Scene(SMALL)
    run = client[uid]
    assert set(run) == {"phantom", "shimadzu"}
    ph = run["phantom"]["phantom_image"][:]
    sh = run["shimadzu"]["shimadzu_image"][:]
    assert ph.shape == (scene.n_phantom, 128, 192) and ph.dtype == np.uint16
    assert sh.shape == (scene.n_shimadzu, 32, 48) and sh.dtype == np.uint16
    assert ph.shape[1] == 4 * sh.shape[1] and ph.shape[2] == 4 * sh.shape[2]
    np.testing.assert_array_equal(ph[3], scene.phantom_frame(3))
    np.testing.assert_array_equal(sh[17], scene.shimadzu_frame(17))
    p_times = np.asarray(run["phantom"]["phantom_time_ns"].read())
    s_times = np.asarray(run["shimadzu"]["shimadzu_time_ns"].read())
    np.testing.assert_array_equal(p_times, scene.phantom_times_ns())
    np.testing.assert_array_equal(s_times, scene.shimadzu_times_ns())
    assert np.all(np.diff(p_times) > 0) and np.all(np.diff(s_times) > 0)
    flags = np.asarray(run["phantom"]["phantom_trigger_flag"].read())
    np.testing.assert_array_equal(flags, scene.phantom_e_flags())


def test_run_documents_replays_the_run(burst):
    uid, log, client, _, _ = burst
    replay = list(client[uid].documents())
    for name, doc in replay:
        schema_validators[DocumentNames[name]].validate(doc)
    counts = Counter(name for name, _ in replay)
    assert counts["start"] == counts["stop"] == 1
    assert counts["descriptor"] == 2 and counts["stream_resource"] == 2
    assert counts["event"] == len(log.of("event"))
    assert replay[0][1]["uid"] == uid
    replayed_desc = {d["name"]: d for n, d in replay if n == "descriptor"}
    original = {d["name"]: d for d in log.of("descriptor")}
    for stream in ("phantom", "shimadzu"):
        replayed, sent = replayed_desc[stream], original[stream]
        assert replayed["configuration"][stream]["data"] == sent["configuration"][stream]["data"]
        assert set(replayed["data_keys"]) == set(sent["data_keys"])
    frames = [
        d["indices"]["stop"] - d["indices"]["start"] for n, d in replay if n == "stream_datum"
    ]
    assert sum(frames) == counts["event"]


def test_inline_mode_puts_arrays_in_events_and_tiled(RE, doc_log, make_cameras, tiled_client):
    phantom, shimadzu, _ = make_cameras(inline=True)
    RE.subscribe(make_tiled_writer(tiled_client))
    (uid,) = RE(dual_camera_burst(phantom, shimadzu, interleave=False))
    scene = Scene(SMALL)
    assert not doc_log.of("stream_resource") and not doc_log.of("stream_datum")
    first = doc_log.of("event")[0]
    assert first["data"]["phantom_image"].shape == (128, 192)
    streams = [d["name"] for d in doc_log.of("descriptor")]
    assert streams == ["phantom", "shimadzu"]  # not interleaved: all Phantom first
    sh = tiled_client[uid]["shimadzu"]["shimadzu_image"][:]
    np.testing.assert_array_equal(sh[5], scene.shimadzu_frame(5))


def test_grid_calibration_records_the_grid_and_marks_the_run(RE, doc_log, make_cameras):
    phantom, shimadzu, beam = make_cameras(grid_frames=24)
    RE(grid_calibration(phantom, shimadzu, n_frames=20))
    (start,) = doc_log.of("start")
    assert start["plan_name"] == "grid_calibration" and start["calibration"] == "G400"
    assert start["grid_pitch_um"] == 62.0
    assert start["n_frames"] == {"phantom": 20, "shimadzu": 20}
    desc = {d["name"]: d for d in doc_log.of("descriptor")}
    assert desc["phantom"]["configuration"]["phantom"]["data"]["phantom_n_frames"] == 20
    # static grid: frames differ only by noise; the cameras are back on the sample after
    assert beam.target == "sample" and phantom.readout_limit.get() == 0
    with h5py.File(phantom.burst_path, "r") as h5:
        frames = h5[FRAME_DATASET][:].astype(float)
    assert frames.shape[0] == 20
    assert np.abs(frames[0] - frames[-1]).mean() < 0.05 * frames.mean()


def test_cameras_are_checked_by_model(RE, make_cameras):
    phantom, shimadzu, _ = make_cameras()
    with pytest.raises(ValueError, match="not a Phantom TMX7510"):
        RE(dual_camera_burst(shimadzu, phantom))
