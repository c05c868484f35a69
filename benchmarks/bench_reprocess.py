"""``xfusion reprocess`` scaling: 1 vs 2 Dask workers on stored raw runs, and what a run
costs per fused window (model time, Tiled reads, bytes in and out).

Writes ``--runs`` simulated raw runs into an embedded Tiled, fuses one serially in this
process (the reference cost), then reprocesses all of them on a LocalCluster of 1 and
of 2 worker processes (``force``: every run fused again each time). Prints one JSON
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
            for n in args.workers:
                t0 = time.perf_counter()
                report = reprocess(
                    client,
                    server.uri,
                    RunSelection(uids=tuple(uids)),
                    ref,
                    record,
                    workers=n,
                    force=True,
                    progress=False,
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
    if "1" in scaling and "2" in scaling:
        one, two = scaling["1"], scaling["2"]
        result["speedup_2_vs_1_wall"] = round(one["wall_s"] / two["wall_s"], 3)
        result["speedup_2_vs_1_busiest_worker"] = round(
            one["busiest_worker_s"] / two["busiest_worker_s"], 3
        )
    result["estimate_speedup_k_workers"] = {
        str(k): {
            "server_bound": round(k / (1 + (k - 1) * tiled_share), 2),
            "compute_bound": k,
        }
        for k in (1, 2, 4, 8)
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
