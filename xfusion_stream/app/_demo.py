"""The whole beamline on one machine: simulate, calibrate, acquire, fuse live, publish.

Everything is the shipped path: cameras driven by bluesky plans (simulated ophyd
cameras, or with ``cameras="epics"`` soft IOCs over Channel Access, fly-scanned), the
G400 calibration computed live from its own run, raw runs persisted by TiledWriter
into an embedded Tiled server, fused frames published through bluesky's 0MQ proxy to
an independent RemoteDispatcher process and written to the same Tiled, on the
shipped model. Because the scene is simulated, every fused frame is also scored
against the ground truth, next to bicubic x4 and the nearest Phantom frame.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import CalibrationRecord, GridCalibrationCallback, record_to_documents
from ..core import XFusionError
from ..fusion import (
    FusedFrame,
    FusionConfig,
    FusionModel,
    WindowJob,
    by_candidate,
    score_against_truth,
)
from ..products import TruthFrame
from ..simulation import Scene, SceneConfig, write_simulation
from ._demo_cameras import DemoCameras, demo_cameras

__all__ = ["DemoSettings", "TruthScorer", "run_demo"]


@dataclass
class DemoSettings:
    out: Path
    seed: int = 7
    shimadzu_shape: tuple[int, int] = (64, 96)
    frames: int = 128
    traverse_mode: str = "continuous"
    listener: bool = True
    progress: bool = True
    full_scale: float = 65535.0
    overlay: str | None = None  # "residual": tint GIF/MP4 where the Shimadzu disagrees
    view_port: int | None = None  # serve the live viewer on this port (0: a free one)
    view_linger: float = 0.0  # seconds the viewer stays up after the demo
    cameras: str = "sim"  # "epics": soft IOCs over Channel Access, fly scans


class TruthScorer:
    """Scores fused frames against the simulated ground truth (demo only).

    Truth is the noise-free scene on the cameras' count scale, cropped like the fused
    frame; baselines are bicubic x4 of the registered Shimadzu frame and the Phantom
    input nearer in time.
    """

    def __init__(self, scene: Scene, record: CalibrationRecord, full_scale: float) -> None:
        self.scene = scene
        self.crop = record.crop
        self.full_scale = full_scale
        self.shimadzu_t = scene.shimadzu_times_ns()
        self.phantom_t = scene.phantom_times_ns()
        self.rows: list[dict[str, float]] = []

    def __call__(self, frame: FusedFrame, job: WindowJob) -> None:
        self.truth_frame(frame, job)

    def truth_frame(self, frame: FusedFrame, job: WindowJob) -> TruthFrame:
        """Score ``frame`` (kept for ``means``) and hand its truth to the products
        (``ProductWriter(truth=scorer.truth_frame)``)."""
        c = self.crop
        t = float(self.shimadzu_t[frame.shimadzu_index])
        truth = self.scene.truth_counts(t).astype(np.float32) / self.full_scale
        truth = truth[c.y : c.y + c.height, c.x : c.x + c.width]
        nearer = int(np.argmin([abs(self.phantom_t[p] - t) for p in job.hr]))
        scores = score_against_truth(frame.image, truth, job.lr_frames[1], job.hr_frames, nearer)
        row: dict[str, float] = {"shimadzu_index": float(frame.shimadzu_index)}
        for candidate, values in by_candidate(scores).items():  # keys: psnr_fused ...
            row.update({f"{metric}_{candidate}": v for metric, v in values.items()})
        self.rows.append(row)
        reference = f"simulated scene at Shimadzu {frame.shimadzu_index} (t={t:.0f} ns)"
        return TruthFrame(truth, reference, scores, nearer)

    def means(self) -> dict[str, float]:
        if not self.rows:
            return {}
        keys = [k for k in self.rows[0] if k != "shimadzu_index"]
        return {k: round(float(np.mean([r[k] for r in self.rows])), 4) for k in keys}


def run_demo(settings: DemoSettings, model: FusionModel) -> dict[str, Any]:
    """The whole demo; with ``settings.cameras == "epics"`` the cameras are soft IOCs
    driven over Channel Access (started here, stopped at the end)."""
    from ..publishing import (
        EmbeddedTiled,
        ListenerProcess,
        ProxyThread,
        make_publisher,
        make_tiled_writer,
    )
    from ._progress import AcquisitionProgress
    from ._run_engine import close_run_engine, new_run_engine

    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    config = SceneConfig(
        seed=settings.seed, shimadzu_shape=settings.shimadzu_shape, n_shimadzu=settings.frames
    )
    simulated = write_simulation(out / "simulated", config, progress=settings.progress)
    summary: dict[str, Any] = {
        "out": str(out),
        "simulated": simulated.get("experiment"),
        "cameras": settings.cameras,
    }
    fused_h5 = (out / "fused" / "hdf5").resolve()  # the fused run's frames, as Tiled reads them
    fused_h5.mkdir(parents=True, exist_ok=True)
    raw = (out / "raw").resolve()
    raw.mkdir(parents=True, exist_ok=True)
    with (
        demo_cameras(settings.cameras, config, raw, progress=settings.progress) as cameras,
        EmbeddedTiled(out / "tiled", readable_storage=[raw, fused_h5]) as tiled,
    ):
        client = tiled.client()
        RE = new_run_engine()
        proxy = ProxyThread()
        listener, viewer = None, None
        try:
            cameras.connect(RE)
            if settings.view_port is not None:
                viewer = _start_viewer(settings.view_port, proxy.out_address, fused_h5)
                summary["viewer"] = viewer.url
            RE.subscribe(make_tiled_writer(client))  # raw runs, independent of fusion
            RE.subscribe(AcquisitionProgress(enabled=settings.progress))
            # 1. calibrate live from the grid run
            record, summary["calibration"] = _calibrate(settings, cameras, RE, client)
            # 2. acquire and fuse live, publishing over 0MQ and into Tiled
            if settings.listener:
                listener = ListenerProcess(proxy.out_address, out / "listener", timeout=900)
                listener.wait_ready()
            sinks = [make_publisher(proxy.in_address), make_tiled_writer(client)]
            summary.update(_fuse_burst(settings, model, record, cameras, RE, sinks))
            summary["received_by_remote_dispatcher"] = _listener_result(listener)
            summary["tiled"] = {
                "uri": tiled.base_uri,
                "fused_in_tiled": _fused_rows(client, summary["fused_uid"]),
            }
            if viewer is not None:
                summary["viewer_frames"] = _linger(viewer, settings.view_linger)
        finally:
            if viewer is not None:
                viewer.close()
            if listener is not None:
                listener.close()
            proxy.close()
            cameras.close(RE)
            close_run_engine(RE)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _calibrate(
    settings: DemoSettings,
    cameras: Any,
    RE: Any,
    client: Any,  # noqa: N803 - bluesky's name
) -> tuple[CalibrationRecord, dict[str, Any]]:
    """The grid run, calibrated live as it arrives; the record, also stored in Tiled."""
    from ..publishing import make_tiled_writer

    cal = GridCalibrationCallback(settings.out / "calibration", progress=settings.progress)
    token = RE.subscribe(cal)
    try:
        (cal_uid,) = RE(cameras.calibration_plan())
    finally:
        RE.unsubscribe(token)
    if cal.record is None:
        raise XFusionError(f"grid calibration failed: {cal.error}")
    record: CalibrationRecord = cal.record
    writer = make_tiled_writer(client)
    for name, doc in record_to_documents(record):
        writer(name, doc)
    summary = _calibration_summary(record, cameras.scene, cal_uid)
    summary["stored_in_tiled"] = record.uid in client
    return record, summary


def _start_viewer(port: int, address: str, fused_h5: Path) -> Any:
    """The live viewer on 127.0.0.1:``port``, fed by the demo's own proxy."""
    from ._viewer import LiveViewer
    from ._viewer_sources import ZmqSource

    viewer = LiveViewer(lambda feed: ZmqSource(address, feed), port=port, data_roots=[fused_h5])
    print(f"xfusion demo: live viewer at {viewer.url}", file=sys.stderr, flush=True)
    return viewer


