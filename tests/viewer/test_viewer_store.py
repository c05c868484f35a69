"""The live viewer without a browser: PNG panels, the bounded store, the document feed
(hostile documents included), the JSON and PNG endpoints, and a growing run in Tiled."""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest

from xfusion_stream.app import (
    FrameStore,
    TiledSource,
    ViewerFeed,
    ViewerServer,
    nearest_phantom,
    viewer_schema,
)
from xfusion_stream.app._viewer_store import DisplayScale, encode_panel
from xfusion_stream.fusion import FusedFrame, FusedRunComposer

SHAPE = (16, 24)
SCHEMA = viewer_schema(4)


def _frame(i: int, *, image: np.ndarray | None = None) -> FusedFrame:
    rng = np.random.default_rng(i)
    values = {
        "fused_image": rng.random(SHAPE, dtype=np.float32) if image is None else image,
        "window_index": i,
        "shimadzu_index": i + 1,
        "shimadzu_time_ns": 200 * (i + 1),
        "lr_indices": (i, i + 1, i + 2),
        "hr_indices": (0, 1),
        "truth_index": -1,
        "attention": np.full(5, 0.2, np.float32),
        "shimadzu_residual_rms": 1.0 + 0.01 * i,
        "shimadzu_registered": rng.random((4, 6), dtype=np.float32),
        "phantom_nearest": rng.random(SHAPE, dtype=np.float32),
        "phantom_nearest_index": 0,
    }
    return FusedFrame(values, SCHEMA)


def _run_documents(n: int, **frames: np.ndarray) -> list[tuple[str, dict]]:
    """A fused run of ``n`` frames as the composer emits it (validated documents)."""
    docs: list[tuple[str, dict]] = []
    composer = FusedRunComposer(
        [lambda name, doc: docs.append((name, doc))],
        {"purpose": "fused", "raw_uid": "r" * 36, "traverse_mode": "continuous"},
        schema=SCHEMA,
    )
    composer.start(SHAPE)
    for i in range(n):
        composer.event(_frame(i, image=frames.get(str(i))), time.time())
    composer.gap(n, n + 1, time.time())
    composer.stop()
    return docs


def _decoded(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)


def test_panels_are_pngs_and_non_finite_pixels_are_marked_not_fatal():
    image = np.linspace(0, 1, 12 * 8, dtype=np.float32).reshape(12, 8)
    png, bad = encode_panel(image, DisplayScale())
    assert bad == 0 and _decoded(png).shape == (12, 8)
    image[0, 0], image[1, 1], image[2, 2] = np.nan, np.inf, -np.inf
    png, bad = encode_panel(image, DisplayScale.of(image))
    rgb = _decoded(png)
    assert bad == 3 and rgb.shape == (12, 8, 3)
    assert tuple(rgb[0, 0]) == tuple(rgb[1, 1]) == (255, 0, 255)
    all_nan = np.full((4, 4), np.nan)
    assert encode_panel(all_nan, DisplayScale.of(all_nan))[1] == 16
    for not_an_image in (np.zeros(5), np.zeros((0, 3)), np.array([["a"]]), np.zeros((9000, 2))):
        with pytest.raises(ValueError):
            encode_panel(not_an_image, DisplayScale())


def test_store_keeps_the_newest_panels_and_every_frames_numbers():
    store = FrameStore(max_frames=3, max_rows=8)
    store.begin_run({"uid": "u"})
    for i in range(10):
        assert store.add_frame(SCHEMA.event_data(_frame(i))) == i + 1
    state = store.state()
    assert state["count"] == 10 and state["kept"] == [8, 10]
    assert store.png(7, "fused") is None and store.png(10, "fused").startswith(b"\x89PNG")
    assert store.frame_info(10)["panels"] == ["fused", "phantom", "shimadzu"]
    # rows beyond max_rows go, the oldest half at a time; ``since`` reads only new rows
    rows = state["series"]["shimadzu_residual_rms"]
    assert state["first_row"] + len(rows) == 10 and len(rows) <= 8
    assert rows[-1] == pytest.approx(1.09)
    assert store.state(since=9)["series"]["window_index"] == [9]
    titles = [g["title"] for g in state["groups"]]
    assert titles[0].startswith("fidelity") and "TSA attention per input" in titles
    assert all("index" not in k for g in state["groups"] for k in g["keys"])
    assert state["series"]["psnr"][-1] is None  # NaN in the event: JSON null, not NaN


def test_feed_shows_the_run_its_frames_gaps_and_stop():
    store = FrameStore()
    feed = ViewerFeed(store)
    docs = _run_documents(4)
    for name, doc in docs:
        feed(name, doc)
    state = store.state()
    assert feed.rejected == 0 and state["count"] == 4 and state["gaps"] == 1
    run = state["run"]
    assert run["status"] == "success" and run["uid"] == docs[0][1]["uid"]
    assert run["raw_uid"] == "r" * 36 and run["traverse_mode"] == "continuous"
    info = store.frame_info(4)
    assert info["shimadzu_index"] == 4 and info["phantom_index"] == 0


