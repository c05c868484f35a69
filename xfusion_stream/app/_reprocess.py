"""Reprocess a campaign: stored raw runs from Tiled fused on Dask distributed workers.

Why Dask: when one process is not enough, an existing distributed engine (a
``LocalCluster`` here, a site's scheduler elsewhere) places and restarts the work;
each task is one raw run replayed through the same ``FusionSession`` as ``xfusion
replay`` (``_reprocess_worker``), so a fused run is the same whoever made it. The
client selects the runs, skips those already fused with the same model sha256 +
calibration uid + traverse mode (``force`` redoes them), retries a failed run once and
then reports its reason while the rest complete. A run longer than ``split_windows``
Shimadzu frames is still one task (it reads the run and composes the fused run), but its
windows go back to the cluster in index ranges (``ClusterWindows``), so one long burst
uses every worker; the frames are the ones a serial replay makes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..calibration import CalibrationRecord
from ..core import ConfigError, child_heap_env, load_config
from ..documents import announced_frames
from ..fusion import is_calibration_run
from ..publishing import DOUBLED_KEY
from ._reprocess_worker import (
    WORKER_CONFIG,
    ModelReference,
    ReprocessJob,
    reprocess_run,
    stop_task_profiler,
)

__all__ = [
    "ReprocessReport",
    "RunSelection",
    "calibration_from_tiled",
    "epoch_seconds",
    "fused_already",
    "reprocess",
    "select_raw_runs",
]

#: each worker: one process, one Dask thread, one torch thread (no oversubscription)
WORKER_ENV = {"XFUSION_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _pre_spawn_environ() -> dict[str, str]:
    """Dask's variables set before a worker process starts, plus the thread budget's heap
    policy (``core.child_heap_env``): glibc reads those once, when the process starts,
    so they cannot go in ``env`` (set inside the worker, too late). Workers of an
    existing cluster (``--scheduler``) need them in the environment they are started
    with."""
    import dask

    return {**(dask.config.get("distributed.nanny.pre-spawn-environ") or {}), **child_heap_env()}


@dataclass(frozen=True)
class RunSelection:
    """Which raw runs: explicit ``uids``, or a query on their start documents
    (``plan_name``, ``sample``, ``since``/``until`` as epoch seconds)."""

    uids: tuple[str, ...] = ()
    plan_name: str | None = None
    sample: str | None = None
    since: float | None = None
    until: float | None = None

    @property
    def is_query(self) -> bool:
        return any(v is not None for v in (self.plan_name, self.sample, self.since, self.until))


def epoch_seconds(text: str) -> float:
    """``--since``/``--until``: epoch seconds or an ISO date/time (local time if naive)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigError(f"{text!r}: not epoch seconds nor an ISO date/time") from None


def select_raw_runs(client: Any, selection: RunSelection) -> list[str]:
    """The uids to reprocess, in order, without repeats: the given ones first, then the
    query's matches that are raw runs (not fused, not calibration runs)."""
    from tiled.queries import Key

    uids = list(dict.fromkeys(selection.uids))
    if selection.is_query:
        found = client
        if selection.plan_name is not None:
            found = found.search(Key("start.plan_name") == selection.plan_name)
        if selection.sample is not None:
            found = found.search(Key("start.sample") == selection.sample)
        if selection.since is not None:
            found = found.search(Key("start.time") >= selection.since)
        if selection.until is not None:
            found = found.search(Key("start.time") <= selection.until)
        matches = []
        for uid, run in found.items():
            start = run.metadata.get("start", {})
            if start.get("purpose") != "fused" and not is_calibration_run(start):
                matches.append((start.get("time", 0.0), uid))
        uids += [uid for _, uid in sorted(matches) if uid not in uids]
    if not uids:
        raise ConfigError("no raw run selected: give --uid or a query that matches")
    return uids


def calibration_from_tiled(client: Any, uid: str) -> CalibrationRecord:
    """The calibration record stored in Tiled as the run ``uid``."""
    try:
        start = client[uid].metadata["start"]
    except KeyError:
        raise ConfigError(f"Tiled has no run {uid!r}") from None
    if "calibration" not in start:
        raise ConfigError(f"run {uid} holds no calibration record")
    return load_config(CalibrationRecord, start["calibration"], source=f"calibration run {uid}")