def _linger(viewer: Any, seconds: float) -> int:
    """Keep the page up ``seconds`` after the run (Ctrl-C ends it); frames it showed."""
    if seconds > 0:
        print(
            f"xfusion demo: done; the viewer stays at {viewer.url} for {seconds:g} s "
            "(Ctrl-C ends it)",
            file=sys.stderr,
            flush=True,
        )
        try:
            time.sleep(seconds)
        except KeyboardInterrupt:
            pass
    return int(viewer.store.count)


def _fuse_burst(
    settings: DemoSettings,
    model: FusionModel,
    record: CalibrationRecord,
    cameras: DemoCameras,
    RE: Any,  # noqa: N803 - bluesky's name
    sinks: list[Any],
) -> dict[str, Any]:
    """Acquire one burst with live fusion: the fused run's summary, its products (PNG,
    GIF, CSV) and its scores against the simulated truth."""
    from ..products import ProductWriter
    from ._session import FusionSession

    scene = cameras.scene
    scorer = TruthScorer(scene, record, settings.full_scale)
    products = ProductWriter(
        settings.out / "fused",
        traverse_mode=settings.traverse_mode,
        progress_total=_expected_windows(scene, settings.traverse_mode),
        progress=settings.progress,
        overlay=settings.overlay,
        truth=scorer.truth_frame,  # scores every frame: CSV, montage, metrics.png
    )
    fusion_config = FusionConfig(
        traverse_mode=settings.traverse_mode,
        fused_data_dir=str((settings.out / "fused" / "hdf5").resolve()),
        viewer_inputs=settings.view_port is not None,
    )
    session = FusionSession(model, record, sinks, fusion_config, on_frame=products)
    md = {"sample": f"simulated, seed {settings.seed}"}
    outcome = session.run_plan(cameras.burst_plan(md), RE=RE)
    return {**outcome.summary(), **products.close(), "metrics_vs_truth": scorer.means()}


