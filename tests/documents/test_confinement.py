"""Issue 13 item 1: files named by documents are read only inside the data roots.

A StreamResource/Resource from the wire chooses its URI and dataset: every way out of
the roots (host part, ``..``, symlinks, other schemes, HDF5 external links, virtual or
external storage) is refused with a DocumentError naming the document, a FIFO never
blocks, a refusal never tells whether a file outside the roots exists, and a dataset
must be (frames, rows, cols) of the shape and dtype the descriptor declares.
"""

from __future__ import annotations

import os
import threading

import h5py
import numpy as np
import pytest

from xfusion_stream.core import DocumentError
from xfusion_stream.documents import FrameFiller

FRAMES = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
DESCRIPTOR = {
    "uid": "d1",
    "data_keys": {
        "cam_image": {"dtype": "array", "shape": [4, 5], "dtype_numpy": "<u2", "source": "sim"}
    },
}


def _h5(path, data=FRAMES, name="/entry/data/data"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5[name] = data
    return path


@pytest.fixture
def tree(tmp_path):
    """root/ holds the good file; outside/ a file that must never be readable."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    _h5(root / "frames.h5")
    _h5(outside / "secret.h5")
    return root, outside


def _filler(uri, roots, dataset="/entry/data/data", descriptor=DESCRIPTOR, tiled=None):
    filler = FrameFiller(tiled, data_roots=roots)
    filler.descriptor(descriptor)
    params = {} if dataset is None else {"dataset": dataset}
    filler.stream_resource(
        {"uid": "sr1", "uri": uri, "data_key": "cam_image", "parameters": params}
    )
    filler.stream_datum(
        {
            "uid": "sd1",
            "stream_resource": "sr1",
            "descriptor": "d1",
            "seq_nums": {"start": 1, "stop": 4},
            "indices": {"start": 0, "stop": 3},
        }
    )
    return filler


def _read(uri, roots, **kwargs):
    filler = _filler(uri, roots, **kwargs)
    try:
        return filler.frame("d1", "primary", "cam_image", {"uid": "e", "seq_num": 2, "data": {}}, 1)
    finally:
        filler.close()


def _refusal(uri, roots, **kwargs) -> str:
    with pytest.raises(DocumentError) as info:
        _read(uri, roots, **kwargs)
    assert info.value.doc_name == "stream_resource" and info.value.uid == "sr1"
    return str(info.value)


def test_a_file_inside_the_roots_is_read(tree):
    root, _ = tree
    for uri in (
        f"file://localhost{root}/frames.h5",
        f"file://{root}/frames.h5",
        f"{root}/frames.h5",
    ):
        np.testing.assert_array_equal(_read(uri, [root]), FRAMES[1])


@pytest.mark.parametrize(
    "uri, why",
    [
        ("file://beamline-pc/{outside}/secret.h5", "remote host"),
        ("file://user@localhost/{outside}/secret.h5", "remote host"),
        ("http://127.0.0.1/{outside}/secret.h5", "not a file URI"),
        ("tiled://x/{outside}/secret.h5", "not a file URI"),
        ("file://localhost{root}/frames.h5?x=1", "query"),
        ("frames.h5", "not an absolute path"),
    ],
)
def test_hosts_schemes_and_relative_paths_are_refused(tree, uri, why):
    root, outside = tree
    assert why in _refusal(uri.format(root=root, outside=outside), [root])


def test_outside_missing_and_escaping_paths_read_the_same(tree, tmp_path):
    """The message never says whether a file outside the roots exists."""
    root, outside = tree
    (root / "link.h5").symlink_to(outside / "secret.h5")
    (root / "dirlink").symlink_to(outside)
    uris = [
        f"file://localhost{outside}/secret.h5",  # exists, outside
        f"file://localhost{outside}/missing.h5",  # missing, outside
        f"file://localhost{root}/missing.h5",  # missing, inside
        f"file://localhost{root}/../outside/secret.h5",  # .. out of the root
        f"file://localhost{root}/link.h5",  # a symlink out of the root
        f"file://localhost{root}/dirlink/secret.h5",  # through a linked folder
        f"file://localhost{root}-evil/secret.h5",  # a sibling sharing the root's prefix
        "file://localhost/etc/passwd",
        "file://localhost/nul\x00byte",
    ]
    messages = {_refusal(uri, [root]).replace(repr(uri[:200]), "<uri>") for uri in uris}
    assert len(messages) == 1, messages
    (message,) = messages
    assert "inside the data roots" in message and str(outside) not in message


def test_a_fifo_never_blocks(tree):
    root, outside = tree
    os.mkfifo(root / "pipe.h5")
    os.mkfifo(outside / "pipe.h5")
    results: list[str] = []

    def probe() -> None:
        results.append(_refusal(f"file://localhost{root}/pipe.h5", [root]))
        results.append(_refusal(f"file://localhost{outside}/pipe.h5", [root]))
        results.append(_refusal(f"file://localhost{root}/pipe.h5", None))  # trusted mode too

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "opening a FIFO blocked"
    assert "not a regular file" in results[0] and "inside the data roots" in results[1]
    assert "not a regular file" in results[2]


def test_no_roots_means_no_file_and_none_trusts_local_paths(tree):
    root, outside = tree
    assert "file access is off" in _refusal(f"file://localhost{root}/frames.h5", ())
    np.testing.assert_array_equal(_read(f"file://localhost{outside}/secret.h5", None), FRAMES[1])
    assert "remote host" in _refusal(f"file://elsewhere{outside}/secret.h5", None)


@pytest.mark.parametrize(
    "dataset, why",
    [
        ("/entry/../entry/data/data", "plain HDF5 path"),
        ("/entry/data/data\x00", "plain HDF5 path"),
        ("entry data", "plain HDF5 path"),
        (["/entry/data/data"], "plain HDF5 path"),
        ("/entry/missing", "not in the file"),
        ("/entry/data", "not a dataset"),
    ],
)
def test_dataset_paths_are_plain_and_present(tree, dataset, why):
    root, _ = tree
    assert why in _refusal(f"{root}/frames.h5", [root], dataset=dataset)


def test_datasets_that_lead_to_other_files_are_refused(tree):
    root, outside = tree
    with h5py.File(root / "links.h5", "w") as h5:
        h5["/entry/data/data"] = FRAMES
        h5["/entry/soft"] = h5py.SoftLink("/entry/data/data")
        h5["/entry/ext"] = h5py.ExternalLink(str(outside / "secret.h5"), "/entry/data/data")
        h5["/extgroup"] = h5py.ExternalLink(str(outside / "secret.h5"), "/entry")
        layout = h5py.VirtualLayout(shape=FRAMES.shape, dtype=FRAMES.dtype)
        layout[:] = h5py.VirtualSource(str(outside / "secret.h5"), "/entry/data/data", FRAMES.shape)
        h5.create_virtual_dataset("/entry/virtual", layout)
        h5.create_dataset(
            "/entry/raw", shape=FRAMES.shape, dtype="<u2", external=[(str(outside / "raw"), 0, 120)]
        )
    uri = f"{root}/links.h5"
    np.testing.assert_array_equal(_read(uri, [root], dataset="/entry/soft"), FRAMES[1])
    assert "another file" in _refusal(uri, [root], dataset="/entry/ext")
    assert "another file" in _refusal(uri, [root], dataset="/extgroup/data/data")
    assert "other files" in _refusal(uri, [root], dataset="/entry/virtual")
    assert "other files" in _refusal(uri, [root], dataset="/entry/raw")


@pytest.mark.parametrize(
    "data, why",
    [
        (FRAMES.astype(np.float32), "descriptor says uint16"),
        (np.zeros((3, 4, 6), np.uint16), "descriptor says (4, 5)"),
        (np.zeros((4, 5), np.uint16), "not (frames, rows, cols)"),
        (np.array([b"a", b"b"]), "not (frames, rows, cols)"),
    ],
)
def test_the_dataset_must_match_the_descriptor(tmp_path, data, why):
    root = tmp_path / "root"
    _h5(root / "odd.h5", data=data)
    assert why in _refusal(f"{root}/odd.h5", [root])


def test_rows_outside_the_dataset_are_refused(tree):
    root, _ = tree
    filler = _filler(f"{root}/frames.h5", [root])
    filler.stream_datum(
        {
            "uid": "sd2",
            "stream_resource": "sr1",
            "descriptor": "d1",
            "seq_nums": {"start": 4, "stop": 6},
            "indices": {"start": 3, "stop": 5},
        }
    )
    with pytest.raises(DocumentError, match="outside its 3 frames"):
        filler.frame("d1", "s", "cam_image", {"uid": "e", "seq_num": 4, "data": {}}, 3)
    with pytest.raises(DocumentError, match="outside its 3 frames"):
        filler.stream_datum_frames(
            {"uid": "x", "stream_resource": "sr1", "indices": {"start": 2, "stop": 9}}
        )
    with pytest.raises(DocumentError, match="indices, or seq_nums|indices or seq_nums"):
        filler.stream_datum(
            {
                "uid": "sd3",
                "stream_resource": "sr1",
                "descriptor": "d1",
                "seq_nums": {"start": 1, "stop": 2},
                "indices": {"start": -1, "stop": 0},
            }
        )
    filler.close()


def test_legacy_resources_are_confined_too(tree):
    root, outside = tree
    filler = FrameFiller(data_roots=[root])
    for uid, folder, name in (("in", root, "frames.h5"), ("out", outside, "secret.h5")):
        filler.resource({"uid": uid, "spec": "AD_HDF5", "root": str(folder), "resource_path": name})
        filler.datum({"datum_id": f"{uid}/1", "resource": uid, "datum_kwargs": {"point_number": 1}})
    event = {"uid": "e", "seq_num": 2, "data": {"cam_image": "in/1"}}
    np.testing.assert_array_equal(filler.frame("d", "s", "cam_image", event, 1), FRAMES[1])
    with pytest.raises(DocumentError, match="inside the data roots") as info:
        filler.frame("d", "s", "cam_image", {**event, "data": {"cam_image": "out/1"}}, 1)
    assert info.value.doc_name == "resource" and info.value.uid == "out"
    with pytest.raises(DocumentError, match="unknown resource"):
        filler.datum({"datum_id": "x/1", "resource": "nope", "datum_kwargs": {}})
    filler.close()


def test_a_uri_is_resolved_once_per_stream_resource_and_refusals_every_time(tree, monkeypatch):
    """The live path reads one frame per event from one open file: its uri is checked
    when first read, not again per event; a refused uri is refused on every read."""
    import xfusion_stream.documents._filler as filler_module

    root, outside = tree
    calls: list[str] = []
    real = filler_module.path_of_uri

    def counted(uri, *args):
        calls.append(uri)
        return real(uri, *args)

    monkeypatch.setattr(filler_module, "path_of_uri", counted)
    filler = _filler(f"{root}/frames.h5", [root])
    for seq in (1, 2, 3):
        event = {"uid": f"e{seq}", "seq_num": seq, "data": {}}
        frame = filler.frame("d1", "s", "cam_image", event, seq - 1)
        np.testing.assert_array_equal(frame, FRAMES[seq - 1])
    assert len(calls) == 1
    # the same resource announced again is checked again at its next read
    filler.stream_resource(
        {"uid": "sr1", "uri": f"{root}/frames.h5", "data_key": "cam_image", "parameters": {}}
    )
    filler.frame("d1", "s", "cam_image", {"uid": "e", "seq_num": 1, "data": {}}, 0)
    assert len(calls) == 2
    filler.close()

    calls.clear()
    filler = _filler(f"{outside}/secret.h5", [root])
    for _ in range(2):
        with pytest.raises(DocumentError, match="refusing"):
            filler.frame("d1", "s", "cam_image", {"uid": "e", "seq_num": 1, "data": {}}, 0)
    assert len(calls) == 2
    filler.close()


def test_when_tiled_cannot_stand_in_both_reasons_are_named(tree):
    """Replay reads frames from Tiled where the files are refused or missing; when Tiled
    fails too, the user saw Tiled's HTTP 500 (or a bare IndexError) in place of the
    refusal, naming neither the document nor the cause."""
    root, outside = tree

    def tiled(stream, key, index):  # a stand-in for Tiled's copy: its frames end early
        raise IndexError(f"index {index} is out of bounds for axis 0 with size 1")

    filler = _filler(f"file://localhost{outside / 'secret.h5'}", [root], dataset=None, tiled=tiled)
    event = {"uid": "ev2", "seq_num": 2, "data": {}}
    with pytest.raises(DocumentError) as info:
        filler.frame("d1", "primary", "cam_image", event, 1)
    message = str(info.value)
    assert info.value.doc_name == "event" and info.value.uid == "ev2"
    assert "inside the data roots" in message and "frame 1 of primary/cam_image in Tiled" in message
    assert "IndexError" in message
    filler.close()


def test_a_filler_of_a_finished_run_forgets_its_assets(tree):
    """A fusion session keeps each run's callback for its result: the filler's tables of
    a finished run stayed in memory for the life of ``xfusion serve`` (300000 datums
    were 300 MiB)."""
    root, _ = tree
    filler = _filler(f"file://localhost{root / 'frames.h5'}", [root])
    event = {"uid": "e", "seq_num": 2, "data": {}}
    np.testing.assert_array_equal(filler.frame("d1", "primary", "cam_image", event, 1), FRAMES[1])
    filler.forget()
    with pytest.raises(DocumentError, match="no data and no asset"):
        filler.frame("d1", "primary", "cam_image", event, 1)
