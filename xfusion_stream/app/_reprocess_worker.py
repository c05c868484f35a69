"""What one Dask worker does for ``xfusion reprocess``: replay a stored raw run from
Tiled through a ``FusionSession`` and write the fused run back to that Tiled.

Everything reaches the worker by reference, never as tensors through the scheduler:
the Tiled URI, the model as a registry name or checkpoint path with the sha256 the
client resolved (checked after loading, so every worker fuses with the same weights),
and the calibration record's JSON content (a few hundred bytes, uid included). A
worker process keeps the models it loaded, so its next run does not load them again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfusion_models.ops import ShimadzuMeasurement

from ..calibration import CalibrationRecord
from ..core import ConfigError, ThreadBudget, XFusionError, load_config
from ..fusion import (
    FusionConfig,
    FusionModel,
    WindowInference,
    WindowJob,
    WindowOutput,
    load_fusion_model,
)
from ..publishing import make_tiled_writer
from ._session import FusionSession

__all__ = [
    "ClusterWindows",
    "ModelReference",
    "ReprocessJob",
    "fuse_window_range",
    "reprocess_run",
    "resolve_model",
    "stop_task_profiler",
]

#: Dask worker config for reprocessing: no statistical task profiler (see
#: ``stop_task_profiler``)
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}
_PROFILER_CALLBACKS = ("profile", "profile-cycle")


def stop_task_profiler(dask_worker: Any) -> bool:
    """Stop the Dask worker's statistical task profiler; True if one was running.

    Why: while a task runs, the worker samples ``sys._current_frames()`` every 10 ms
    from its event loop. On CPython 3.11 before the gh-106883 fix (3.11.7 here) that
    call holds the runtime's thread-list lock while it creates frame objects; when the
    allocation starts a GC pass that frees a ``threading.local`` (event-model's routers
    and dask's thread state hold some, and a replay leaves them in reference cycles),
    ``local_clear`` takes that lock again and the worker freezes for good with the
    GIL held (dask/distributed#8616): its task stops mid-request and it never answers
    the scheduler. Runs in the worker's event loop (``Client.run`` or
    ``loop.add_callback``)."""
    stopped = False
    for name in _PROFILER_CALLBACKS:
        callback = getattr(dask_worker, "periodic_callbacks", {}).get(name)
        if callback is not None and callback.is_running():
            callback.stop()
            stopped = True
    return stopped


def _stop_own_task_profiler() -> None:
    """From inside a task: have this worker's event loop stop its task profiler (a
    worker that joined an existing cluster after ``Client.run`` reached the others)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a Dask worker: nothing samples frames
        return
    if any(
        (cb := worker.periodic_callbacks.get(name)) is not None and cb.is_running()
        for name in _PROFILER_CALLBACKS
    ):
        worker.loop.add_callback(stop_task_profiler, worker)


@dataclass(frozen=True)
class ModelReference:
    """A model as workers find it: ``spec`` (registry name or checkpoint path) and the
    sha256 the weights must have."""

    spec: str
    name: str
    sha256: str


def resolve_model(spec: str | os.PathLike[str] | None) -> ModelReference:
    """The reference for ``--model_file`` (None: the shipped default), without loading
    the network: a checkpoint path is hashed, a registry name read from its entry."""
    import xfusion_models as xm

    try:
        if spec is None:
            entry = xm.default_weights()
            if entry is None:
                raise ConfigError(
                    "no default model ships with this installation; pass --model_file"
                )
            return ModelReference(entry.name, entry.name, entry.sha256)
        path = Path(spec)
        if path.exists():
            # an absolute path: workers of a LocalCluster may start in another folder
            return ModelReference(str(path.resolve()), path.stem, xm.file_sha256(path))
        if any(c in str(spec) for c in "/\\."):
            raise ConfigError(f"{spec}: model file not found")
        entry = xm.get_weights(str(spec))
    except xm.CheckpointError as exc:
        raise ConfigError(str(exc)) from exc
    return ModelReference(str(spec), entry.name, entry.sha256)


@dataclass(frozen=True)
class ReprocessJob:
    """One raw run to fuse, and everything a worker needs for it (all by reference)."""

    tiled_uri: str
    uid: str
    model: ModelReference
    calibration: dict[str, Any]  # the record's JSON content
    traverse_mode: str = "continuous"
    device: str = "cpu"
    precision: str = "fp32"
    torch_threads: int = 1
    timeout: float = 3600.0
    fused_data_dir: str | None = None  # fused frames as HDF5 there (shared file system)
    #: > 0: the run's windows go to the cluster in index ranges of at most this many
    #: (``ClusterWindows``); 0: this worker fuses them all
    split_windows: int = 0
    #: folders (shared by every worker) the raw runs' HDF5 files may be read from
    #: directly; frames elsewhere come through Tiled's HTTP API, one request each
    data_roots: tuple[str, ...] = ()


# models loaded in this worker process, by (spec, sha256, device, precision)
_MODELS: dict[tuple[str, str, str, str], FusionModel] = {}
_MODELS_LOCK = threading.Lock()


def _model(job: ReprocessJob) -> FusionModel:
    """The job's model, loaded once per worker process and refused when its weights
    are not the ones the client resolved."""
    ref = job.model
    key = (ref.spec, ref.sha256, job.device, job.precision)
    with _MODELS_LOCK:
        if key not in _MODELS:
            model = load_fusion_model(ref.spec, device=job.device, precision=job.precision)
            if model.sha256 != ref.sha256:
                raise ConfigError(
                    f"model {ref.spec} on worker {socket.gethostname()} has sha256 "
                    f"{model.sha256[:12]}..., the client resolved {ref.sha256[:12]}..."
                )
            _MODELS[key] = model
        return _MODELS[key]


