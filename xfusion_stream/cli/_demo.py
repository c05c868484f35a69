"""Simulate -> calibrate -> acquire -> fuse live -> 0MQ + embedded Tiled, end to end.

Runs on the shipped model, ends with a JSON summary: run uids, frames fused, PSNR of
fused vs bicubic vs nearest-Phantom-frame against the simulated truth, how many fused
frames an independent RemoteDispatcher received, and where the PNG/GIF were written.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--out", type=Path, default=Path("xfusion-demo"), help="work folder (default ./xfusion-demo)")
    a("--seed", type=int, default=7)
    a(
        "--frames",
        type=int,
        default=128,
        help="Shimadzu frames in the burst (128 or 256 on the HPV-X2)",
    )
    a(
        "--shimadzu-shape",
        type=int,
        nargs=2,
        default=(64, 96),
        metavar=("ROWS", "COLS"),
        help="simulated Shimadzu sensor region (the HPV-X2 is 250 400)",
    )
    a("--traverse_mode", "--traverse-mode", choices=("continuous", "double"), default="continuous")
    a(
        "--model_file",
        "--model-file",
        default=None,
        help="checkpoint or registry name (default: shipped)",
    )
    a("--device", default="cpu")
    a("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    a("--no-listener", action="store_true", help="skip the independent 0MQ listener process")
    a("--quiet", action="store_true")


def run(args: argparse.Namespace) -> dict:
    from ..demo import DemoSettings, run_demo
    from ..fusion import load_fusion_model

    model = load_fusion_model(args.model_file, device=args.device, precision=args.precision)
    settings = DemoSettings(
        out=args.out,
        seed=args.seed,
        shimadzu_shape=tuple(args.shimadzu_shape),
        frames=args.frames,
        traverse_mode=args.traverse_mode,
        listener=not args.no_listener,
        progress=not (args.quiet or args.json),
    )
    return run_demo(settings, model)
