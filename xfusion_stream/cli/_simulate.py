"""Write a simulated recorded experiment, a G400 grid calibration case and truth.json.

Defaults are small so it runs in seconds: Shimadzu 64x96 px (Phantom 256x384), 128
Shimadzu frames at 200 ns, a Phantom frame every 20th Shimadzu frame (250 kfps). Use
``--shimadzu-shape 250 400`` for the real HPV-X2 sensor size.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._argtypes import finite_float, non_negative_float, positive_float

#: the presets are ``simulation.FAST_EVENT_PRESETS`` (not imported here: keeps the CLI fast)
FAST_EVENTS_HELP = (
    "fast events, faster than the Phantom samples: a preset (none, mixed, dense) and/or "
    "KIND=N pairs, comma-separated, e.g. 'mixed' or 'spatter=2,particles=1'; keyholes=N "
    "is a count, the other kinds (spatter, bubbles, pores, particles, cracks, fronts, "
    "fragmentations) are per Phantom interval"
)


def _fast_events(text: str) -> Any:
    from ..simulation import fast_events_argument

    return fast_events_argument(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (created; must be empty)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scene")
    parser.add_argument("--frames", type=int, default=128, help="Shimadzu frames")
    parser.add_argument(
        "--shimadzu-shape",
        type=int,
        nargs=2,
        default=(64, 96),
        metavar=("ROWS", "COLS"),
        help="Shimadzu sensor region (the HPV-X2 is 250 400)",
    )
    parser.add_argument("--ratio", type=int, default=4, help="Phantom/Shimadzu pixel ratio")
    parser.add_argument("--phantom-every", type=int, default=20, help="Shimadzu frames per Phantom")
    parser.add_argument("--frame-ns", type=int, default=200, help="Shimadzu frame time in ns")
    geometry = parser.add_argument_group("inter-camera transform (Shimadzu HR grid -> Phantom)")
    geometry.add_argument(
        "--rotation-deg", type=finite_float, default=1.2, help="rotation in degrees"
    )
    geometry.add_argument(
        "--translation-px",
        type=finite_float,
        nargs=2,
        default=(3.5, -2.0),
        metavar=("TX", "TY"),
        help="translation in Phantom pixels",
    )
    geometry.add_argument("--scale-row", type=positive_float, default=0.991, help="row scale")
    geometry.add_argument("--scale-col", type=positive_float, default=1.012, help="column scale")
    geometry.add_argument("--no-mirror", action="store_true", help="Phantom not mirrored")
    scene = parser.add_argument_group("scene")
    scene.add_argument(
        "--shimadzu-photons", type=non_negative_float, default=1000.0, help="b0; 0 = no noise"
    )
    scene.add_argument(
        "--phantom-photons", type=non_negative_float, default=2000.0, help="b0; 0 = no noise"
    )
    scene.add_argument(
        "--motion-px", type=finite_float, default=4.0, help="sample speed, px per Phantom frame"
    )
    scene.add_argument(
        "--shimadzu-full-scale",
        type=positive_float,
        default=0.9,
        help="Shimadzu gain: fraction of the 16-bit range at intensity 1 (Phantom: 0.9)",
    )
    scene.add_argument(
        "--shimadzu-dark",
        type=non_negative_float,
        default=0.0,
        help="Shimadzu dark offset in counts",
    )
    scene.add_argument(
        "--pixel-um", type=positive_float, default=3.2, help="Phantom pixel size (um)"
    )
    scene.add_argument(
        "--grid-angle-deg", type=finite_float, default=2.5, help="G400 grid angle in degrees"
    )
    scene.add_argument(
        "--fast-events", type=_fast_events, default=None, metavar="SPEC",
        help=FAST_EVENTS_HELP,
    )  # fmt: skip
    scene.add_argument(
        "--textures", choices=("training", "held_out"), default="training",
        help="photographs the sample is built from: those the shipped weights were "
        "trained on, or a disjoint set they never saw (a test of unseen samples)",
    )  # fmt: skip
    parser.add_argument(
        "--experiment-name", default="sim_experiment", help="experiment folder name"
    )
    parser.add_argument(
        "--calibration-name",
        default="sim_calibration_grid",
        help="calibration case folder name",
    )


def run(args: argparse.Namespace) -> dict:
    from ..core import InterCameraTransform
    from ..simulation import SceneConfig, write_simulation

    transform = InterCameraTransform(
        rotation_deg=args.rotation_deg,
        translation_px=tuple(args.translation_px),
        scale_col=args.scale_col,
        scale_row=args.scale_row,
        mirror=not args.no_mirror,
        ratio=args.ratio,
    )
    config = SceneConfig(
        seed=args.seed,
        shimadzu_shape=tuple(args.shimadzu_shape),
        ratio=args.ratio,
        n_shimadzu=args.frames,
        shimadzu_frame_ns=args.frame_ns,
        phantom_every=args.phantom_every,
        transform=transform,
        shimadzu_photons=args.shimadzu_photons or None,
        phantom_photons=args.phantom_photons or None,
        motion_px_per_phantom_frame=args.motion_px,
        shimadzu_full_scale=args.shimadzu_full_scale,
        shimadzu_dark_counts=args.shimadzu_dark,
        phantom_pixel_um=args.pixel_um,
        grid_angle_deg=args.grid_angle_deg,
        fast_events=args.fast_events,
        textures=args.textures,
    )
    doc = write_simulation(
        args.out,
        config,
        experiment_name=args.experiment_name,
        calibration_name=args.calibration_name,
        progress=not args.quiet,
    )
    from pathlib import Path

    out = Path(args.out)
    return {
        "out": str(out),
        "experiment": str(out / doc["experiment"]["path"]),
        "calibration": str(out / doc["calibration"]["path"]),
        "truth": str(out / "truth.json"),
        "ground_truth": str(out / doc["ground_truth"]["file"]),
        "preview": str(out / doc["preview"]),
        "movie": str(out / doc["movie"]),
        "event_masks": str(out / doc["event_masks"]["file"]),
        "fast_events": len(doc["experiment"]["scene"].get("fast_events", [])),
        "n_shimadzu": doc["experiment"]["n_shimadzu"],
        "n_phantom": doc["experiment"]["n_phantom"],
        "shimadzu_shape": list(config.shimadzu_shape),
        "phantom_shape": list(config.phantom_shape),
        "transform": doc["transform"],
    }
