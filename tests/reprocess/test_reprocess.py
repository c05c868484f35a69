"""Issue 16: `xfusion reprocess` fuses stored raw runs on a real Dask LocalCluster
(2 processes), one of them split in window ranges across both workers, bit-identical to
a serial replay; skips what is already fused, and reports a failing run while the others
land. The model reaches the workers as a checkpoint path + sha256, the calibration as the
record's content; the workers read the raw HDF5 files from a shared folder."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from xfusion_plans import dual_camera_burst

from xfusion_stream.app import (
    FusionSession,
    RunSelection,
    close_run_engine,
    new_run_engine,
    resolve_model,
    select_raw_runs,
    stop_task_profiler,
)
from xfusion_stream.calibration import CalibrationRecord
from xfusion_stream.cli import main
from xfusion_stream.core import HEAP_ENV, ConfigError
from xfusion_stream.fusion import FusionConfig, load_fusion_model
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.simulation import Scene, SceneConfig
from xfusion_stream.testing import DocumentLog, sim_cameras

# the fusion room's scene, cut to 12 Shimadzu frames: seconds per replay on 2 cores
SCENE = SceneConfig(seed=5, shimadzu_shape=(24, 40), n_shimadzu=12)
# the same cameras and calibration, a burst long enough to be split (--split-windows 12)
LONG = SceneConfig(seed=5, shimadzu_shape=(24, 40), n_shimadzu=30)
SPLIT = "12"


@pytest.fixture(scope="module")
def campaign(tiled_server, tmp_path_factory):
    """A tiny checkpoint, the true calibration record, three raw runs and one raw run
    without camera streams, all stored in the session's Tiled."""
    from bluesky.plans import count
    from ophyd.sim import det

    import xfusion_models as xm

    folder = tmp_path_factory.mktemp("reprocess")
    torch.manual_seed(3)
    checkpoint = folder / "tiny.pth"
    xm.save_checkpoint(xm.edvr_stf("tiny"), checkpoint)
    scene = Scene(SCENE)
    record = CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )
    record.save(folder / "calibration.json")
    since = time.time()
    RE = new_run_engine()  # noqa: N806 - bluesky's name
    try:
        RE.subscribe(make_tiled_writer(tiled_server.client()))
        phantom, shimadzu, _ = sim_cameras(SCENE, folder / "raw")
        good = [
            RE(dual_camera_burst(phantom, shimadzu, md={"sample": f"s{i}"}))[0] for i in range(2)
        ]
        phantom, shimadzu, _ = sim_cameras(LONG, folder / "raw-long")
        good.append(RE(dual_camera_burst(phantom, shimadzu, md={"sample": "long"}))[0])
        (bad,) = RE(count([det], num=2))  # no camera stream: nothing to fuse
    finally:
        close_run_engine(RE)
    return {
        "folder": folder,
        "checkpoint": checkpoint,
        "calibration": folder / "calibration.json",
        "record": record,
        "good": good,
        "bad": bad,
        "since": since,
    }


def _reprocess(tiled_server, campaign, uids, capsys, *extra: str) -> tuple[int, dict]:
    argv = ["reprocess", "--tiled-uri", tiled_server.uri, "--workers", "2", "--json"]
    argv += ["--calibration", str(campaign["calibration"]), "--quiet"]
    argv += ["--model_file", str(campaign["checkpoint"]), "--timeout", "120"]
    argv += ["--split-windows", SPLIT, *extra]
    for uid in uids:
        argv += ["--uid", uid]
    code = main(argv)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _stored_frames(client, fused_uid: str) -> dict[int, np.ndarray]:
    fused = client[fused_uid]["fused"]
    index = fused["shimadzu_index"].read()
    images = fused["fused_image"].read()
    return {int(i): np.asarray(image) for i, image in zip(index, images, strict=True)}


