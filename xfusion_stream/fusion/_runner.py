"""Inference off the RunEngine thread: a bounded queue, a worker, a per-frame feature cache.

The document callback only registers frames and hands over complete windows. One
worker thread owns the model and the fused run's composer, so fused documents leave in
order from a single thread.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from ._composer import FusedFrame, FusedRunComposer
from ._model import FusionModel

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
    failure: str = ""
    stop_doc: dict | None = None
    model_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # input complete -> fused event out


class _FeatureCache:
    """Per-frame features keyed by (camera, position), least recently used evicted."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int], torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int], compute) -> torch.Tensor:
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        value = compute()
        if self.capacity:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value


def _metrics(fused: np.ndarray, job: WindowJob) -> dict[str, float]:
    from xfusion_models.metrics import aad, psnr, ssim

    if job.truth is None:
        return {}
    h, w = fused.shape
    bicubic = cv2.resize(job.lr_frames[1], (w, h), interpolation=cv2.INTER_CUBIC)
    candidates = {"": fused, "_bicubic": np.clip(bicubic, 0, 1), "_nearest": job.hr_frames[0]}
    out: dict[str, float] = {}
    for suffix, image in candidates.items():
        out["psnr" + suffix] = float(psnr(image, job.truth))
        out["ssim" + suffix] = float(ssim(image, job.truth))
        out["aad" + suffix] = float(aad(image, job.truth))
    return out


class FusionWorker:
    """Owns the model, the cache and the composer of one fused run."""

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
    ) -> None:
        self.model = model
        self.on_frame = on_frame
        self.composer = composer
        self.when_full = when_full
        self.max_batch = max_batch
        self.report = WorkerReport()
        self.cache = _FeatureCache(capacity=16 if feature_cache else 0)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        # skipped windows (window index, shimadzu index); appended by the callback thread
        # without blocking, turned into ``gaps`` events by the worker
        self._skipped: collections.deque[tuple[int, int]] = collections.deque()
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
                    self.composer.start(item.frame_shape, item.stream_name)
                    continue
                self._record_gaps()
                if isinstance(item, _Stop):
                    self._finish(item)
                    return
                if not self._failed.is_set():
                    self._process([item, *self._more_ready()])
        finally:
            self.done.set()

    def _record_gaps(self) -> None:
        while self._skipped:
            window_index, shimadzu_index = self._skipped.popleft()
            self.report.gaps.append(window_index)
            self.composer.gap(window_index, shimadzu_index, time.time())

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

    def _process(self, jobs: list[WindowJob]) -> None:
        try:
            t0 = time.perf_counter()
            outputs, attention, taus, blends = self._infer(jobs)
            self.report.model_seconds += time.perf_counter() - t0
            for job, image, att, tau, blend in zip(jobs, outputs, attention, taus, blends):
                frame = FusedFrame(
                    window_index=job.index,
                    shimadzu_index=job.shimadzu_index,
                    shimadzu_time_ns=job.shimadzu_time_ns,
                    lr_indices=job.lr,
                    hr_indices=job.hr,
                    truth_index=job.truth_index,
                    image=image,
                    attention=att,
                    metrics=_metrics(image, job),
                    tau=tau,
                    blend_weights=blend,
                )
                self.composer.event(frame, time.time())
                self.report.frames += 1
                self.report.latencies.append(time.perf_counter() - job.ready_at)
                if self.on_frame is not None:
                    self.on_frame(frame, job)
        except Exception as exc:  # noqa: BLE001 - becomes the fused run's failure reason
            logger.exception("fusion failed on window %s", jobs[0].index)
            self.fail(f"fusion failed on window {jobs[0].index}: {exc!r}")

    def fail(self, reason: str) -> None:
        if not self._failed.is_set():
            self.report.failure = reason
            self._failed.set()

    @torch.inference_mode()
    def _infer(
        self, jobs: list[WindowJob]
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[float], list[np.ndarray]]:
        """Images, attention (5,), tau and blend weights (4,) per job (NaN where the model
        does not report them)."""
        m = self.model
        net: Any = m.net
        with m.autocast():
            lr_feats, hr_feats = [], []
            for job in jobs:
                lr_feats.append(
                    torch.cat(
                        [
                            self.cache.get(
                                ("lr", pos), lambda f=frame: net.encode_lr(m.to_tensor([f]))
                            )
                            for pos, frame in zip(job.lr, job.lr_frames)
                        ]
                    )
                )
                hr_feats.append(
                    torch.cat(
                        [
                            self.cache.get(
                                ("hr", pos), lambda f=frame: net.encode_hr(m.to_tensor([f]))
                            )
                            for pos, frame in zip(job.hr, job.hr_frames)
                        ]
                    )
                )
            centre = m.to_tensor([job.lr_frames[1] for job in jobs])
            extra: dict[str, Any] = {}
            if getattr(net, "needs_hr_frames", False):  # e.g. EDVR-STF with hr_gate
                extra["hq"] = torch.stack([m.to_tensor(list(job.hr_frames)) for job in jobs])
            details: dict[str, torch.Tensor] = {}
            if getattr(net, "reports_details", False):  # EDVR-STF with hr_warp
                extra["details"] = details
            out, att = net.fuse(torch.stack(lr_feats), torch.stack(hr_feats), centre, **extra)
        images = [o[0].float().clamp(0, 1).cpu().numpy() for o in out]
        if att is None:
            atts = [np.full(5, np.nan, dtype=np.float32) for _ in jobs]
        else:
            atts = [a.float().cpu().numpy() for a in att]
        nan4 = np.full(4, np.nan, dtype=np.float32)
        taus = [float(t) for t in details["tau"].float().cpu()] if "tau" in details else None
        blends = (
            [w.float().cpu().numpy() for w in details["weights"]] if "weights" in details else None
        )
        return (
            images,
            atts,
            taus or [float("nan")] * len(jobs),
            blends or [nan4.copy() for _ in jobs],
        )

    def _finish(self, stop: _Stop) -> None:
        status, reason = stop.exit_status, stop.reason
        if self._failed.is_set():
            status, reason = "fail", self.report.failure
        if self.composer.sink_errors and status == "success":
            reason = "; ".join(self.composer.sink_errors)
        self.report.stop_doc = self.composer.stop(status, reason)
