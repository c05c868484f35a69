"""Round trip: `xfusion simulate` -> recorded_experiment -> Tiled equals the files."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from xfusion_plans import dual_camera_burst, recorded_experiment

from xfusion_stream.cli._main import main as xfusion
from xfusion_stream.core import RecordedFormatError
from xfusion_stream.devices import recorded_cameras
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.recorded import read_case, read_frame


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("simulated")
    argv = ["simulate", "--out", str(out), "--frames", "24", "--shimadzu-shape", "16", "24"]
    assert xfusion([*argv, "--json"]) == 0
    return out


def test_recorded_experiment_reproduces_files_in_tiled(
    RE, doc_log, simulated, tiled_client, tmp_path
):
    case_dir = simulated / "sim_experiment"
    case = read_case(case_dir)
    RE.subscribe(make_tiled_writer(tiled_client))
    (uid,) = RE(
        recorded_experiment(
            *recorded_cameras(case_dir, data_dir=tmp_path / "raw"), md={"operator": "t"}
        )
    )
    start = doc_log.of("start")[0]
    assert start["plan_name"] == "recorded_experiment"
    assert start["recorded_case"] == str(case_dir.resolve())
    assert start["n_frames"] == {
        "phantom": case.phantom.n_frames,
        "shimadzu": case.shimadzu.n_frames,
    }

    run = tiled_client[uid]
    ph = run["phantom"]["phantom_image"][:]
    sh = run["shimadzu"]["shimadzu_image"][:]
    assert ph.shape == (case.phantom.n_frames, *case.phantom_shape)
    assert sh.shape == (case.shimadzu.n_frames, *case.shimadzu_shape)
    for i, path in enumerate(case.phantom_frames):
        np.testing.assert_array_equal(ph[i], read_frame(path))
    for k, path in enumerate(case.shimadzu_frames):
        np.testing.assert_array_equal(sh[k], read_frame(path))
    stream = run["phantom"]
    np.testing.assert_array_equal(stream["phantom_time_ns"].read(), case.phantom.times_ns)
    np.testing.assert_array_equal(stream["phantom_frame_number"].read(), case.phantom.frame_numbers)
    np.testing.assert_array_equal(stream["phantom_trigger_flag"].read(), case.phantom.e_flags)
    np.testing.assert_array_equal(
        run["shimadzu"]["shimadzu_time_ns"].read(), case.shimadzu.times_ns
    )
    desc = {d["name"]: d for d in doc_log.of("descriptor")}
    conf = desc["phantom"]["configuration"]["phantom"]["data"]
    assert conf["phantom_frame_rate_hz"] == pytest.approx(case.phantom.frame_rate_hz)
    conf = desc["shimadzu"]["configuration"]["shimadzu"]["data"]
    assert conf["shimadzu_frame_time_ns"] == case.shimadzu.frame_ns


def test_recorded_documents_look_like_a_live_burst(RE, doc_log, simulated, make_cameras, tmp_path):
    RE(
        recorded_experiment(
            *recorded_cameras(simulated / "sim_experiment", data_dir=tmp_path / "rec")
        )
    )
    recorded = _layout(doc_log.docs)
    doc_log.docs.clear()
    phantom, shimadzu, _ = make_cameras()
    RE(dual_camera_burst(phantom, shimadzu))
    assert _layout(doc_log.docs) == recorded


def _layout(docs):
    """What a consumer keys on: document kinds, streams, data and configuration keys."""
    kinds = sorted(Counter(n for n, _ in docs))
    streams = {}
    for name, doc in docs:
        if name == "descriptor":
            conf = doc["configuration"][doc["name"]]
            streams[doc["name"]] = (sorted(doc["data_keys"]), sorted(conf["data"]))
    return kinds, streams


def test_recorded_experiment_default_data_dir_is_beside_the_case(RE, simulated):
    cameras = recorded_cameras(simulated / "sim_calibration_grid")
    (uid,) = RE(recorded_experiment(*cameras, md={"calibration": "G400"}))
    raw = simulated / "sim_calibration_grid_raw"
    assert sorted(p.name.split("_")[0] for p in raw.glob("*.h5")) == ["phantom", "shimadzu"]
    read_case(simulated / "sim_calibration_grid")  # the case folder is untouched and valid


def test_malformed_case_raises_before_any_document(RE, doc_log, simulated, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(simulated / "sim_experiment", broken)
    ini = next(broken.glob("*.ini"))
    ini.write_text(ini.read_text().replace("RecSpeed=200ns", "RecSpeed=200us"))
    with pytest.raises(RecordedFormatError, match="RecSpeed"):
        recorded_cameras(broken, data_dir=tmp_path / "raw")  # before any plan runs
    assert doc_log.docs == []


def test_the_plan_takes_recorded_cameras_only(RE, doc_log, simulated, make_cameras, tmp_path):
    phantom, shimadzu, _ = make_cameras()
    with pytest.raises(ValueError, match="cameras of a recorded case"):
        RE(recorded_experiment(phantom, shimadzu))
    rec_phantom, _ = recorded_cameras(simulated / "sim_experiment", data_dir=tmp_path / "a")
    _, grid_shimadzu = recorded_cameras(simulated / "sim_calibration_grid", data_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="different cases"):
        RE(recorded_experiment(rec_phantom, grid_shimadzu))
    assert doc_log.docs == []
