"""Serve both cameras as soft IOCs (caproto) on 127.0.0.1: areaDetector drivers and HDF5
plugins whose bursts the scene engine renders, and what sits in the beam.

Each camera answers under ``<prefix>cam1:`` (driver) and ``<prefix>HDF1:`` (HDF5
plugin); the plugin writes its files under --data-dir only. ``<prefix-beam>Target``
moves the G400 grid into the beam (``grid``) for spatial calibration and back out
(``sample``). Set EPICS_CA_SERVER_PORT and EPICS_CA_REPEATER_PORT to run beside other
IOCs; clients need EPICS_CA_AUTO_ADDR_LIST=NO and EPICS_CA_ADDR_LIST=127.0.0.1. A line
on stderr says when the PVs are served; the command runs until interrupted (or --exit-after seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from ._argtypes import non_negative_float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefix-phantom", default="XF:SIM:PH:", help="Phantom PV prefix")
    parser.add_argument("--prefix-shimadzu", default="XF:SIM:HPV:", help="Shimadzu PV prefix")
    parser.add_argument(
        "--prefix-beam",
        default="XF:SIM:BEAM:",
        help="prefix of <prefix>Target: what sits in the beam (sample, or the G400 grid)",
    )
    parser.add_argument(
        "--data-dir", required=True, help="where the HDF5 plugins may write (must exist)"
    )
    scene = parser.add_argument_group("scene (what both cameras record)")
    scene.add_argument("--scene", default=None, help="SceneConfig YAML/JSON file (else the flags)")
    scene.add_argument("--seed", type=int, default=0, help="random seed of the scene")
    scene.add_argument("--frames", type=int, default=128, help="Shimadzu frames per burst")
    scene.add_argument(
        "--shimadzu-shape",
        type=int,
        nargs=2,
        default=(64, 96),
        metavar=("ROWS", "COLS"),
        help="Shimadzu sensor region (the HPV-X2 is 250 400)",
    )
    scene.add_argument("--phantom-every", type=int, default=20, help="Shimadzu frames per Phantom")
    parser.add_argument(
        "--exit-after",
        type=non_negative_float,
        default=0.0,
        help="stop after this many seconds (0: never)",
    )


def _scene(args: argparse.Namespace) -> Any:
    from ..core import load_config
    from ..simulation import SceneConfig

    if args.scene:
        return load_config(SceneConfig, args.scene)
    return SceneConfig(
        seed=args.seed,
        n_shimadzu=args.frames,
        shimadzu_shape=tuple(args.shimadzu_shape),
        phantom_every=args.phantom_every,
    )


async def _serve(pvdb: dict[str, Any], args: argparse.Namespace, what: str) -> None:
    from ..simulation import serve_pvdb

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_after > 0:
        loop.call_later(args.exit_after, stop.set)

    def ready(port: int) -> None:
        print(f"xfusion ioc: serving {len(pvdb)} PVs ({what}) on 127.0.0.1:{port}", file=sys.stderr)
        sys.stderr.flush()

    await serve_pvdb(pvdb, on_ready=ready, stop=stop)


def run(args: argparse.Namespace) -> dict:
    from ..core import XFusionError
    from ..simulation import BeamTargetIOC, camera_iocs

    data_dir = Path(args.data_dir).expanduser().resolve()
    if not data_dir.is_dir():
        raise XFusionError(f"--data-dir {data_dir} is not a directory")
    prefixes = {"phantom": args.prefix_phantom, "shimadzu": args.prefix_shimadzu}
    cameras = camera_iocs(prefixes, data_dir, _scene(args))
    beam = BeamTargetIOC(args.prefix_beam, cameras)
    pvdb: dict[str, Any] = dict(beam.pvdb)
    for ioc in cameras:
        pvdb.update(ioc.pvdb)
    what = ", ".join(f"{camera} {prefix}" for camera, prefix in prefixes.items())
    asyncio.run(_serve(pvdb, args, f"{what}, beam {args.prefix_beam}"))
    return {
        "prefixes": {**prefixes, "beam": args.prefix_beam},
        "data_dir": str(data_dir),
        "pvs": len(pvdb),
    }
