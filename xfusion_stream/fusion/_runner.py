"""Inference off the RunEngine thread: a bounded queue, a worker, a per-frame feature cache.

The document callback only registers frames and hands over complete windows. One
worker thread owns the model and the fused run's composer, so fused documents leave in
order from a single thread.
"""

from __future__ import annotations

import collections
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from xfusion_models.ops import ShimadzuMeasurement

from ._composer import FusedFrame, FusedRunComposer
from ._inference import LOOK_AHEAD_WINDOWS, WindowExecutor, WindowInference, WindowRunner
from ._model import FusionModel
from ._truth import score_against_truth

__all__ = ["WindowJob", "FusionWorker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowJob:
    """A window whose five inputs are registered, normalised and in hand."""

    index: int
    shimadzu_index: int
    shimadzu_time_ns: int
    lr: tuple[int, int, int]
    hr: tuple[int, int]
    lr_frames: tuple[np.ndarray, np.ndarray, np.ndarray]
    hr_frames: tuple[np.ndarray, np.ndarray]
    truth_index: int = -1
    truth: np.ndarray | None = None
    ready_at: float = field(default_factory=time.perf_counter)  # last input arrived
    #: where the Shimadzu saw the field relative to the registration, (rows, cols)
    #: Shimadzu px, measured at the run's simultaneous frames up to this window's time
    #: (``ShimadzuMeasurement.offset``); NaN: not measured
    shimadzu_offset: tuple[float, float] = (math.nan, math.nan)


@dataclass
class _Stop:
    exit_status: str
    reason: str


@dataclass
class _Start:
    frame_shape: tuple[int, int]
    stream_name: str


@dataclass
class WorkerReport:
    frames: int = 0
    gaps: list[int] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # raw documents lost on the way in
    failure: str = ""
    stop_doc: dict | None = None
    model_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # input complete -> fused event out
    # per fused frame, its residual against Shimadzu frame t (noise units): RMS, p99
    residual_rms: list[float] = field(default_factory=list)
    residual_p99: list[float] = field(default_factory=list)


def _metrics(fused: np.ndarray, job: WindowJob) -> dict[str, float]:
    """Truth scores of a double-mode window (nearest baseline: the Phantom frame before)."""
    if job.truth is None:
        return {}
    return score_against_truth(fused, job.truth, job.lr_frames[1], job.hr_frames, nearer=0)


class FusionWorker:
    """Owns the model, the cache and the composer of one fused run; ``shimadzu`` (default:
    ratio 4, no extra blur) is how the Shimadzu sees a fused frame, from the calibration.
    ``on_done`` is called once the run is over (e.g. to free a session's fusion slot).
    ``executor`` fuses the windows elsewhere (``WindowPool``, Dask workers), handed
    over ``executor.batch`` at a time; the frames are the same either way."""

    def __init__(
        self,
        model: FusionModel,
        composer: FusedRunComposer,
        *,
        queue_size: int,
        when_full: str,
        max_batch: int = 1,
        feature_cache: bool = True,
        on_frame: Callable[[FusedFrame, WindowJob], None] | None = None,
        shimadzu: ShimadzuMeasurement | None = None,
        on_done: Callable[[], None] | None = None,
        executor: WindowExecutor | None = None,
    ) -> None:
        self.on_done = on_done
        self.model = model
        self.on_frame = on_frame
        self.composer = composer
        self.when_full = when_full
        self.max_batch = max_batch
        self.report = WorkerReport()
        self.inference: WindowRunner
        if executor is None:
            self.inference = WindowInference(model, feature_cache=feature_cache, shimadzu=shimadzu)
        else:
            self.inference = executor.runner(shimadzu or ShimadzuMeasurement(), feature_cache)
            self.max_batch = max(max_batch, executor.batch)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        # skipped windows (window index, shimadzu index); appended by the callback thread
        # without blocking, turned into ``gaps`` events by the worker
        self._skipped: collections.deque[tuple[int, int]] = collections.deque()
        # raw documents lost before they reached us (RunGuard), as gaps with a cause
        self._lost: collections.deque[tuple[int, str]] = collections.deque()
        self._failed = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="xfusion-fusion-worker", daemon=True
        )
        self._thread.start()

    # ---- called from the document callback ------------------------------------
    def start_run(self, frame_shape: tuple[int, int], stream_name: str) -> None:
        self._queue.put(_Start(frame_shape, stream_name))

    def submit(self, job: WindowJob) -> bool:
        """Queue a window; False if it was skipped because the queue was full."""
        if self._failed.is_set():
            return False
        if self.when_full == "block":
            self._queue.put(job)
            return True
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._skipped.append((job.index, job.shimadzu_index))
            return False
        return True

    def note_loss(self, message: str, shimadzu_index: int = -1) -> None:
        """Raw documents of this run were lost: a ``gaps`` event with ``message``."""
        self._lost.append((shimadzu_index, message))

    def stop_run(self, exit_status: str = "success", reason: str = "") -> None:
        self._queue.put(_Stop(exit_status, reason))

    def join(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    # ---- worker thread -----------------------------------------------------------
    def _loop(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, _Start):  # always the first item
                    try:
                        self.composer.start(item.frame_shape, item.stream_name)
                    except Exception as exc:  # noqa: BLE001 - the stop says why
                        logger.error("fused run could not start: %s", exc)
                        self.fail(f"fused run could not start: {exc}")
                    continue
                self._record_gaps()
                if isinstance(item, _Stop):
                    self._finish(item)
                    return
                if not self._failed.is_set():
                    self._process([item, *self._more_ready()])
        finally:
            self._over()
            self.done.set()

    def _over(self) -> None:
        """Call ``on_done`` once: the model's part of the run is over."""
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done()

    def _record_gaps(self) -> None:
        while self._skipped:
            window_index, shimadzu_index = self._skipped.popleft()
            self.report.gaps.append(window_index)
            self.composer.gap(window_index, shimadzu_index, time.time())
        while self._lost:
            shimadzu_index, message = self._lost.popleft()
            self.report.lost.append(message)
            self.composer.gap(-1, shimadzu_index, time.time(), cause=message)

    def _more_ready(self) -> list[WindowJob]:
        """Further queued windows to batch with the first (only when max_batch > 1)."""
        extra: list[WindowJob] = []
        while len(extra) + 1 < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, WindowJob):
                self._queue.queue.appendleft(item)  # keep control items in order
                break
            extra.append(item)
        return extra

    def _look_ahead(self) -> None:
        """Let the model's inference start the next Phantom pair's flow (on a GPU)."""
        inference = self.inference
        if not (isinstance(inference, WindowInference) and inference.flow_ahead):
            return
        with self._queue.mutex:
            queued = [item for item in self._queue.queue if isinstance(item, WindowJob)]
        inference.look_ahead(queued[:LOOK_AHEAD_WINDOWS])

    def _process(self, jobs: list[WindowJob]) -> None:
        try:
            self._look_ahead()
            t0 = time.perf_counter()
            outputs = self.inference.run(jobs)
            self.report.model_seconds += time.perf_counter() - t0
            for job, out in zip(jobs, outputs):
                if not np.isfinite(out.image).all():  # never published as a fused frame
                    self.fail(
                        f"non-finite values in the fused frame of window {job.index} "
                        f"(Shimadzu frame {job.shimadzu_index})"
                    )
                    return
                frame = self.composer.schema.record(job, out, _metrics(out.image, job))
                self.composer.event(frame, time.time())
                self.report.frames += 1
                self.report.latencies.append(time.perf_counter() - job.ready_at)
                self.report.residual_rms.append(out.residual.rms)
                self.report.residual_p99.append(out.residual.p99)
                if self.on_frame is not None:
                    self.on_frame(frame, job)
        except Exception as exc:  # noqa: BLE001 - becomes the fused run's failure reason
            logger.exception("fusion failed on window %s", jobs[0].index)
            self.fail(f"fusion failed on window {jobs[0].index}: {exc!r}")

    def fail(self, reason: str) -> None:
        if not self._failed.is_set():
            self.report.failure = reason
            self._failed.set()

    def _finish(self, stop: _Stop) -> None:
        """Stop the fused run, then wait (bounded) until every sink delivered the stop
        or gave it up, so the run's result knows what each sink holds."""
        status, reason = stop.exit_status, stop.reason
        if self._failed.is_set():
            status, reason = "fail", self.report.failure
        if status == "success":
            notes = [*self.report.lost[:3], *self.composer.sink_errors]
            notes += self.composer.pending_errors()
            if len(self.report.lost) > 3:
                notes.insert(3, f"... {len(self.report.lost)} losses of raw documents in all")
            reason = "; ".join(dict.fromkeys(notes))
        self.report.stop_doc = self.composer.stop(status, reason)
        self._over()  # a slow sink holds no fusion slot while we wait for it
        self.composer.finish_delivery()
        self.inference.release()