def fused_already(client: Any, job: ReprocessJob) -> str | None:
    """The uid of a fused run of ``job.uid`` that stopped with success, made with the
    same model sha256, calibration uid and traverse mode, and not marked as holding
    rows twice (``publishing.DOUBLED_KEY``); None if there is none."""
    from tiled.queries import Key

    for fused_uid, run in client.search(Key("start.raw_uid") == job.uid).items():
        start = run.metadata.get("start", {})
        stop = run.metadata.get("stop") or {}
        if (
            start.get("purpose") == "fused"
            and (start.get("model") or {}).get("sha256") == job.model.sha256
            and start.get("calibration_uid") == job.calibration.get("uid")
            and start.get("traverse_mode") == job.traverse_mode
            and stop.get("exit_status") == "success"
            and DOUBLED_KEY not in run.metadata  # rows stored twice: fuse it again
            and _holds_frames(run, stop)  # a run of no frames claimed it "done"
        ):
            return fused_uid
    return None


def _holds_frames(run: Any, stop: dict[str, Any]) -> bool:
    """The stop counts fused frames and Tiled holds the stream they went to."""
    counts = stop.get("num_events")
    if not isinstance(counts, dict):
        return False
    streams = set(run)
    return any(
        isinstance(n, int) and n > 0 and name in streams and name != "gaps"
        for name, n in counts.items()
    )


@dataclass
class ReprocessReport:
    """What a reprocess came to: one entry per raw run, fused, skipped or failed."""

    fused: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    workers: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The JSON of ``xfusion reprocess``: not ok when any run failed."""
        out: dict[str, Any] = {
            "ok": not self.failed,
            "runs": len(self.fused) + len(self.skipped) + len(self.failed),
            "runs_fused": len(self.fused),
            "runs_skipped": len(self.skipped),
            "runs_failed": len(self.failed),
            "frames_fused": sum(int(r.get("frames_fused") or 0) for r in self.fused),
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "fused": self.fused,
            "skipped": self.skipped,
            "failed": self.failed,
        }
        if self.failed:
            first = self.failed[0]
            more = f" (+{len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
            out["error"] = f"run {first['raw_uid']}: {first['problem']}{more}"
        return out


class _Cluster:
    """A Dask client on ``scheduler``, or on a LocalCluster of ``workers`` processes
    (one thread each) that is closed with it."""

    def __init__(self, scheduler: str | None, workers: int) -> None:
        import dask
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler is None:
            if workers < 1:
                raise ConfigError(f"--workers {workers}: need at least one worker")
            # the nannies hand this config to the worker processes they spawn
            config = {**WORKER_CONFIG, "distributed.nanny.pre-spawn-environ": _pre_spawn_environ()}
            with dask.config.set(config):
                self.cluster = LocalCluster(
                    n_workers=workers,
                    processes=True,
                    threads_per_worker=1,
                    dashboard_address=None,
                    env=WORKER_ENV,
                )
        # not the process's default scheduler: dask work elsewhere in this process (an
        # embedded Tiled server reading arrays) must not queue behind the fusion tasks
        address = self.cluster if self.cluster is not None else scheduler
        self.client = Client(address, set_as_default=False)
        # an existing cluster's workers profile tasks unless configured not to: stop it
        # before any task runs (``stop_task_profiler`` says why)
        self.client.run(stop_task_profiler)

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _failure(job: ReprocessJob, problem: str, attempts: int) -> dict[str, Any]:
    return {"raw_uid": job.uid, "problem": problem, "attempts": attempts}


def _run_jobs(
    cluster: _Cluster, jobs: list[ReprocessJob], report: ReprocessReport, bar: Any
) -> None:
    """Submit every job, retry each failure once, sort the outcomes into ``report``."""
    from distributed import as_completed

    def submit(job: ReprocessJob, attempt: int) -> Any:
        key = f"xfusion-reprocess-{job.uid}-{attempt}-{time.time_ns()}"
        return cluster.client.submit(reprocess_run, job, key=key, pure=False)

    attempts: dict[Any, tuple[ReprocessJob, int]] = {}
    for job in jobs:
        attempts[submit(job, 1)] = (job, 1)
    queue = as_completed(list(attempts), loop=cluster.client.loop)
    for future in queue:
        job, attempt = attempts.pop(future)
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - a worker's crash, any kind: its reason
            result = {"ok": False, "problem": f"{type(exc).__name__}: {exc}", "raw_uid": job.uid}
        future.release()
        if result.get("ok"):
            report.fused.append({**result, "attempts": attempt})
        elif attempt < 2:
            retry = submit(job, attempt + 1)
            attempts[retry] = (job, attempt + 1)
            queue.add(retry)
            continue
        else:
            report.failed.append({**result, **_failure(job, str(result.get("problem")), attempt)})
        bar.update(1)


def _bar(total: int, enabled: bool, file: IO[str] | None) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="reprocess",
        unit="run",
        file=file if file is not None else sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
    )


def _shimadzu_frames(client: Any, uid: str) -> int | None:
    """The Shimadzu frame count the raw run's start announces (None: not announced)."""
    try:
        start = client[uid].metadata.get("start", {})
    except KeyError:
        return None  # the worker reports the missing run
    return announced_frames(start, "shimadzu") if isinstance(start, dict) else None


