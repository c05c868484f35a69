"""Soak and overload: raw runs through a real 0MQ proxy into ``FusionSession.serve``
while Tiled fails for a while. Prints one JSON line.

Two phases of raw runs (one recorded burst, replayed under fresh uids): ``--runs``
runs ``--gap`` s apart (steady), then ``--burst`` runs back to back with no pause
(overload: documents arrive much faster than fusion keeps up with, so they wait in the
0MQ queues and the router's run slots). The session's Tiled sink reaches the embedded
server through a TCP link that goes down once ``--down-from`` fused runs have come out
on 0MQ and comes back ``--down-seconds`` later (by default the outage spans the end of
the steady phase and the burst): those runs go to the spool and are re-ingested once
Tiled is back. At the end every fused run must be in Tiled whole and
every raw document must have reached the service: ``raw_frames_lost`` and
``announced_fused_frames_lost`` are expected to be 0. ``overload`` says how much faster
the burst came than it was fused.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("TILED_RETRY_ATTEMPTS", "3")  # a dead Tiled fails in ~1 s, not 45
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _renamed(docs: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    keys = ("uid", "run_start", "descriptor")
    new = {d["uid"]: str(uuid.uuid4()) for _, d in docs if "uid" in d}
    return [(n, {k: new.get(v, v) if k in keys else v for k, v in d.items()}) for n, d in docs]


def _record(frames: int) -> tuple[list[tuple[str, dict]], Any, Any]:
    """One inline dual-camera burst, the tiny model and the scene's true calibration."""
    import torch
    from xfusion_plans import dual_camera_burst

    import xfusion_models as xm
    from xfusion_stream.app import close_run_engine, new_run_engine
    from xfusion_stream.calibration import CalibrationRecord
    from xfusion_stream.fusion import FusionModel
    from xfusion_stream.simulation import Scene, SceneConfig
    from xfusion_stream.testing import sim_cameras

    config = SceneConfig(seed=5, shimadzu_shape=(24, 40), n_shimadzu=frames)
    engine = new_run_engine()
    docs: list[tuple[str, dict]] = []
    engine.subscribe(lambda name, doc: docs.append((name, doc)))
    try:
        phantom, shimadzu, _ = sim_cameras(config, None, inline=True)
        engine(dual_camera_burst(phantom, shimadzu))
    finally:
        close_run_engine(engine)
    scene = Scene(config)
    record = CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = FusionModel(
        net=xm.edvr_stf("tiny").eval(),
        name="tiny",
        arch="edvr_stf",
        sha256="0" * 64,
        device=torch.device("cpu"),
    )
    return docs, model, record


def _fused_rows(client: Any, uid: str) -> int:
    if uid not in client or "stop" not in client[uid].metadata:
        return 0
    run = client[uid]
    return int(run["fused"]["fused_image"].shape[0]) if "fused" in run else 0


def _publish(
    address: str, runs: list[list[tuple[str, dict]]], gap: float, burst: int
) -> tuple[float, float]:
    """Publish ``runs``: all but the last ``burst`` ``gap`` s apart, those back to back.
    Returns when the burst began and ended (``time.monotonic``)."""
    from xfusion_stream.publishing import RAW_PREFIX, make_publisher

    publisher = make_publisher(address, RAW_PREFIX)
    steady = len(runs) - burst
    try:
        time.sleep(0.5)  # slow joiner
        for docs in runs[:steady]:
            for name, doc in docs:
                publisher(name, doc)
            time.sleep(gap)
        began = time.monotonic()
        for docs in runs[steady:]:
            for name, doc in docs:
                publisher(name, doc)
        return began, time.monotonic()
    finally:
        publisher.close()


