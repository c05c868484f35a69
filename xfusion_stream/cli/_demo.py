"""Simulate -> calibrate -> acquire -> fuse live -> 0MQ + embedded Tiled, end to end.

``--cameras epics`` runs the same demo over Channel Access: it starts the soft camera
IOCs on loopback and drives them with fly scans (grid calibration and burst).

Runs on the shipped model, ends with a JSON summary: run uids, frames fused, PSNR of
fused vs bicubic vs nearest-Phantom-frame against the simulated truth, the mean residual
of the fused frames against the Shimadzu frames in noise units (``shimadzu_residual``),
how many fused frames an independent RemoteDispatcher received, and where the PNG/GIF
were written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._argtypes import non_negative_float, port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--out",
        type=Path,
        default=None,
        help="work folder, must be new or empty (default ./xfusion-demo, or the first free "
        "./xfusion-demo-N when earlier runs are there)",
    )
    a(
        "--cameras",
        choices=("sim", "epics"),
        default="sim",
        help="sim: simulated cameras in this process; epics: soft camera IOCs started here, "
        "driven over Channel Access on 127.0.0.1 (fly scans; free ports)",
    )
    a("--seed", type=int, default=7, help="random seed of the simulated scene")
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
    a(
        "--traverse_mode",
        "--traverse-mode",
        choices=("continuous", "double"),
        default="continuous",
        help="continuous: a fused frame per Shimadzu frame; double: per Phantom frame, held out as truth",
    )
    a(
        "--model_file",
        "--model-file",
        default=None,
        help="checkpoint or registry name (default: shipped)",
    )
    a("--device", default="cpu", help="cpu, cuda or cuda:N")
    a("--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="model precision")
    a("--no-listener", action="store_true", help="skip the independent 0MQ listener process")
    a(
        "--overlay",
        choices=("residual",),
        default=None,
        help="residual: tint the GIF/MP4 fused frames where the Shimadzu frame does not "
        "support them (|residual| > 3 noise sigma)",
    )
    a(
        "--view",
        type=port,
        default=None,
        metavar="PORT",
        help="serve the live viewer on 127.0.0.1:PORT while the burst is fused (0: a free "
        "port); its URL is printed on stderr",
    )
    a(
        "--view-linger",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="keep the viewer up this long after the demo (Ctrl-C ends it)",
    )


def default_out(base: Path = Path("xfusion-demo")) -> Path:
    """``base`` when it is absent or empty, else the first absent or empty ``base-N``: a
    second demo never touches the first one's files."""
    candidates = [base] + [base.with_name(f"{base.name}-{n}") for n in range(2, 10_000)]
    for path in candidates:
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            return path
    raise FileExistsError(f"{base}: no free folder name left; pass --out")


def run(args: argparse.Namespace) -> dict:
    from ..app import DemoSettings, run_demo
    from ..fusion import load_fusion_model

    model = load_fusion_model(args.model_file, device=args.device, precision=args.precision)
    settings = DemoSettings(
        out=args.out if args.out is not None else default_out(),
        seed=args.seed,
        shimadzu_shape=tuple(args.shimadzu_shape),
        frames=args.frames,
        traverse_mode=args.traverse_mode,
        listener=not args.no_listener,
        progress=not args.quiet,
        overlay=args.overlay,
        view_port=args.view,
        view_linger=args.view_linger,
        cameras=args.cameras,
    )
    return run_demo(settings, model)
