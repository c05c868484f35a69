"""``xfusion reprocess`` scaling: 1 vs 2 Dask workers on stored raw runs, and what a run
costs per fused window (model time, Tiled reads, bytes in and out).

Writes ``--runs`` simulated raw runs into an embedded Tiled, fuses one serially in this
process (the reference cost), then reprocesses all of them on a LocalCluster of 1 and
of 2 worker processes (``force``: every run fused again each time), and on 2 again
reading the raw HDF5 files directly (``data_roots``) instead of through Tiled. Prints one JSON
line: wall times, the speed-up ratio 1 -> 2 workers (cluster start included, and the
workers' own run seconds without it), per-window cost split into model and the rest
(Tiled reads/writes, pairing, composing), bytes read and written per window, bytes a
job sends through the scheduler (references only: model sha256, record JSON), the
Tiled per-frame read rate measured from one client, and a scaling estimate for K
workers (GPUs): each worker's model share divides by K, the Tiled share does not
while one server serves them all, so ``speedup(K) = K / (1 + (K - 1) * tiled_share)``
is an upper bound if the server's per-request cost is what limits, and ``K`` if it is
not. ``--model`` for a real checkpoint; the default is an untrained EDVR-STF
``--preset`` (tiny: the model is cheap and the I/O share large, the worst case for
scaling; small: closer to a real model's share).
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np


def _frame_bytes(array_client) -> int:
    shape = array_client.shape
    return int(np.prod(shape[1:])) * np.dtype(array_client.dtype).itemsize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=2, default=(24, 40), help="Shimadzu rows cols")
    parser.add_argument("--frames", type=int, default=32, help="Shimadzu frames per run")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--model", default=None, help="checkpoint (default: an untrained preset)")
    parser.add_argument(
        "--preset", default="tiny", help="untrained EDVR-STF preset without --model"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=(1, 2))
    parser.add_argument(
        "--long-frames",
        type=int,
        default=64,
        help="Shimadzu frames of the one long run fused whole vs split across 2 workers, "
        "and in 1 vs 2 fusion processes (serve --workers); 0: skip",
    )
    args = parser.parse_args()

    import torch
    from xfusion_plans import dual_camera_burst

    import xfusion_models as xm
    from xfusion_stream.app import (
        FusionSession,
        ReprocessJob,
        RunSelection,
        close_run_engine,
        new_run_engine,
        reprocess,
        resolve_model,
    )
    from xfusion_stream.calibration import CalibrationRecord
    from xfusion_stream.fusion import FusionConfig, load_fusion_model
    from xfusion_stream.publishing import EmbeddedTiled, make_tiled_writer
    from xfusion_stream.simulation import Scene, SceneConfig
    from xfusion_stream.testing import DocumentLog, sim_cameras

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        checkpoint = args.model
        if checkpoint is None:
            torch.manual_seed(3)
            checkpoint = base / f"{args.preset}.pth"
            xm.save_checkpoint(xm.edvr_stf(args.preset), checkpoint)
        config = SceneConfig(seed=5, shimadzu_shape=tuple(args.shape), n_shimadzu=args.frames)
        scene = Scene(config)
        record = CalibrationRecord.from_transform(
            scene.transform, scene.shimadzu_shape, scene.phantom_shape
        )
        with EmbeddedTiled(base / "catalog", readable_storage=[base]) as server:
            client = server.client()
            RE = new_run_engine()  # noqa: N806 - bluesky's name
            try:
                RE.subscribe(make_tiled_writer(client))
                phantom, shimadzu, _ = sim_cameras(config, base / "raw")
                uids = [RE(dual_camera_burst(phantom, shimadzu))[0] for _ in range(args.runs)]
            finally:
                close_run_engine(RE)

            # the reference: one run fused serially in this process
            model = load_fusion_model(str(checkpoint))
            session = FusionSession(model, record, [DocumentLog()], FusionConfig())
            t0 = time.perf_counter()
            try:
                serial = session.replay(client, uids[0], timeout=600)
            finally:
                session.close()
            serial_s = time.perf_counter() - t0
            windows = serial.frames

            # Tiled reads from one client: every frame of one run, one request each
            run = client[uids[0]]
            lr, hr = run["shimadzu"]["shimadzu_image"], run["phantom"]["phantom_image"]
            t0 = time.perf_counter()
            for i in range(lr.shape[0]):
                np.asarray(lr[i])
            for i in range(hr.shape[0]):
                np.asarray(hr[i])
            read_s = time.perf_counter() - t0
            frames_read = lr.shape[0] + hr.shape[0]
            bytes_in = lr.shape[0] * _frame_bytes(lr) + hr.shape[0] * _frame_bytes(hr)

            ref = resolve_model(checkpoint)
            job = ReprocessJob(server.uri, uids[0], ref, record.model_dump(mode="json"))
            scaling: dict[str, dict] = {}
            fused_uid = None
            for n in [*args.workers, "2_files"]:
                roots = [str(base)] if n == "2_files" else []  # raw HDF5 read directly
                t0 = time.perf_counter()
                report = reprocess(
                    client,
                    server.uri,
                    RunSelection(uids=tuple(uids)),
                    ref,
                    record,
                    workers=2 if n == "2_files" else n,
                    force=True,
                    progress=False,
                    data_roots=roots,
                )
                wall = time.perf_counter() - t0
                summary = report.summary()
                assert summary["ok"], summary.get("error")
                run_s = [r["seconds"] for r in summary["fused"]]
                by_worker: dict[str, float] = {}
                for r in summary["fused"]:
                    by_worker[r["worker"]] = by_worker.get(r["worker"], 0.0) + r["seconds"]
                scaling[str(n)] = {
                    "wall_s": round(wall, 3),
                    "busiest_worker_s": round(max(by_worker.values()), 3),
                    "run_s_mean": round(float(np.mean(run_s)), 3),
                    "windows": summary["frames_fused"],
                }
                fused_uid = summary["fused"][0]["fused_uid"]
            if args.long_frames:
                long_run = _long_run(args, base, client, model, record, ref, server.uri)
            fused = client[fused_uid]["fused"]
            bytes_out = sum(
                _frame_bytes(fused[key])
                for key in fused
                if getattr(fused[key], "shape", None) and len(fused[key].shape) >= 2
            )

    model_s_per_window = serial.model_seconds / windows
    serial_s_per_window = serial_s / windows
    tiled_share = max(0.0, 1.0 - model_s_per_window / serial_s_per_window)
    result = {
        "bench": "reprocess",
        "model": str(args.model or f"edvr_stf {args.preset} (untrained)"),
        "shape": list(args.shape),
        "frames_per_run": args.frames,
        "runs": args.runs,
        "serial_s_per_window": round(serial_s_per_window, 4),
        "model_s_per_window": round(model_s_per_window, 4),
        "non_model_share": round(tiled_share, 3),
        "tiled_read_s_per_frame": round(read_s / frames_read, 4),
        "tiled_read_mb_per_s": round(bytes_in / read_s / 1e6, 2),
        "bytes_read_per_window": int(bytes_in / windows),
        "bytes_written_per_window": int(bytes_out),
        "job_bytes_through_scheduler": len(pickle.dumps(job)),
        "workers": scaling,
    }
    result["speedup_2_files_vs_2_tiled_wall"] = (
        round(scaling["2"]["wall_s"] / scaling["2_files"]["wall_s"], 3) if "2" in scaling else None
    )
    if "1" in scaling and "2" in scaling:
        one, two = scaling["1"], scaling["2"]
        result["speedup_2_vs_1_wall"] = round(one["wall_s"] / two["wall_s"], 3)
        result["speedup_2_vs_1_busiest_worker"] = round(
            one["busiest_worker_s"] / two["busiest_worker_s"], 3
        )
    if args.long_frames:
        result["one_long_run"] = long_run
    result["estimate_speedup_k_workers"] = {
        str(k): {
            "server_bound": round(k / (1 + (k - 1) * tiled_share), 2),
            "compute_bound": k,
        }
        for k in (1, 2, 4, 8)
    }
    print(json.dumps(result))


def _long_run(args, base, client, model, record, ref, uri) -> dict:
    """One long burst: reprocessed on 2 workers whole (one task) vs split in window
    ranges across both; and replayed in this process with 1 vs 2 fusion processes
    (``serve --workers``). The split run's frames are checked identical."""
    from xfusion_plans import dual_camera_burst

    from xfusion_stream.app import (
        FusionSession,
        RunSelection,
        close_run_engine,
        new_run_engine,
        reprocess,
    )
    from xfusion_stream.fusion import FusionConfig, WindowPool
    from xfusion_stream.publishing import make_tiled_writer
    from xfusion_stream.simulation import SceneConfig
    from xfusion_stream.testing import DocumentLog, sim_cameras

    config = SceneConfig(seed=5, shimadzu_shape=tuple(args.shape), n_shimadzu=args.long_frames)
    RE = new_run_engine()  # noqa: N806 - bluesky's name
    try:
        RE.subscribe(make_tiled_writer(client))
        phantom, shimadzu, _ = sim_cameras(config, base / "raw-long")
        (uid,) = RE(dual_camera_burst(phantom, shimadzu))
    finally:
        close_run_engine(RE)
    out: dict = {"frames": args.long_frames}
    stored: dict = {}
    for label, split in (("whole_s", 0), ("split_s", max(1, args.long_frames // 4))):
        t0 = time.perf_counter()
        report = reprocess(
            client, uri, RunSelection(uids=(uid,)), ref, record,
            workers=2, force=True, progress=False, split_windows=split,
        )  # fmt: skip
        out[label] = round(time.perf_counter() - t0, 3)
        summary = report.summary()
        assert summary["ok"], summary.get("error")
        if split:
            out["window_ranges"] = len(summary["fused"][0]["window_ranges"])
        stored[label] = client[summary["fused"][0]["fused_uid"]]["fused"]["fused_image"].read()
    out["split_identical"] = bool(np.array_equal(stored["whole_s"], stored["split_s"]))
    out["split_speedup"] = round(out["whole_s"] / out["split_s"], 3)
    frames = {}
    for n in (1, 2):
        pool = WindowPool(model, n) if n > 1 else None
        log = DocumentLog()
        session = FusionSession(model, record, [log], FusionConfig(), executor=pool)
        t0 = time.perf_counter()
        try:
            assert session.replay(client, uid, timeout=600).ok
        finally:
            session.close()
            if pool is not None:
                pool.close()
        out[f"fusion_processes_{n}_s"] = round(time.perf_counter() - t0, 3)
        frames[n] = [e["data"]["fused_image"] for e in log.events()]
    # one process runs torch on every core, each fusion process on cores / 2: float
    # sums in another order, so equal to ~1e-7, not bit for bit (the tests pin threads)
    out["fusion_processes_max_abs_diff"] = float(
        max(np.abs(a - b).max() for a, b in zip(frames[1], frames[2], strict=True))
    )
    out["fusion_processes_speedup"] = round(
        out["fusion_processes_1_s"] / out["fusion_processes_2_s"], 3
    )
    return out


if __name__ == "__main__":
    main()
