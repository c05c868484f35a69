"""Time one simulated dual-camera burst: render + HDF5 readout, RunEngine, Tiled write, read back.

Prints one JSON line. ``--shape ROWS COLS`` and ``--frames N`` set the Shimadzu size
(default: the real HPV-X2, 250x400 px, 128 frames; the Phantom is 4x per axis).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=2, default=(250, 400))
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()

    from xfusion_plans import dual_camera_burst

    from xfusion_stream.app import close_run_engine, new_run_engine
    from xfusion_stream.devices import (
        PhantomTMX7510,
        ShimadzuHPVX2,
        SimBeam,
        SimPhantomBackend,
        SimShimadzuBackend,
    )
    from xfusion_stream.publishing import EmbeddedTiled, make_tiled_writer
    from xfusion_stream.simulation import SceneConfig

    root = Path(tempfile.mkdtemp(prefix="xfusion-bench-"))
    config = SceneConfig(shimadzu_shape=tuple(args.shape), n_shimadzu=args.frames)
    t0 = time.perf_counter()
    beam = SimBeam(config)
    _ = beam.scene  # build the scene outside the timed acquisition
    t_scene = time.perf_counter() - t0
    phantom = PhantomTMX7510(name="phantom", backend=SimPhantomBackend(beam), data_dir=root / "raw")
    shimadzu = ShimadzuHPVX2(
        name="shimadzu", backend=SimShimadzuBackend(beam), data_dir=root / "raw"
    )
    with EmbeddedTiled(root / "tiled", readable_storage=[root / "raw"]) as server:
        client = server.client()
        RE = new_run_engine()
        docs: list[tuple[float, str]] = []
        RE.subscribe(lambda name, doc: docs.append((time.perf_counter(), name)))
        RE.subscribe(make_tiled_writer(client, batch_size=args.batch_size))
        t1 = time.perf_counter()
        (uid,) = RE(dual_camera_burst(phantom, shimadzu))
        t_run = time.perf_counter() - t1
        first_event = next(t for t, n in docs if n == "event") - t1
        t2 = time.perf_counter()
        run = client[uid]
        n_ph = run["phantom"]["phantom_image"][:].shape[0]
        n_sh = run["shimadzu"]["shimadzu_image"][:].shape[0]
        t_read = time.perf_counter() - t2
        close_run_engine(RE)
    n_events = n_ph + n_sh
    print(
        json.dumps(
            {
                "bench": "beamline_burst",
                "shimadzu_shape": list(args.shape),
                "phantom_frames": n_ph,
                "shimadzu_frames": n_sh,
                "scene_build_s": round(t_scene, 3),
                "burst_to_first_event_s": round(first_event, 3),
                "run_total_s": round(t_run, 3),
                "events_per_s": round(n_events / t_run, 1),
                "tiled_read_back_s": round(t_read, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
