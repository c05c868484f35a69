"""Speed of the whole live path, measured in one process.

The live path is the real one, configured as shipped: simulated cameras writing burst
files through a RunEngine, the fusion session's callback and worker, fused frames to
their HDF5 file (``fused_data_dir``, ADR 0006) with the documents to an in-process 0MQ
proxy and to an embedded Tiled server, raw documents to Tiled as on the beamline.

The cameras' memories are rendered before the clock starts (``memory_render_s`` says
how long that took): a real camera records its burst in microseconds on its own
hardware, so the scene engine's rendering, which stands in for it, is not the live
path's work. Everything after the trigger is: reading the memory out, writing the
burst files, the documents, registration, fusion, publishing and Tiled.
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
    memory_render_s: float  # the simulated cameras' recording, before the clock starts
    user_s: float
    sys_s: float
    minor_faults: int
    t0: float = 0.0  # perf_counter at the plan's start
    fused_at: list[float] = field(default_factory=list)  # perf_counter per fused frame
    ready_at: list[float] = field(default_factory=list)  # per window: its inputs all in


def _cameras(beam: Any, raw: Path) -> tuple[Any, Any]:
    from ..devices import PhantomTMX7510, ShimadzuHPVX2, SimPhantomBackend, SimShimadzuBackend

    phantom = PhantomTMX7510("B:", name="phantom", backend=SimPhantomBackend(beam), data_dir=raw)
    shimadzu = ShimadzuHPVX2("B:", name="shimadzu", backend=SimShimadzuBackend(beam), data_dir=raw)
    return phantom, shimadzu


def _record_memory(scene: Any) -> float:
    """Render every frame both simulated cameras will read out, once, and keep them:
    the scene's frame methods then return the recorded frames (seconds taken)."""
    t0 = time.perf_counter()
    shimadzu = [scene.shimadzu_frame(k) for k in range(scene.n_shimadzu)]
    phantom = [scene.phantom_frame(i) for i in range(scene.n_phantom)]
    scene.shimadzu_frame = lambda k: shimadzu[k].copy()
    scene.phantom_frame = lambda i: phantom[i].copy()
    return time.perf_counter() - t0


@dataclass
class _Clock:
    """When each fused frame came (and the frames), and when the raw run stopped."""

    kept: list[tuple[FusedFrame, WindowJob]] = field(default_factory=list)
    fused_at: list[float] = field(default_factory=list)
    raw_stop: list[float] = field(default_factory=list)

    def frame(self, frame: FusedFrame, job: WindowJob) -> None:
        self.kept.append((frame, job))
        self.fused_at.append(time.perf_counter())

    def raw(self, name: str, doc: dict) -> None:
        if name == "stop":
            self.raw_stop.append(time.perf_counter())


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
    from ..publishing import (
        EmbeddedTiled,
        OffLoopWriter,
        ProxyThread,
        make_publisher,
        make_tiled_writer,
    )
    from ..simulation import SceneConfig
    from ._session import FusionSession

    beam = SimBeam(SceneConfig(seed=seed, shimadzu_shape=shape, n_shimadzu=n_frames))
    raw, fused = workdir / "raw", workdir / "fused"
    phantom, shimadzu = _cameras(beam, raw)
    scene = beam.scene
    render_s = _record_memory(scene)
    record = CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )
    clock = _Clock()
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
            on_frame=clock.frame,
            threads=threads,
        )
        raw_writer = OffLoopWriter(make_tiled_writer(client))  # off the loop, as configured
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        result = session.run_plan(
            dual_camera_burst(phantom, shimadzu), raw_sinks=[raw_writer, clock.raw]
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF)
        publisher.close()
        raw_writer.close()
    return LiveRun(
        result=result,
        jobs=[j for _, j in clock.kept],
        frames=[f for f, _ in clock.kept],
        scene=scene,
        record=record,
        wall_s=wall,
        acquired_s=(clock.raw_stop[0] - t0) if clock.raw_stop else float("nan"),
        memory_render_s=render_s,
        t0=t0,
        fused_at=clock.fused_at,
        ready_at=[j.ready_at for _, j in clock.kept],
        user_s=after.ru_utime - before.ru_utime,
        sys_s=after.ru_stime - before.ru_stime,
        minor_faults=after.ru_minflt - before.ru_minflt,
    )
