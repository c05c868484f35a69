"""A folder filled slowly by a writer process: acquired once complete, never half-read.

The writer copies a simulated case file by file in the vendor order chosen for the
test: the Phantom XML first (the Phantom software writes its header up front), the
frames in two chunks with a pause between them (a half-written file is on disk at each
pause), the Shimadzu INI last (written when its save finishes). The watch accepts
either order: the half-written-file test writes both sidecars first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from xfusion_plans import recorded_experiment, watched_experiment

from xfusion_stream.app import identity_calibration
from xfusion_stream.devices import (
    BurstIncompleteError,
    recorded_cameras,
    watched_cameras,
)
from xfusion_stream.fusion import FusionConfig, fusion_router
from xfusion_stream.recorded import read_case
from xfusion_stream.simulation import SceneConfig, write_simulation
from xfusion_stream.testing import DocumentLog

SETTLE_S, POLL_S = 0.3, 0.05
WRITER = r"""
import json, os, sys, time
from pathlib import Path
args = json.loads(sys.argv[1])
src, dst = Path(args["src"]), Path(args["dst"])
names = args["order"]
for count, rel in enumerate(names):
    data = (src / rel).read_bytes()
    target = dst / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    half = len(data) // 2
    with open(target, "wb") as f:
        f.write(data[:half]); f.flush(); os.fsync(f.fileno())
        if count == args["stop_after"]:
            os._exit(0)  # the writer dies mid-file
        time.sleep(args["hold_s"] if rel == args["hold"] else args["pause_s"])
        f.write(data[half:])