def fuse_window_range(
    job: ReprocessJob, shimadzu: tuple[int, float, float], feature_cache: bool, windows: list
) -> tuple[str, list[WindowOutput]]:
    """A Dask task: fuse one index range of a run's windows (each window carries the
    frames it needs, so ranges overlap by exactly the shared frames), one window at a
    time as the serial path does. Returns (this worker's address, the outputs)."""
    from distributed import get_worker

    _stop_own_task_profiler()
    inference = WindowInference(
        _model(job), feature_cache=feature_cache, shimadzu=ShimadzuMeasurement(*shimadzu)
    )
    try:
        outputs = inference.run_each(windows)
    finally:
        inference.release()
    return get_worker().address, outputs


class ClusterWindows:
    """Fuses a replayed run's windows on the Dask cluster this task runs on
    (``WindowExecutor``): each batch is cut into index ranges of ``job.split_windows``,
    handed round-robin to the cluster's workers, and put back in order. ``ranges``
    records (first window, last window, worker) for the run's summary."""

    def __init__(self, job: ReprocessJob, client: Any) -> None:
        self.job = job
        self.client = client
        self.workers = sorted(client.scheduler_info().get("workers", {})) or [None]
        self.batch = job.split_windows * len(self.workers)
        self.ranges: list[tuple[int, int, str]] = []

    def runner(self, shimadzu: ShimadzuMeasurement, feature_cache: bool) -> _ClusterRunner:
        return _ClusterRunner(
            self, (shimadzu.ratio, shimadzu.blur_px, shimadzu.noise_scale), feature_cache
        )


class _ClusterRunner:
    def __init__(
        self, windows: ClusterWindows, shimadzu: tuple[int, float, float], feature_cache: bool
    ) -> None:
        self.windows = windows
        self.shimadzu = shimadzu
        self.feature_cache = feature_cache

    def run(self, jobs: Sequence[WindowJob]) -> list[WindowOutput]:
        w = self.windows
        size = w.job.split_windows
        futures = []
        for k, first in enumerate(range(0, len(jobs), size)):
            chunk = list(jobs[first : first + size])
            where = w.workers[k % len(w.workers)]
            futures.append(
                w.client.submit(
                    fuse_window_range,
                    w.job,
                    self.shimadzu,
                    self.feature_cache,
                    chunk,
                    key=f"xfusion-windows-{w.job.uid}-{chunk[0].index}-{time.time_ns()}",
                    workers=None if where is None else [where],
                    allow_other_workers=True,
                    pure=False,
                )
            )
        outputs: list[WindowOutput] = []
        for first, (address, chunk_outputs) in zip(
            range(0, len(jobs), size), w.client.gather(futures)
        ):
            last = jobs[min(first + size, len(jobs)) - 1].index
            w.ranges.append((jobs[first].index, last, address))
            outputs.extend(chunk_outputs)
        return outputs

    def release(self) -> None:
        pass


def _cluster_windows(job: ReprocessJob) -> ClusterWindows | None:
    """The cluster executor for a split job run as a Dask task; None otherwise."""
    if job.split_windows <= 0:
        return None
    from distributed import get_client

    try:
        return ClusterWindows(job, get_client())
    except ValueError:  # not inside a Dask task: fuse here
        return None


@contextlib.contextmanager
def _seceded(split: bool) -> Iterator[None]:
    """While this task waits on the window ranges it handed out, its thread does not
    count against the worker: the ranges (this run's, or those of runs on other
    workers) may run here too, so no worker waits on itself."""
    if not split:
        yield
        return
    from distributed import rejoin, secede

    secede()
    try:
        yield
    finally:
        rejoin()


def reprocess_run(job: ReprocessJob) -> dict[str, Any]:
    """Fuse ``job.uid`` on this worker into a new fused run in Tiled; the run's summary
    (``FusedRunResult.summary`` plus ``seconds`` and ``worker``). Project errors (no such
    run, wrong model, bad record) come back as ``ok: false`` with the reason, so they
    travel as text, not as pickled exceptions."""
    import dask
    from tiled.client import from_uri

    _stop_own_task_profiler()
    t0 = time.perf_counter()
    where = f"{socket.gethostname()}:{os.getpid()}"
    client: Any = None
    try:
        threads = ThreadBudget.for_this_process(torch_threads=job.torch_threads)
        calibration = load_config(
            CalibrationRecord, job.calibration, source=f"calibration {job.calibration.get('uid')}"
        )
        model = _model(job)
        client = from_uri(job.tiled_uri, structure_clients="numpy")
        windows = _cluster_windows(job)
        config = FusionConfig(
            traverse_mode=job.traverse_mode,
            fused_data_dir=job.fused_data_dir,
            queue_size=max(64, windows.batch if windows is not None else 0),
        )
        session = FusionSession(
            model,
            calibration,
            [make_tiled_writer(client)],
            config,
            threads=threads,
            executor=windows,
            data_roots=job.data_roots or None,
        )
        # Tiled's client computes a small dask graph per frame; inside a Dask task that
        # would go to this very cluster (and wait on the busy worker): compute it here
        try:
            with dask.config.set(scheduler="synchronous"), _seceded(windows is not None):
                fused = session.replay(client, job.uid, timeout=job.timeout)
        finally:
            session.close()
        summary = fused.summary()
        if windows is not None:
            summary["window_ranges"] = [list(r) for r in windows.ranges]
    except XFusionError as exc:
        summary = {"ok": False, "problem": str(exc), "raw_uid": job.uid, "frames_fused": 0}
    finally:
        if client is not None:  # its connections, not left to the GC of a later run
            client.context.close()
    summary.update(seconds=round(time.perf_counter() - t0, 3), worker=where)
    return summary