@pytest.mark.timeout(240)  # a frozen worker fails the test instead of blocking the suite
def test_a_local_cluster_fuses_like_serial_replay_skips_on_rerun_and_reports_failures(
    tiled_server, tiled_client, campaign, capsys, tmp_path
):
    good, bad = campaign["good"], campaign["bad"]
    frames_dir = tmp_path / "fused"  # workers write HDF5 here, Tiled serves it
    # the workers read the raw HDF5 files directly (a shared folder), serial replay
    # below through Tiled: the same frames either way
    code, out = _reprocess(
        tiled_server, campaign, [*good, bad], capsys,
        "--fused-data-dir", str(frames_dir), "--data-root", str(campaign["folder"]),
    )  # fmt: skip
    assert code == 1 and out["ok"] is False  # one run failed: the command says so
    assert out["workers"] == 2 and out["runs"] == 4 and out["runs_fused"] == 3, json.dumps(
        out["failed"]
    )
    (failed,) = out["failed"]
    assert failed["raw_uid"] == bad and failed["attempts"] == 2
    assert "nothing was fused" in failed["problem"] and bad in out["error"]
    by_raw = {r["raw_uid"]: r for r in out["fused"]}
    assert set(by_raw) == set(good)
    # the long run's windows went out in ranges of 12 to both workers; the short ones
    # were fused whole by the worker that took them
    long_run = by_raw[good[2]]
    ranges = long_run["window_ranges"]
    assert len(ranges) >= 3 and all(last - first < 12 for first, last, _ in ranges)
    assert sorted(i for first, last, _ in ranges for i in range(first, last + 1)) == list(
        range(long_run["frames_fused"])
    )
    assert len({worker for _, _, worker in ranges}) == 2
    assert all("window_ranges" not in by_raw[uid] for uid in good[:2])
    assert out["frames_fused"] == sum(r["frames_fused"] for r in out["fused"]) > 0

    # every fused run is in Tiled, frame for frame what a serial replay makes
    model = load_fusion_model(str(campaign["checkpoint"]))
    for uid in good:
        fused_uid = by_raw[uid]["fused_uid"]
        start = tiled_client[fused_uid].metadata["start"]
        assert start["raw_uid"] == uid and start["model"]["sha256"] == model.sha256
        log = DocumentLog()
        session = FusionSession(model, campaign["record"], [log], FusionConfig())
        try:
            serial = session.replay(tiled_client, uid, timeout=120)
        finally:
            session.close()
        assert serial.ok and serial.frames == by_raw[uid]["frames_fused"]
        stored = _stored_frames(tiled_client, fused_uid)
        expected = {e["data"]["shimadzu_index"]: e["data"]["fused_image"] for e in log.events()}
        assert stored.keys() == expected.keys()
        for index, image in expected.items():
            np.testing.assert_array_equal(stored[index], image, err_msg=f"{uid} frame {index}")

    assert sorted(p.name for p in frames_dir.glob("fused_*.h5")) == sorted(
        f"fused_{by_raw[uid]['fused_uid']}.h5" for uid in good
    )

    # again: all three are fused alike already, so nothing is submitted (no cluster)
    code, again = _reprocess(tiled_server, campaign, good, capsys)
    assert code == 0 and again["ok"] is True and again["runs_skipped"] == 3
    assert again["runs_fused"] == 0 and again["workers"] == 0
    assert {s["fused_uid"] for s in again["skipped"]} == {by_raw[u]["fused_uid"] for u in good}


def test_reprocess_workers_run_without_the_task_profiler():
    """The Dask task profiler samples sys._current_frames() every 10 ms; on CPython
    3.11.7 a GC pass inside it can freeze a worker for good (stop_task_profiler)."""
    from xfusion_stream.app._reprocess import _Cluster

    cluster = _Cluster(None, 1)
    try:
        callbacks = cluster.client.run(lambda dask_worker: sorted(dask_worker.periodic_callbacks))
        assert callbacks and all("profile" not in names for names in callbacks.values())
        assert set(cluster.client.run(stop_task_profiler).values()) == {False}
        # the heap policy is in the environment the worker process started with (glibc
        # reads it then), not only set inside it afterwards
        started_with = cluster.client.run(_environment_at_start)
        for environ in started_with.values():
            assert all(environ.get(k) == v for k, v in HEAP_ENV.items()), environ
    finally:
        cluster.close()


def _environment_at_start() -> dict[str, str]:
    with open("/proc/self/environ", "rb") as fh:
        items = fh.read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in items if b"=" in item)


def test_stop_task_profiler_stops_a_running_one():
    class Callback:
        def __init__(self) -> None:
            self.running = True

        def is_running(self) -> bool:
            return self.running

        def stop(self) -> None:
            self.running = False

    class Worker:
        periodic_callbacks = {"profile": Callback(), "profile-cycle": Callback(), "x": Callback()}

    worker = Worker()
    assert stop_task_profiler(worker) is True
    assert [c.running for c in worker.periodic_callbacks.values()] == [False, False, True]
    assert stop_task_profiler(worker) is False