def test_feed_joins_mid_run_and_survives_hostile_documents():
    store = FrameStore()
    feed = ViewerFeed(store)
    docs = _run_documents(3, **{"1": np.full(SHAPE, np.nan, np.float32)})
    events = [(n, d) for n, d in docs if n == "event"]
    hostile = [
        ("event", "not a dict"),
        ("event", {"descriptor": "x"}),
        ("event", {"descriptor": "x", "data": "text"}),
        ("event_page", {"descriptor": "x", "seq_num": [1, 2], "data": {"fused_image": [1]}}),
        ("start", {"uid": 5}),
        ("stop", {}),
        ("descriptor", {"uid": "d"}),
        ("nonsense", {}),
        ("event", {"descriptor": "x", "seq_num": 1, "data": {"fused_image": np.zeros(3)}}),
        ("event", {"descriptor": "x", "seq_num": 1, "data": {"fused_image": [[1, "a"]]}}),
    ]
    for name, doc in [*hostile[:4], *events, *hostile[4:]]:
        feed(name, doc)
    state = store.state()
    assert state["run"]["joined_late"] is True and state["count"] == 5
    assert feed.rejected == 8
    assert store.frame_info(2)["nonfinite"] == {"fused": SHAPE[0] * SHAPE[1]}
    assert "fused" in store.frame_info(4)["problems"]  # a 1-D "image": named, not shown
    feed(*docs[-1])  # the stop of the run it joined
    assert store.state()["run"]["status"] == "success"


def test_nearest_phantom_is_the_held_out_frame_or_the_input_before():
    class Job:
        hr = (3, 4)
        hr_frames = ("before", "after")
        truth_index, truth = -1, None

    assert nearest_phantom(Job()) == (3, "before")
    Job.truth_index, Job.truth = 7, "held"
    assert nearest_phantom(Job()) == (7, "held")


def _get(url: str) -> tuple[int, str, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, reply.headers["content-type"], reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["content-type"], b""


def test_endpoints_serve_the_page_state_and_pngs_over_http():
    import json

    store = FrameStore()
    feed = ViewerFeed(store)
    for name, doc in _run_documents(2):
        feed(name, doc)
    with ViewerServer(store, "127.0.0.1", 0) as server:
        assert server.wait_started() and server.url.startswith("http://127.0.0.1:")
        status, _, body = _get(server.url)
        page = body.decode()
        assert status == 200
        for element in (
            "frame-count",
            "panel-fused",
            "panel-shimadzu",
            "panel-phantom",
            "scrubber",
        ):
            assert f'id="{element}"' in page
        assert "http" not in page.split("<script>")[1]  # nothing fetched from elsewhere
        state = json.loads(_get(server.url + "api/state?since=1")[2])
        assert state["count"] == 2 and state["since"] == 1
        assert all(math.isfinite(v) for v in state["series"]["window_index"])
        assert _get(server.url + "api/state?since=x")[0] == 400
        assert json.loads(_get(server.url + "api/frame/2")[2])["number"] == 2
        status, kind, png = _get(server.url + "frame/2/shimadzu.png")
        assert kind == "image/png" and _decoded(png).shape == (4, 6)
        for missing in (
            "frame/3/fused.png",
            "frame/1/other.png",
            "frame/x/fused.png",
            "api/frame/9",
        ):
            assert _get(server.url + missing)[0] == 404


def test_tiled_source_reads_a_fused_run_as_it_is_written(tiled_client):
    from xfusion_stream.publishing import make_tiled_writer

    writer = make_tiled_writer(tiled_client)
    composer = FusedRunComposer([writer], {"purpose": "fused", "raw_uid": "r"}, schema=SCHEMA)
    composer.start(SHAPE)
    for i in range(3):
        composer.event(_frame(i), time.time())
    store = FrameStore()
    source = TiledSource(tiled_client, composer.uid, ViewerFeed(store), interval=0.2)
    try:
        assert source.ready.wait(60)
        assert store.state()["run"]["status"] == "running"
        composer.stop()
        assert source.done.wait(120), source.error
    finally:
        source.close()
    state = store.state()
    assert state["count"] == 3 and state["run"]["status"] == "success"
    assert store.frame_info(3)["panels"] == ["fused", "phantom", "shimadzu"]
    assert state["series"]["shimadzu_index"] == [1, 2, 3]
    assert state["series"]["attention[lr_prev]"] == pytest.approx([0.2] * 3)


def test_view_command_shows_a_stored_run_whose_frames_are_hdf5(tiled_server, tmp_path, capsys):
    """``xfusion view --tiled-uri URI --uid UID`` (the README's command) on a fused run
    stored the facility way: frames in an HDF5 file that Tiled serves."""
    import json

    from xfusion_stream.cli import main
    from xfusion_stream.publishing import make_tiled_writer

    client = tiled_server.client()
    writer = make_tiled_writer(client)
    composer = FusedRunComposer(
        [writer], {"purpose": "fused", "raw_uid": "r"}, schema=SCHEMA, frame_dir=tmp_path
    )
    composer.start(SHAPE)
    for i in range(3):
        composer.event(_frame(i), time.time())
    composer.stop()
    argv = ["view", "--tiled-uri", tiled_server.uri, "--uid", composer.uid, "--poll", "0.2"]
    assert main([*argv, "--port", "0", "--timeout", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 3 and out["runs"] == 1 and out["skipped_documents"] == 0
