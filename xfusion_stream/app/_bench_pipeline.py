"""Speed of the whole live path and of the sinks it writes to, measured in one process.

The live path is the real one: simulated cameras through a RunEngine, the fusion
session's callback and worker, fused documents to an in-process 0MQ proxy and to an
embedded Tiled server, raw documents to Tiled as on the beamline. Persistence pushes
ready-made runs through the same sinks and compares them with h5py on local disk.
"""

from __future__ import annotations

import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..fusion import FusedFrame, FusedRunResult, FusionConfig, FusionModel, WindowJob

__all__ = ["LiveRun", "live_pipeline", "persistence_rates"]


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
    raw_stop_at: list[float] = field(default_factory=list)


def _cameras(beam: Any, raw: Path) -> tuple[Any, Any]:
    from ..devices import PhantomTMX7510, ShimadzuHPVX2, SimPhantomBackend, SimShimadzuBackend

    phantom = PhantomTMX7510("B:", name="phantom", backend=SimPhantomBackend(beam), data_dir=raw)
    shimadzu = ShimadzuHPVX2("B:", name="shimadzu", backend=SimShimadzuBackend(beam), data_dir=raw)
    return phantom, shimadzu


def live_pipeline(
    model: FusionModel, shape: tuple[int, int], n_frames: int, seed: int, workdir: Path
) -> LiveRun:
    """One simulated burst, acquired and fused live with 0MQ and Tiled sinks."""
    from xfusion_plans import dual_camera_burst

    from ..calibration import CalibrationRecord
    from ..devices import SimBeam
    from ..publishing import EmbeddedTiled, ProxyThread, make_publisher, make_tiled_writer
    from ..simulation import SceneConfig
    from ._session import FusionSession

    beam = SimBeam(SceneConfig(seed=seed, shimadzu_shape=shape, n_shimadzu=n_frames))
    raw = workdir / "raw"
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
        EmbeddedTiled(workdir / "tiled", readable_storage=[raw]) as tiled,
        ProxyThread() as proxy,
    ):
        client = tiled.client()
        publisher = make_publisher(proxy.in_address)
        sinks = [publisher, make_tiled_writer(client)]
        session = FusionSession(
            model, record, sinks, FusionConfig(), on_frame=lambda f, j: kept.append((f, j))
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
    )


def _run_documents(shape: tuple[int, int], dtype: str, n: int) -> list[tuple[str, Any]]:
    """A plain Bluesky run with ``n`` events of one inline array of ``shape``/``dtype``."""
    from event_model import compose_run

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 4000, size=shape).astype(dtype)
    bundle = compose_run(metadata={"purpose": "xfusion bench persistence"})
    docs: list[tuple[str, Any]] = [("start", bundle.start_doc)]
    key = {
        "source": "bench",
        "dtype": "array",
        "shape": list(shape),
        "dtype_numpy": frame.dtype.str,
    }
    desc = bundle.compose_descriptor(name="primary", data_keys={"image": key})
    docs.append(("descriptor", desc.descriptor_doc))
    for i in range(n):
        docs.append(
            ("event", desc.compose_event(data={"image": frame}, timestamps={"image": float(i)}))
        )
    docs.append(("stop", bundle.compose_stop()))
    return docs


def _tiled_rate(client: Any, docs: list[tuple[str, Any]], n: int) -> float:
    from ..publishing import make_tiled_writer

    writer = make_tiled_writer(client)
    t0 = time.perf_counter()
    for name, doc in docs:
        writer(name, doc)
    return n / (time.perf_counter() - t0)


def _zmq_rate(docs: list[tuple[str, Any]], n: int) -> float:
    """Events/s from a bluesky Publisher through the proxy to a subscriber that decodes."""
    import zmq

    from ..publishing import ProxyThread, make_publisher, unpack_document

    with ProxyThread() as proxy:
        context: Any = zmq.Context.instance()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.connect(proxy.out_address)
        publisher = make_publisher(proxy.in_address)
        publisher._socket.setsockopt(zmq.SNDHWM, 0)  # count every message, drop none
        time.sleep(0.3)  # PUB/SUB joins are asynchronous: late joiners miss messages
        done = threading.Event()
        got = [0]

        def receive() -> None:
            while got[0] < len(docs) and sub.poll(5000):
                _prefix, _name, payload = sub.recv().split(b" ", 2)
                unpack_document(payload)
                got[0] += 1
            done.set()

        thread = threading.Thread(target=receive, daemon=True)
        t0 = time.perf_counter()
        thread.start()
        for name, doc in docs:
            publisher(name, doc)
        done.wait(120)
        seconds = time.perf_counter() - t0
        publisher.close()
        sub.close(linger=0)
    if got[0] < len(docs):
        return float("nan")  # lost messages: a rate would lie
    return n / seconds


def _h5_rate(path: Path, shape: tuple[int, int], dtype: str, n: int) -> float:
    import h5py

    frame = np.zeros(shape, dtype=dtype)
    t0 = time.perf_counter()
    with h5py.File(path, "w") as h5:
        data = h5.create_dataset("data", shape=(n, *shape), dtype=dtype, chunks=(1, *shape))
        for i in range(n):
            data[i] = frame
    return n / (time.perf_counter() - t0)


def persistence_rates(
    workdir: Path, cases: dict[str, tuple[tuple[int, int], str]], n: int
) -> dict[str, dict[str, float]]:
    """Frames/s that Tiled writing and the 0MQ publisher sustain per case, and h5py's."""
    from ..publishing import EmbeddedTiled

    out: dict[str, dict[str, float]] = {}
    with EmbeddedTiled(workdir / "persistence") as tiled:
        client = tiled.client()
        for label, (shape, dtype) in cases.items():
            docs = _run_documents(shape, dtype, n)
            tiled_fps = _tiled_rate(client, docs, n)
            zmq_fps = _zmq_rate(docs, n)
            h5_fps = _h5_rate(workdir / f"{label}.h5", shape, dtype, n)
            out[label] = {
                "shape": list(shape),  # type: ignore[dict-item]
                "dtype": dtype,  # type: ignore[dict-item]
                "tiled_fps": round(tiled_fps, 2),
                "zmq_fps": round(zmq_fps, 2),
                "h5py_fps": round(h5_fps, 2),
                "tiled_over_h5py": round(tiled_fps / h5_fps, 4),
                "zmq_over_h5py": round(zmq_fps / h5_fps, 4),
            }
    return out
