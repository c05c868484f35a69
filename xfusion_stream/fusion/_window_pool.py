"""Fusion processes: N copies of the model in child processes, fed windows by index.

Why processes: one Python process fuses one window at a time, and on a machine with
more cores than torch's intra-op threads can use well, N processes with a thread or two
each fuse N windows at once. The session (documents, registration, the composer) stays
in one process, so there is still one fused run per raw run with its events in frame
order; only the model's forward moves out.

A batch of windows is cut into contiguous index ranges, one per process (neighbouring
windows share frames, so each process's feature cache keeps its hits). Each process
fuses its windows one at a time with a ``WindowInference`` per fused run, which is why
the frames are bit-identical to fusing in the worker thread. A process that dies is
replaced (it loads the model again) and the window it had is sent again, up to
``max_restarts`` times for one window; then the fused run fails with the reason.

Messages are the project's msgpack wire format (``publishing.pack_document``), never
pickle. Children load the model by reference (``FusionModel.source`` and its sha256).
"""

from __future__ import annotations

import collections
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from xfusion_models.ops import ShimadzuMeasurement

from ..core import ConfigError, XFusionError
from ..publishing import pack_document, unpack_document
from ._inference import WindowInference, WindowOutput
from ._model import FusionModel
from ._window_wire import job_from, job_message, output_from, output_message

if TYPE_CHECKING:
    from ._runner import WindowJob

__all__ = ["WindowPool"]

logger = logging.getLogger(__name__)

#: fused runs a child keeps caches for (a run's release frees its own at once)
_RUNS_PER_CHILD = 8


def _child_main(
    conn: Any, source: str, sha256: str, device: str, precision: str, threads: int
) -> None:
    """A fusion process: load the model, then fuse windows until told to close."""
    from ..core import ThreadBudget
    from ._model import load_fusion_model

    ThreadBudget(threads, opencv_threads=1).apply()
    try:
        model = load_fusion_model(source, device=device, precision=precision)
        if model.sha256 != sha256:
            raise ConfigError(f"{source}: sha256 {model.sha256[:12]}..., expected {sha256[:12]}...")
    except Exception as exc:  # noqa: BLE001 - the parent reports it
        conn.send_bytes(pack_document({"kind": "fatal", "message": f"{exc}"}))
        return
    conn.send_bytes(pack_document({"kind": "ready", "pid": os.getpid()}))
    runs: collections.OrderedDict[str, WindowInference] = collections.OrderedDict()
    while True:
        try:
            msg = unpack_document(conn.recv_bytes())
        except (EOFError, OSError):  # the parent is gone
            return
        kind = msg.get("kind")
        if kind == "close":
            return
        if kind == "release":
            runs.pop(msg["run"], None)
            continue
        inference = runs.get(msg["run"])
        if inference is None:
            shimadzu = ShimadzuMeasurement(*msg["shimadzu"])
            inference = WindowInference(
                model, feature_cache=msg["feature_cache"], shimadzu=shimadzu
            )
            runs[msg["run"]] = inference
            while len(runs) > _RUNS_PER_CHILD:
                runs.popitem(last=False)
        try:
            (out,) = inference.run([job_from(msg)])
            reply = output_message(msg["index"], out)
        except Exception as exc:  # noqa: BLE001 - the fused run's failure reason
            reply = pack_document({"kind": "error", "message": f"{exc!r}"})
        conn.send_bytes(reply)


@dataclass
class _Child:
    slot: int
    process: Any
    conn: Any
    todo: collections.deque[int] = field(default_factory=collections.deque)
    busy: int | None = None  # position in the batch of the window it has