class _Stops:
    """The 0MQ listener's callback: counts documents, and when each fused run stopped."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter
        self.times: list[float] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.counter(name, doc)
        if name == "stop":
            self.times.append(time.monotonic())


def _faults(counter: Any, link: Any, args: Any, done: threading.Event) -> threading.Thread:
    """Tiled down once ``down_from`` fused runs came out on 0MQ, for ``down_seconds``."""

    def schedule() -> None:
        while not done.is_set():
            stops = sum(1 for r in counter.runs.values() if r.exit_status is not None)
            if stops >= args.down_from:
                link.down()
                done.wait(args.down_seconds)
                link.up()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=schedule, daemon=True)
    thread.start()
    return thread


def soak(args: argparse.Namespace) -> dict[str, Any]:
    from xfusion_stream.app import FusionSession
    from xfusion_stream.fusion import FusionConfig
    from xfusion_stream.publishing import (
        DocumentCounter,
        EmbeddedTiled,
        ProxyThread,
        dispatch_in_thread,
        make_remote_dispatcher,
        make_tiled_writer,
        spool_files,
        stop_dispatcher,
    )
    from xfusion_stream.testing import flaky_tiled_client

    docs, model, record = _record(args.frames)
    runs = [_renamed(docs) for _ in range(args.runs + args.burst)]
    raw_events = sum(1 for d in runs for n, _ in d if n == "event")
    root = Path(tempfile.mkdtemp(prefix="xfusion-soak-"))
    t0 = time.perf_counter()
    with EmbeddedTiled(root / "tiled") as server, ProxyThread() as proxy:
        client, link = flaky_tiled_client(server.uri)
        spool_dir = root / "spool"
        session = FusionSession(
            model, record, [make_tiled_writer(client)], FusionConfig(), spool_dir=spool_dir
        )
        session.tiled.retry_after = 2.0  # type: ignore[union-attr]
        counter = DocumentCounter(runs=None)
        stops = _Stops(counter)
        listener = make_remote_dispatcher(proxy.out_address)
        listening = dispatch_in_thread(listener, stops)
        summary: dict[str, Any] = {}
        ready = root / "ready"
        serving = threading.Thread(
            target=lambda: summary.update(
                session.serve(
                    proxy.out_address, proxy.in_address, max_runs=len(runs), ready_file=ready
                )
            ),
            daemon=True,
        )
        serving.start()
        while not ready.exists():
            time.sleep(0.05)
        finished = threading.Event()
        faults = _faults(counter, link, args, finished)
        burst_began, burst_sent = _publish(proxy.in_address, runs, args.gap, args.burst)
        serving.join(args.timeout)
        finished.set()
        faults.join()
        link.up()
        final = session.reingest()  # whatever no later run's success re-ingested
        time.sleep(0.5)
        stop_dispatcher(listener, listening)
        direct = server.client()
        fused = [r for r in counter.runs.values() if r.purpose == "fused"]
        announced = sum(r.events.get("fused", 0) for r in fused)
        in_tiled = sum(_fused_rows(direct, r.start_uid) for r in fused)
        spool = session.delivery().get("spool", {})
        session.close()
        link.down()
    wall = time.perf_counter() - t0
    results = summary.get("runs", [])
    burst_fused = max(stops.times, default=burst_sent) - burst_began
    burst_frames = sum(r.get("frames", 0) for r in results[len(results) - args.burst :])
    return {
        "bench": "soak",
        "runs_in": len(runs),
        "runs_fused": sum(1 for r in results if r.get("exit_status") == "success"),
        "runs_reported_not_ok": sum(1 for r in results if not r.get("ok")),
        "why_not_ok": dict(
            Counter(str(r.get("problem"))[:90] for r in results if not r.get("ok")).most_common(4)
        ),
        "frames_fused": sum(r.get("frames", 0) for r in results),
        "gaps": sum(r.get("gaps", 0) for r in results),
        "raw_losses": summary.get("raw_losses"),
        "overload": {
            "burst_runs": args.burst,
            "burst_published_s": round(burst_sent - burst_began, 2),
            "burst_fused_s": round(burst_fused, 2),
            "raw_docs_per_s_in": round(
                sum(len(d) for d in runs[len(runs) - args.burst :])
                / max(burst_sent - burst_began, 1e-6)
            ),
            "fused_frames_per_s_out": round(burst_frames / max(burst_fused, 1e-6), 1),
        },
        "tiled_down": {"after_fused_runs": args.down_from, "seconds": args.down_seconds},
        "documents_spooled": spool.get("documents_spooled"),
        "runs_reingested": spool.get("runs_reingested"),
        "documents_reingested": spool.get("documents_reingested"),
        "spool_files_left": len(spool_files(spool_dir)),
        "final_reingest": final.summary(),
        "raw_documents_lost": sum(len(d) for d in runs) - summary.get("documents_received", 0),
        "raw_frames_lost": raw_events - summary.get("events_received", 0),
        "announced_fused_frames": announced,
        "announced_fused_frames_lost": announced - in_tiled,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "stopped_by": summary.get("stopped_by"),
        "seconds": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=12, help="runs of the steady phase")
    parser.add_argument(
        "--burst", type=int, default=8, help="runs sent back to back (overload phase)"
    )
    parser.add_argument("--frames", type=int, default=24, help="Shimadzu frames per run")
    parser.add_argument("--down-from", type=int, default=8, help="fused runs before Tiled fails")
    parser.add_argument("--down-seconds", type=float, default=12.0, help="how long Tiled is down")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between runs")
    parser.add_argument("--timeout", type=float, default=600.0)
    print(json.dumps(soak(parser.parse_args())))


if __name__ == "__main__":
    main()