"""


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    config = SceneConfig(seed=3, shimadzu_shape=(16, 24), n_shimadzu=16)
    write_simulation(out, config, progress=False)
    return out / "sim_experiment"


def _writer_order(case: Path, *, sidecars_first: bool = False) -> list[str]:
    """XML, frames, INI; or both sidecars before the frames."""
    recorded = read_case(case)
    rel = [str(p.relative_to(case)) for p in recorded.phantom_frames + recorded.shimadzu_frames]
    xml = str(recorded.phantom_xml.relative_to(case))
    ini = str(recorded.shimadzu_ini.relative_to(case))
    return [xml, ini, *rel] if sidecars_first else [xml, *rel, ini]


@pytest.fixture
def writer(request):
    """Start the writer process: ``writer(src, dst, hold=..., stop_after=...)``."""
    procs: list[subprocess.Popen] = []

    def start(
        src: Path,
        dst: Path,
        *,
        pause_s: float = 0.03,
        hold: str = "",
        hold_s: float = 0.0,
        stop_after: int = -1,
        sidecars_first: bool = False,
    ) -> subprocess.Popen:
        args = {
            "src": str(src),
            "dst": str(dst),
            "order": _writer_order(src, sidecars_first=sidecars_first),
            "pause_s": pause_s,
            "hold": hold,
            "hold_s": hold_s,
            "stop_after": stop_after,
        }
        proc = subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(args)])
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture
def read_log(monkeypatch) -> list[tuple[Path, int, float]]:
    """Every TIFF the watch path reads (pixels or header): path, size then, time."""
    import xfusion_stream.devices._watch_backend as watch_module
    import xfusion_stream.recorded._case as case_module

    log: list[tuple[Path, int, float]] = []

    def logged(reader):
        def read(path, *args, **kwargs):
            log.append((Path(path), os.stat(path).st_size, time.time()))
            return reader(path, *args, **kwargs)

        return read

    monkeypatch.setattr(watch_module, "read_frame", logged(watch_module.read_frame))
    monkeypatch.setattr(case_module, "frame_header", logged(case_module.frame_header))
    return log


def _fused_images(RE, cameras, plan, model, shapes) -> list[np.ndarray]:
    """Fuse one run with the tiny model over an identity calibration (shapes: lr, hr)."""
    fused, callbacks = DocumentLog(), []
    router = fusion_router(
        model,
        identity_calibration(*shapes),
        [fused],
        FusionConfig(traverse_mode="continuous"),
        on_callback=callbacks.append,
    )
    token = RE.subscribe(router)
    try:
        RE(plan(*cameras))
    finally:
        RE.unsubscribe(token)
    (cb,) = callbacks
    assert cb.join(120), "fusion did not finish"
    (stop,) = fused.of("stop")
    assert stop["exit_status"] == "success", stop.get("reason")
    return [np.asarray(e["data"]["fused_image"]) for e in fused.events("fused")]


def test_fused_output_of_a_slowly_filled_folder_equals_the_recorded_path(
    RE, case, writer, read_log, tiny_model, tmp_path
):
    watched = tmp_path / "live" / "sim_experiment"
    proc = writer(case, watched)
    cameras = watched_cameras(watched, timeout_s=30, poll_s=POLL_S, settle_s=SETTLE_S, inline=True)
    shapes = (read_case(case).shimadzu_shape, read_case(case).phantom_shape)
    live = _fused_images(RE, cameras, watched_experiment, tiny_model, shapes)
    assert proc.wait(10) == 0
    recorded = _fused_images(
        RE, recorded_cameras(case, inline=True), recorded_experiment, tiny_model, shapes
    )
    assert len(live) == len(recorded) >= 1
    for a, b in zip(live, recorded, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert read_log and all(size == os.stat(p).st_size for p, size, _ in read_log)


def test_a_half_written_file_is_never_read(RE, case, writer, read_log, tmp_path):
    watched = tmp_path / "sim_experiment"
    # both sidecars first, the last frame held at half size well past the settle time:
    # everything else is complete, so only the TIFF's own extent tells it is not
    held = _writer_order(case)[-2]
    proc = writer(case, watched, hold=held, hold_s=4 * SETTLE_S, sidecars_first=True)
    docs = DocumentLog()
    RE.subscribe(docs)
    cameras = watched_cameras(watched, timeout_s=30, poll_s=POLL_S, settle_s=SETTLE_S, inline=True)
    RE(watched_experiment(*cameras))
    assert proc.wait(10) == 0
    final = watched / held
    reads = [(size, t) for p, size, t in read_log if p == final]
    assert reads, "the held file was never read"
    assert all(size == final.stat().st_size for size, _ in reads)
    assert all(t >= final.stat().st_mtime for _, t in reads)
    assert all(size == os.stat(p).st_size for p, size, _ in read_log)
    (start,) = docs.of("start")
    assert start["watched_folder"] == str(watched) and start["plan_name"] == "watched_experiment"
    assert len(docs.events("phantom")) == 6 and len(docs.events("shimadzu")) == 16


def test_a_writer_that_dies_mid_burst_times_out_naming_the_files(RE, case, writer, tmp_path):
    watched = tmp_path / "sim_experiment"
    order = _writer_order(case)
    proc = writer(case, watched, stop_after=9)  # dies half-way through the 10th file
    docs = DocumentLog()
    RE.subscribe(docs)
    timeout = 2.0
    cameras = watched_cameras(
        watched, timeout_s=timeout, poll_s=POLL_S, settle_s=SETTLE_S, inline=True
    )
    began = time.monotonic()
    with pytest.raises(BurstIncompleteError) as info:
        RE(watched_experiment(*cameras))
    took = time.monotonic() - began
    assert proc.wait(10) == 0
    assert timeout <= took < timeout + 3.0
    message = str(info.value)
    assert str(watched) in message and "waiting 2." in message
    assert Path(order[9]).name in message and "truncated TIFF" in message  # the half file
    assert "*.ini (Shimadzu INI)" in message  # never written
    assert "missing" in message
    (start,) = docs.of("start")
    assert start["complete_frames"] == {"phantom": 6, "shimadzu": 2}
    assert start["expected_frames"] == {"phantom": 6, "shimadzu": None}
    (stop,) = docs.of("stop")
    assert stop["exit_status"] == "fail" and "still incomplete" in stop["reason"]
    assert docs.of("event") == []


def test_a_symlink_in_the_watched_folder_is_refused(case, tmp_path):
    from xfusion_stream.core import RecordedFormatError
    from xfusion_stream.devices import FolderWatch

    watched = tmp_path / "sim_experiment"
    (watched / "phantom").mkdir(parents=True)
    outside = read_case(case).phantom_frames[0]
    (watched / "phantom" / "img_000000.tif").symlink_to(outside)
    with pytest.raises(RecordedFormatError, match="img_000000.tif.*not a regular file"):
        FolderWatch(watched, timeout_s=1, poll_s=POLL_S, settle_s=0).poll()