class WindowPool:
    """``workers`` fusion processes for one session's runs (``FusionSession(executor=)``).

    ``torch_threads`` per process; ``window_timeout``: the longest one window may take
    before the pool gives up on the batch (the fused run fails with the reason).
    """

    def __init__(
        self,
        model: FusionModel,
        workers: int,
        *,
        torch_threads: int = 1,
        start_timeout: float = 300.0,
        window_timeout: float = 600.0,
        max_restarts: int = 3,
        batch_per_worker: int = 4,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"workers {workers}: need at least one fusion process")
        if model.source is None:
            raise ConfigError(
                f"model {model.name} was not loaded by registry name or checkpoint path: "
                "fusion processes cannot load it again"
            )
        self.model = model
        self.workers = workers
        self.torch_threads = torch_threads
        self.start_timeout = start_timeout
        self.window_timeout = window_timeout
        self.max_restarts = max_restarts
        self.batch = workers * batch_per_worker
        self.replaced = 0
        self.windows_redone = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._runs = itertools.count(1)
        self._children: list[_Child] = []
        self._closed = False
        try:
            for slot in range(workers):
                self._children.append(self._spawn(slot))
            for child in self._children:
                self._wait_ready(child)
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_command(
        cls, model: FusionModel, workers: int, torch_threads: int | None = None
    ) -> WindowPool | None:
        """What ``--workers N`` means on a command line: None for 1 (windows fused in
        the command's own process), else N processes with ``torch_threads`` each
        (default: ``XFUSION_TORCH_THREADS``, else this process's cores / N). Started now, so a model they cannot load
        fails before anything else begins."""
        if workers == 1:
            return None
        from ..core import available_cores

        threads = (
            torch_threads
            or int(os.environ.get("XFUSION_TORCH_THREADS", 0))
            or max(1, available_cores() // max(1, workers))
        )
        return cls(model, workers, torch_threads=threads)

    # ---- processes --------------------------------------------------------------------
    def _spawn(self, slot: int) -> _Child:
        parent, child_end = self._ctx.Pipe(duplex=True)
        m = self.model
        process = self._ctx.Process(
            target=_child_main,
            args=(child_end, m.source, m.sha256, str(m.device), m.precision, self.torch_threads),
            name=f"xfusion-fusion-{slot}",
            daemon=True,
        )
        from ..core import inherited_heap_policy

        with inherited_heap_policy():  # its imports start threads before its budget
            process.start()
        child_end.close()
        return _Child(slot, process, parent)

    def _wait_ready(self, child: _Child) -> None:
        if not child.conn.poll(self.start_timeout):
            raise XFusionError(
                f"fusion process {child.slot} did not load the model in {self.start_timeout:g} s"
            )
        try:
            msg = unpack_document(child.conn.recv_bytes())
        except (EOFError, OSError):
            raise XFusionError(
                f"fusion process {child.slot} exited while loading the model "
                f"(exit code {child.process.exitcode})"
            ) from None
        if msg.get("kind") != "ready":
            raise XFusionError(f"fusion process {child.slot}: {msg.get('message')}")

    def _replace(self, child: _Child) -> _Child:
        """A new process in ``child``'s slot with its unfinished windows."""
        child.process.join(1)
        if child.process.is_alive():
            child.process.kill()
        child.conn.close()
        logger.warning(
            "fusion process %s (pid %s) died (exit code %s); starting another",
            child.slot,
            child.process.pid,
            child.process.exitcode,
        )
        fresh = self._spawn(child.slot)
        self._wait_ready(fresh)
        fresh.todo = child.todo
        if child.busy is not None:
            fresh.todo.appendleft(child.busy)
            self.windows_redone += 1
        self._children[child.slot] = fresh
        self.replaced += 1
        return fresh

    def pids(self) -> list[int]:
        """The fusion processes' pids, by slot."""
        return [child.process.pid for child in self._children]

    def stats(self) -> dict[str, Any]:
        return {
            "processes": self.workers,
            "pids": self.pids(),
            "replaced": self.replaced,
            "windows_redone": self.windows_redone,
        }

    # ---- fusing -------------------------------------------------------------------------
    def runner(self, shimadzu: ShimadzuMeasurement, feature_cache: bool) -> _PoolRunner:
        return _PoolRunner(self, f"run-{next(self._runs)}", shimadzu, feature_cache)

    def execute(
        self, run: str, settings: dict[str, Any], jobs: Sequence[WindowJob]
    ) -> list[WindowOutput]:
        """Fuse ``jobs`` across the processes; outputs in the order of ``jobs``."""
        with self._lock:
            if self._closed:
                raise XFusionError("the fusion processes were closed")
            for child in list(self._children):  # died between batches
                if not child.process.is_alive():
                    self._replace(child)
            outputs: list[WindowOutput | None] = [None] * len(jobs)
            bounds = np.linspace(0, len(jobs), len(self._children) + 1).round().astype(int)
            for child, lo, hi in zip(self._children, bounds[:-1], bounds[1:]):
                child.todo = collections.deque(range(lo, hi))
            restarts: collections.Counter[int] = collections.Counter()
            messages = [job_message(run, settings, job) for job in jobs]
            try:
                for child in self._children:
                    self._send_next(child, messages)
                while any(child.busy is not None for child in self._children):
                    self._collect(outputs, messages, restarts, jobs)
            except BaseException:
                self._settle()
                raise
            done = [out for out in outputs if out is not None]
            if len(done) != len(jobs):  # cannot happen: every window is sent until answered
                raise XFusionError(f"fusion processes returned {len(done)} of {len(jobs)} windows")
            return done

    def _settle(self) -> None:
        """A batch failed: no process may keep an answer the next batch would read as
        its own. Each busy one is waited for (its answer dropped) or, silent past
        ``window_timeout``, replaced."""
        for child in list(self._children):
            child.todo.clear()
            if child.busy is None:
                continue
            child.busy = None
            try:
                if child.conn.poll(self.window_timeout):
                    child.conn.recv_bytes()
                    continue
            except (EOFError, OSError):
                pass
            child.process.kill()
            self._replace(child)

    def _send_next(self, child: _Child, messages: list[bytes]) -> None:
        child.busy = child.todo.popleft() if child.todo else None
        if child.busy is not None:
            try:
                child.conn.send_bytes(messages[child.busy])
            except (BrokenPipeError, OSError):
                pass  # the process is gone: its sentinel says so next

    def _collect(
        self,
        outputs: list[WindowOutput | None],
        messages: list[bytes],
        restarts: collections.Counter[int],
        jobs: Sequence[WindowJob],
    ) -> None:
        busy = [child for child in self._children if child.busy is not None]
        waitables = [c.conn for c in busy] + [c.process.sentinel for c in busy]
        if not multiprocessing.connection.wait(waitables, timeout=self.window_timeout):
            raise XFusionError(f"no fusion process finished a window in {self.window_timeout:g} s")
        for child in busy:
            if child.conn.poll():
                try:
                    msg = unpack_document(child.conn.recv_bytes())
                except (EOFError, OSError):  # its end of the pipe closed: it is dying
                    self._died(child, messages, restarts, jobs)
                    continue
                if msg.get("kind") == "error":
                    window = jobs[child.busy].index  # type: ignore[index]
                    child.busy = None  # answered: nothing of it is left in the pipe
                    raise XFusionError(f"fusion process on window {window}: {msg['message']}")
                outputs[child.busy] = output_from(msg)  # type: ignore[index]
                self._send_next(child, messages)
            elif not child.process.is_alive():
                self._died(child, messages, restarts, jobs)

    def _died(
        self,
        child: _Child,
        messages: list[bytes],
        restarts: collections.Counter[int],
        jobs: Sequence[WindowJob],
    ) -> None:
        position = child.busy
        if position is not None:
            restarts[position] += 1
            if restarts[position] > self.max_restarts:
                raise XFusionError(
                    f"fusion processes died {restarts[position]} times on window "
                    f"{jobs[position].index}"
                )
        fresh = self._replace(child)
        self._send_next(fresh, messages)

    def release(self, run: str) -> None:
        """Free the caches every process keeps for ``run``."""
        with self._lock:
            for child in self._children:
                try:
                    child.conn.send_bytes(pack_document({"kind": "release", "run": run}))
                except (BrokenPipeError, OSError):
                    pass

    def close(self, timeout: float = 10.0) -> None:
        """End the processes (asked first, killed past ``timeout``)."""
        self._closed = True
        for child in self._children:
            try:
                child.conn.send_bytes(pack_document({"kind": "close"}))
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + timeout
        for child in self._children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                child.process.kill()
                child.process.join(1)
            child.conn.close()

    def __enter__(self) -> WindowPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PoolRunner:
    """One fused run's view of the pool (``WindowRunner``)."""

    def __init__(
        self, pool: WindowPool, run: str, shimadzu: ShimadzuMeasurement, feature_cache: bool
    ) -> None:
        self.pool = pool
        self.run_key = run
        self.settings = {
            "shimadzu": [shimadzu.ratio, shimadzu.blur_px, shimadzu.noise_scale],
            "feature_cache": feature_cache,
        }

    def run(self, jobs: Sequence[WindowJob]) -> list[WindowOutput]:
        return self.pool.execute(self.run_key, self.settings, jobs)

    def release(self) -> None:
        self.pool.release(self.run_key)