def _expected_windows(scene: Scene, mode: str) -> int:
    from ..calibration import pairing_table

    return len(pairing_table(*scene.timings(), mode).windows)


def _calibration_summary(record: CalibrationRecord, scene: Scene, uid: str) -> dict[str, Any]:
    truth = scene.transform
    return {
        "uid": record.uid,
        "grid_run_uid": uid,
        "n_pairs": record.n_pairs,
        "rotation_deg": round(record.rotation_deg, 4),
        "rotation_error_deg": round(abs(record.rotation_deg - truth.rotation_deg), 4),
        "scale_error_pct": round(
            100
            * max(
                abs(record.scale_row / truth.scale_row - 1),
                abs(record.scale_col / truth.scale_col - 1),
            ),
            4,
        ),
        "residual_max_px": round(record.residuals[-1].max, 3) if record.residuals else None,
        "shimadzu_gain": round(record.intensity.shimadzu_gain, 4) if record.intensity else None,
        "shimadzu_offset_counts": (
            round(record.intensity.shimadzu_offset_counts, 1) if record.intensity else None
        ),
    }


def _listener_result(listener: Any) -> Any:
    if listener is None:
        return None
    try:
        return listener.result(timeout=120)
    except (XFusionError, subprocess.TimeoutExpired) as exc:
        return {"error": f"the independent listener gave no summary: {exc}"}


def _fused_rows(client: Any, uid: str | None) -> int | None:
    if uid is None:
        return None
    try:
        return int(client[uid]["fused"]["fused_image"].shape[0])
    except KeyError:
        return None