def test_a_query_selects_the_raw_runs_only(tiled_client, campaign):
    query = RunSelection(plan_name="dual_camera_burst", since=campaign["since"])
    assert select_raw_runs(tiled_client, query) == campaign["good"]
    one = RunSelection(sample="s1", since=campaign["since"])
    assert select_raw_runs(tiled_client, one) == [campaign["good"][1]]
    both = RunSelection(uids=(campaign["bad"], campaign["bad"]), sample="s0")
    assert select_raw_runs(tiled_client, both) == [campaign["bad"], campaign["good"][0]]
    with pytest.raises(ConfigError, match="no raw run selected"):
        select_raw_runs(tiled_client, RunSelection(sample="no such sample"))


def test_models_travel_by_reference(campaign):
    ref = resolve_model(campaign["checkpoint"])
    assert ref.spec == str(campaign["checkpoint"].resolve()) and len(ref.sha256) == 64
    assert ref.sha256 == load_fusion_model(ref.spec).sha256
    with pytest.raises(ConfigError, match="not found"):
        resolve_model("nowhere/tiny.pth")
    with pytest.raises(ConfigError, match="unknown weights"):
        resolve_model("no_such_weights")


def test_a_fused_run_marked_with_rows_twice_is_not_fused_already():
    """``fused_already`` on a stand-in catalog (a unit test of the selection only): the
    same model, calibration and mode, stopped with success, is skipped unless the Tiled
    sink marked it as holding rows twice."""
    from xfusion_stream.app import ModelReference, ReprocessJob, fused_already
    from xfusion_stream.publishing import DOUBLED_KEY

    job = ReprocessJob(
        tiled_uri="http://127.0.0.1:1", uid="raw-1",
        model=ModelReference("m.pth", "m", "abc"), calibration={"uid": "cal-1"},
    )  # fmt: skip
    good = {
        "start": {"purpose": "fused", "model": {"sha256": "abc"}, "calibration_uid": "cal-1",
                  "traverse_mode": "continuous"},
        "stop": {"exit_status": "success", "num_events": {"fused": 8, "gaps": 0}},
    }  # fmt: skip

    class Run:
        def __init__(self, metadata: dict, streams=("fused", "gaps")) -> None:
            self.metadata, self.streams = metadata, streams

        def __iter__(self):
            return iter(self.streams)

    class Catalog:
        def __init__(self, runs: dict) -> None:
            self.runs = runs

        def search(self, query):
            return self

        def items(self):
            return list(self.runs.items())

    assert fused_already(Catalog({"f1": Run(good)}), job) == "f1"
    doubled = {**good, DOUBLED_KEY: "fused/internal: 2 of 8 rows"}
    assert fused_already(Catalog({"f1": Run(doubled)}), job) is None
    assert fused_already(Catalog({"f1": Run(doubled), "f2": Run(good)}), job) == "f2"
    # a run that holds no fused frames is no reason to skip (one written start + stop
    # with the right model and calibration made reprocess report the raw run as done)
    for stop in ({"exit_status": "success"}, {**good["stop"], "num_events": {"fused": 0}}):
        assert fused_already(Catalog({"f1": Run({**good, "stop": stop})}), job) is None
    assert fused_already(Catalog({"f1": Run(good, streams=("gaps",))}), job) is None


@pytest.mark.parametrize("announced", [[7, 24], "24", {"shimadzu": "24"}, {"shimadzu": -3}, None])
def test_a_frame_count_the_start_does_not_say_plainly_is_unknown(announced):
    """``n_frames: [7, 24]`` in a raw run's start was an AttributeError traceback that
    ended a whole ``--plan-name`` reprocess; unknown, the run is split and fused."""
    from xfusion_stream.app._reprocess import _shimadzu_frames

    class Run:
        metadata = {"start": {"n_frames": announced}}

    assert _shimadzu_frames({"raw": Run()}, "raw") is None
    Run.metadata = {"start": {"n_frames": {"shimadzu": 24, "phantom": 7}}}
    assert _shimadzu_frames({"raw": Run()}, "raw") == 24
