"""Speed of the whole live path, measured in one process.

The live path is the real one, configured as shipped: simulated cameras writing burst
files through a RunEngine, the fusion session's callback and worker, fused frames to
their HDF5 file (``fused_data_dir``, ADR 0006) with the documents to an in-process 0MQ
proxy and to an embedded Tiled server, raw documents to Tiled as on the beamline.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import ThreadBudget
from ..fusion import FusedFrame, FusedRunResult, FusionConfig, FusionModel, WindowJob

__all__ = ["LiveRun", "live_pipeline"]


@dataclass
class LiveRun:
    """What one live burst gives the other measurements: its windows and its costs."""

    result: FusedRunResult
    jobs: list[WindowJob]
    frames: list[FusedFrame]
    scene: Any
    record: Any
    wall_s: float
    acquired_s: float  # RunEngine start -> raw stop document
    user_s: float
    sys_s: float
    minor_faults: int
    raw_stop_at: list[float] = field(default_factory=list)


def _cameras(beam: Any, raw: Path) -> tuple[Any, Any]:
    from ..devices import PhantomTMX7510, ShimadzuHPVX2, SimPhantomBackend, SimShimadzuBackend

    phantom = PhantomTMX7510("B:", name="phantom", backend=SimPhantomBackend(beam), data_dir=raw)
    shimadzu = ShimadzuHPVX2("B:", name="shimadzu", backend=SimShimadzuBackend(beam), data_dir=raw)
    return phantom, shimadzu


def live_pipeline(
    model: FusionModel,
    shape: tuple[int, int],
    n_frames: int,
    seed: int,
    workdir: Path,
    threads: ThreadBudget | None = None,
) -> LiveRun:
    """One simulated burst, acquired and fused live with 0MQ and Tiled sinks, under
    ``threads`` (default: the session's own budget)."""
    from xfusion_plans import dual_camera_burst

    from ..calibration import CalibrationRecord
    from ..devices import SimBeam
    from ..publishing import EmbeddedTiled, ProxyThread, make_publisher, make_tiled_writer
    from ..simulation import SceneConfig
    from ._session import FusionSession

    beam = SimBeam(SceneConfig(seed=seed, shimadzu_shape=shape, n_shimadzu=n_frames))
    raw, fused = workdir / "raw", workdir / "fused"
    phantom, shimadzu = _cameras(beam, raw)
    scene = beam.scene
    record = CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )
    kept: list[tuple[FusedFrame, WindowJob]] = []
    stop_times: list[float] = []

    def raw_stop(name: str, doc: dict) -> None:
        if name == "stop":
            stop_times.append(time.perf_counter())

    with (
        EmbeddedTiled(workdir / "tiled", readable_storage=[raw, fused]) as tiled,
        ProxyThread() as proxy,
    ):
        client = tiled.client()
        publisher = make_publisher(proxy.in_address)
        sinks = [publisher, make_tiled_writer(client)]
        session = FusionSession(
            model,
            record,
            sinks,
            FusionConfig(fused_data_dir=str(fused)),
            on_frame=lambda f, j: kept.append((f, j)),
            threads=threads,
        )
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        result = session.run_plan(
            dual_camera_burst(phantom, shimadzu), raw_sinks=[make_tiled_writer(client), raw_stop]
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF)
        publisher.close()
    return LiveRun(
        result=result,
        jobs=[j for _, j in kept],
        frames=[f for f, _ in kept],
        scene=scene,
        record=record,
        wall_s=wall,
        acquired_s=(stop_times[0] - t0) if stop_times else float("nan"),
        user_s=after.ru_utime - before.ru_utime,
        sys_s=after.ru_stime - before.ru_stime,
        minor_faults=after.ru_minflt - before.ru_minflt,
    )
