"""Live fusion timing: model time per window and latency from "last input arrived" to
"fused event out", for a simulated burst through a real RunEngine.

The issue's target: fused frames appear within one model-time of their inputs arriving,
i.e. ``latency_ms`` p50 close to ``model_ms_per_window`` (no queueing behind the
camera readout). Prints one JSON line. ``--device cuda`` on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=2, default=(64, 96), help="Shimadzu rows cols")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--model", default=None, help="checkpoint/registry name (default shipped)")
    parser.add_argument(
        "--preset", default=None, help="untrained preset instead (tiny/small/paper)"
    )
    parser.add_argument("--arch", default="edvr_stf", choices=("edvr_stf", "swin_xvr"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--mode", default="continuous", choices=("continuous", "double"))
    args = parser.parse_args()

    import torch
    from xfusion_plans import dual_camera_burst

    import xfusion_models as xm
    from xfusion_stream.app import FusionSession
    from xfusion_stream.calibration import CalibrationRecord
    from xfusion_stream.devices import (
        PhantomTMX7510,
        ShimadzuHPVX2,
        SimBeam,
        SimPhantomBackend,
        SimShimadzuBackend,
    )
    from xfusion_stream.fusion import FusionConfig, FusionModel, load_fusion_model
    from xfusion_stream.simulation import SceneConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset:
        net = getattr(xm, args.arch)(args.preset).eval().to(args.device)
        model = FusionModel(
            net=net,
            name=f"{args.arch}_{args.preset}_untrained",
            arch=args.arch,
            sha256="0" * 64,
            device=torch.device(args.device),
            precision=args.precision,
        )
    else:
        model = load_fusion_model(args.model, device=args.device, precision=args.precision)
    config = SceneConfig(seed=11, shimadzu_shape=tuple(args.shape), n_shimadzu=args.frames)
    beam = SimBeam(config)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        phantom = PhantomTMX7510(
            "B:", name="phantom", backend=SimPhantomBackend(beam), data_dir=raw
        )
        shimadzu = ShimadzuHPVX2(
            "B:", name="shimadzu", backend=SimShimadzuBackend(beam), data_dir=raw
        )
        record = CalibrationRecord.from_transform(
            beam.scene.transform, beam.scene.shimadzu_shape, beam.scene.phantom_shape
        )
        t0 = time.perf_counter()
        session = FusionSession(model, record, config=FusionConfig(traverse_mode=args.mode))
        outcome = session.run_plan(dual_camera_burst(phantom, shimadzu))
        wall = time.perf_counter() - t0
    report_latency = outcome.latencies
    result = {
        "benchmark": "fusion_live",
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "precision": args.precision,
        "model": model.name,
        "shimadzu_shape": list(args.shape),
        "fused_shape": [record.crop.height, record.crop.width],
        "frames_fused": outcome.frames,
        "model_ms_per_window": round(1000 * outcome.model_seconds / max(outcome.frames, 1), 2),
        "fused_frames_per_s": round(outcome.frames / max(outcome.model_seconds, 1e-9), 2),
        "wall_s": round(wall, 2),
        "exit_status": outcome.exit_status,
    }
    if report_latency:
        lat = np.asarray(report_latency) * 1000
        result.update(
            latency_ms_p50=round(float(np.percentile(lat, 50)), 2),
            latency_ms_p95=round(float(np.percentile(lat, 95)), 2),
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
