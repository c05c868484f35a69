"""Fused frames stored as HDF5 beside the run, as cameras store theirs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from xfusion_stream.core import DocumentError
from xfusion_stream.documents import FilledEvents
from xfusion_stream.fusion import FusedRunComposer, FusionWorker, WindowJob
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.testing import DocumentLog, random_window_jobs

H, W = 8, 12
FRAME_KEYS = ("fused_image", "shimadzu_residual_map")


def _jobs(n: int) -> list[WindowJob]:
    return random_window_jobs(n, (H, W), seed=1, phantom_every=1)


def _fuse(model, sinks, n=5, frame_dir=None) -> FusionWorker:
    composer = FusedRunComposer(sinks, {"purpose": "fused"}, frame_dir=frame_dir)
    worker = FusionWorker(model, composer, queue_size=64, when_full="block")
    worker.start_run((4 * H, 4 * W), "fused")
    for job in _jobs(n):
        worker.submit(job)
    worker.stop_run()
    assert worker.join(60)
    return worker


def test_frames_go_to_hdf5_and_read_back_identical(tiny_model, tmp_path):
    inline = DocumentLog()
    _fuse(tiny_model, [inline])
    stored, live = DocumentLog(), DocumentLog()
    # the live reader fills each event while the file is still being written
    worker = _fuse(
        tiny_model, [stored, FilledEvents(live, data_roots=[tmp_path])], frame_dir=tmp_path
    )

    assert worker.report.frames == 5 and worker.report.stop_doc["exit_status"] == "success"
    (descriptor,) = [d for d in stored.of("descriptor") if d["name"] == "fused"]
    for key in FRAME_KEYS:
        assert descriptor["data_keys"][key]["external"] == "STREAM:"
    resources = stored.of("stream_resource")
    assert sorted(r["data_key"] for r in resources) == sorted(FRAME_KEYS)
    assert all(r["run_start"] == worker.composer.uid for r in resources)
    datums = stored.of("stream_datum")
    assert len(datums) == 2 * 5
    events = stored.events()
    assert all(not set(FRAME_KEYS) & set(e["data"]) for e in events)
    assert [e["seq_num"] for e in events] == [1, 2, 3, 4, 5]
    # every datum comes before the event it serves
    names = [name for name, _ in stored.docs]
    first_event = names.index("event", names.index("stream_datum"))
    assert names[first_event - 2 : first_event] == ["stream_datum", "stream_datum"]

    path = worker.composer.frame_file.path
    assert path.parent == tmp_path.resolve()
    with h5py.File(path, "r") as h5:  # closed before the stop: a plain reader opens it
        assert h5["/entry/data/fused_image"].shape == (5, 4 * H, 4 * W)
    for a, b in zip(inline.events(), live.events(), strict=True):
        assert set(a["data"]) == set(b["data"])
        for key in a["data"]:  # bit-identical, NaN where NaN
            np.testing.assert_array_equal(a["data"][key], b["data"][key])


def test_reader_refuses_files_outside_its_roots(tiny_model, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    stored = DocumentLog()
    _fuse(tiny_model, [stored], n=2, frame_dir=tmp_path / "fused")
    reader = FilledEvents(DocumentLog(), data_roots=[elsewhere])
    with pytest.raises(DocumentError, match="fused_image"):
        for name, doc in stored.docs:
            reader(name, doc)


def test_tiled_serves_the_stored_frames(tiny_model, tmp_path, tiled_server):
    inline = DocumentLog()
    _fuse(tiny_model, [inline], n=3)
    client = tiled_server.client()
    worker = _fuse(tiny_model, [make_tiled_writer(client)], n=3, frame_dir=tmp_path)
    run = client[worker.composer.uid]
    images = run["fused"]["fused_image"].read()
    assert images.dtype == np.float32 and images.shape == (3, 4 * H, 4 * W)
    for i, event in enumerate(inline.events()):
        np.testing.assert_array_equal(images[i], event["data"]["fused_image"])
    windows = run["fused"]["window_index"].read()
    assert list(windows) == [e["data"]["window_index"] for e in inline.events()]


def test_an_unwritable_frame_folder_fails_the_run_and_says_where(tiny_model, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    log = DocumentLog()
    worker = _fuse(tiny_model, [log], n=3, frame_dir=blocked)
    stop = worker.report.stop_doc
    assert stop["exit_status"] == "fail" and str(blocked) in stop["reason"]
    assert worker.report.frames == 0 and not log.events()
    assert [name for name, _ in log.docs] == ["start", "stop"]


def test_a_run_fused_again_under_its_uid_gets_a_file_of_its_own(tiny_model, tmp_path):
    """Crash recovery re-fuses a run under the same uid: the partial file stays."""
    first = FusedRunComposer([DocumentLog()], {"purpose": "fused"}, frame_dir=tmp_path)
    first.start((4 * H, 4 * W))
    again = FusedRunComposer(
        [DocumentLog()], {"purpose": "fused"}, uid=first.uid, frame_dir=tmp_path
    )
    again.start((4 * H, 4 * W))
    assert first.frame_file.path.name == f"fused_{first.uid}.h5"
    assert again.frame_file.path.name == f"fused_{first.uid}-r2.h5"
    first.stop()
    again.stop()


def test_every_per_frame_document_is_validated_once(tiny_model, tmp_path, monkeypatch):
    """event-model validates events and asset documents as it composes them; the
    composer does not validate them again (twice cost as much as composing), and every
    other document it validates itself."""
    from event_model import DocumentNames, schema_validators

    seen: dict[str, list[str]] = {}

    class Counted:
        def __init__(self, name, validator):
            self.name, self.validator = name, validator

        def validate(self, doc):
            seen.setdefault(self.name, []).append(doc["uid"])
            return self.validator.validate(doc)

    for name in ("start", "descriptor", "event", "stream_resource", "stream_datum", "stop"):
        key = DocumentNames[name]
        monkeypatch.setitem(schema_validators, key, Counted(name, schema_validators[key]))
    docs: list[tuple[str, dict]] = []  # a plain sink: DocumentLog validates as well
    _fuse(tiny_model, [lambda name, doc: docs.append((name, doc))], n=4, frame_dir=tmp_path)

    def uids(name):
        return [doc["uid"] for kind, doc in docs if kind == name]

    for name in ("event", "stream_datum", "stream_resource"):
        assert uids(name) and sorted(seen[name]) == sorted(uids(name)), name  # each, once
    for name in ("start", "descriptor", "stop"):
        assert uids(name) and set(uids(name)) <= set(seen[name]), name