def _jobs(
    client: Any, uids: Iterable[str], template: ReprocessJob, split_windows: int
) -> Iterator[ReprocessJob]:
    """One job per run; split (window ranges across workers) when the run is longer
    than ``split_windows`` frames or does not say how long it is."""
    for uid in uids:
        split = 0
        if split_windows > 0:
            n = _shimadzu_frames(client, uid)
            split = split_windows if n is None or n > split_windows else 0
        yield replace(template, uid=uid, split_windows=split)


def reprocess(
    client: Any,
    tiled_uri: str,
    selection: RunSelection,
    model: ModelReference,
    calibration: CalibrationRecord,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    force: bool = False,
    traverse_mode: str = "continuous",
    device: str = "cpu",
    precision: str = "fp32",
    timeout: float = 3600.0,
    progress: bool = True,
    progress_file: IO[str] | None = None,
    fused_data_dir: str | None = None,
    split_windows: int = 32,
    data_roots: Iterable[str] = (),
) -> ReprocessReport:
    """Fuse the selected raw runs on Dask workers (a LocalCluster of ``workers``
    processes, or the cluster at ``scheduler``) into fused runs in the Tiled at
    ``tiled_uri``; ``client`` is this process's client on it, for selecting runs.
    ``fused_data_dir``: a folder every worker can write and Tiled can read, for the
    fused frames as HDF5 (None: inline). ``split_windows``: runs longer than this many
    Shimadzu frames are fused on several workers in window ranges of it (0: never).
    ``data_roots``: folders every worker sees where raw HDF5 files may be read directly
    (faster than Tiled's HTTP API, which otherwise serves every frame)."""
    if split_windows < 0:
        raise ConfigError(f"--split-windows {split_windows}: must be 0 or more")
    t0 = time.perf_counter()
    template = ReprocessJob(
        tiled_uri=tiled_uri,
        uid="",
        model=model,
        calibration=calibration.model_dump(mode="json"),
        traverse_mode=traverse_mode,
        fused_data_dir=fused_data_dir,
        device=device,
        precision=precision,
        timeout=timeout,
        data_roots=tuple(str(Path(root).expanduser().resolve()) for root in data_roots),
    )
    report = ReprocessReport()
    todo = []
    for job in _jobs(client, select_raw_runs(client, selection), template, split_windows):
        done = None if force else fused_already(client, job)
        if done is None:
            todo.append(job)
        else:
            report.skipped.append({"raw_uid": job.uid, "fused_uid": done})
    if todo:
        cluster = _Cluster(scheduler, workers)
        bar = _bar(len(todo), progress, progress_file)
        try:
            report.workers = cluster.workers()
            _run_jobs(cluster, todo, report, bar)
        finally:
            bar.close()
            cluster.close()
    report.seconds = time.perf_counter() - t0
    return report
