"""FusionCallback: raw dual-camera documents in, a fused derived run out.

One instance per raw run (``fusion_router`` wraps it in an event-model RunRouter for
the app's ``FusionSession``).
Steps per frame, in the caller's thread: fill -> register (one remap) -> normalise ->
ring buffer -> temporal pairing; each window complete at that moment goes to the
worker. Nothing here raises into the RunEngine: any error becomes the fused run's
``fail`` reason while the raw run carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from event_model import DocumentRouter, RunRouter

from .. import __version__
from ..calibration import CalibrationRecord, Registration, StreamingPairer, Window
from ..core import DocumentError
from ..documents import ArraySource, CameraStream, FrameFiller, camera_stream, declares_camera
from ._composer import FusedFrame, FusedRunComposer, Sink
from ._config import FusionConfig
from ._fidelity import shimadzu_measurement
from ._model import FusionModel
from ._runner import FusionWorker, WindowJob
from ._schema import FUSED_FRAME, FrameSchema

__all__ = ["FusionCallback", "fusion_router", "is_calibration_run"]

logger = logging.getLogger(__name__)


def is_calibration_run(start: dict[str, Any]) -> bool:
    return bool(start.get("calibration")) or start.get("plan_name") == "grid_calibration"


class FusionCallback(DocumentRouter):
    """Fuses one raw run; ``report``/``fused_uid`` tell what happened once ``join`` returns."""

    def __init__(
        self,
        model: FusionModel,
        calibration: CalibrationRecord,
        sinks: Iterable[Sink],
        config: FusionConfig | None = None,
        *,
        array_source: ArraySource | None = None,
        registration: Registration | None = None,
        on_frame: Callable[[FusedFrame, WindowJob], None] | None = None,
        schema: FrameSchema = FUSED_FRAME,
    ) -> None:
        super().__init__()
        self._on_frame = on_frame
        self.schema = schema
        self.model = model
        self.calibration = calibration
        self.config = config or FusionConfig()
        self.registration = registration or Registration(calibration)
        self._sinks = list(sinks)
        self._filler = FrameFiller(array_source)
        self._streams: dict[str, CameraStream] = {}
        self._raw_start: dict[str, Any] = {}
        self._frames: dict[str, dict[int, np.ndarray]] = {"phantom": {}, "shimadzu": {}}
        self._pairer: StreamingPairer | None = None
        self.worker: FusionWorker | None = None
        self.raw_uid: str | None = None
        self.windows_submitted = 0
        self._dead = False

    # ---- life of the fused run ------------------------------------------------------
    @property
    def fused_uid(self) -> str | None:
        return self.worker.composer.uid if self.worker else None

    def join(self, timeout: float | None = None) -> bool:
        return self.worker.join(timeout) if self.worker else True

    def _fail(self, reason: str) -> None:
        logger.error("fusion of run %s failed: %s", self.raw_uid, reason)
        self._dead = True
        if self.worker is not None:
            self.worker.fail(reason)

    def _guard(self, handler: Callable[[dict], None], doc: dict) -> None:
        if self._dead:
            return
        try:
            handler(doc)
        except Exception as exc:  # noqa: BLE001 - never raise into the RunEngine
            self._fail(str(exc) if isinstance(exc, DocumentError) else repr(exc))

    def start(self, doc):
        self.raw_uid = doc["uid"]
        self._raw_start = doc

    def _open_fused_run(self) -> None:
        """Start the fused run at the first camera descriptor: runs without cameras
        (a plain count, a motor scan) never get a fused run."""
        if self.worker is not None:
            return
        doc = self._raw_start
        cfg = self.config
        metadata = {
            "purpose": "fused",
            "raw_uid": doc["uid"],
            "calibration_uid": self.calibration.uid,
            "model": self.model.metadata(),
            "traverse_mode": cfg.traverse_mode,
            "window": {
                "lr": ["t-1", "t", "t+1"],
                "hr": ["before", "after"],
                "ratio": self.calibration.ratio,
                "tolerance_ns": cfg.tolerance_ns,
            },
            "crop": self.calibration.crop.model_dump(),
            "software_version": __version__,
            "runner": {
                "queue_size": cfg.queue_size,
                "when_full": cfg.when_full,
                "max_batch": cfg.max_batch,
            },
        }
        if "sample" in doc:
            metadata["sample"] = doc["sample"]
        n_shimadzu = (doc.get("n_frames") or {}).get("shimadzu")
        self._pairer = StreamingPairer(
            cfg.traverse_mode,
            tolerance_ns=cfg.tolerance_ns,
            n_shimadzu=int(n_shimadzu) if n_shimadzu else None,
        )
        composer = FusedRunComposer(self._sinks, metadata, schema=self.schema)
        self.worker = FusionWorker(
            self.model,
            composer,
            queue_size=cfg.queue_size,
            when_full=cfg.when_full,
            max_batch=cfg.max_batch,
            feature_cache=cfg.feature_cache,
            on_frame=self._on_frame,
            shimadzu=shimadzu_measurement(self.calibration, self.registration),
        )
        self.worker.start_run(self.registration.hr_shape, cfg.stream_name)

    def stop(self, doc):
        if self.worker is None:  # no camera stream: nothing to fuse, no fused run
            self._filler.close()
            return
        if not self._dead:
            try:
                if len({s.camera for s in self._streams.values()}) < 2:
                    raise DocumentError(
                        "stop", doc.get("uid"), "the run lacks a Phantom or a Shimadzu stream"
                    )
                assert self._pairer is not None
                self._submit(self._pairer.finish())
            except Exception as exc:  # noqa: BLE001
                self._fail(str(exc))
        raw_status = doc.get("exit_status", "success")
        reason = (
            ""
            if raw_status == "success"
            else f"raw run ended with {raw_status}: {doc.get('reason', '')}"
        )
        self.worker.stop_run(raw_status if raw_status != "success" else "success", reason)
        self._filler.close()

    # ---- raw documents ----------------------------------------------------------------
    def descriptor(self, doc):
        self._guard(self._descriptor, doc)

    def _descriptor(self, doc: dict) -> None:
        if not declares_camera(doc):
            return
        self._open_fused_run()
        stream = camera_stream(doc)
        assert stream is not None
        expected = (
            self.calibration.phantom_shape
            if stream.camera == "phantom"
            else self.calibration.shimadzu_shape
        )
        if tuple(stream.frame_shape) != tuple(expected):
            raise DocumentError(
                "descriptor",
                doc["uid"],
                f"{stream.model} frames are {stream.frame_shape}, calibration "
                f"{self.calibration.uid} expects {tuple(expected)}",
            )
        self._streams[doc["uid"]] = stream

    def event(self, doc):
        self._guard(self._event, doc)
        return doc

    def _event(self, doc: dict) -> None:
        stream = self._streams.get(doc["descriptor"])
        if stream is None:
            return
        position = int(doc["seq_num"]) - 1
        raw = self._filler.frame(
            stream.descriptor_uid, stream.stream_name, stream.image_key, doc, position
        )
        if raw.shape != stream.frame_shape or raw.dtype.kind not in "uif":
            raise DocumentError(
                "event",
                doc["uid"],
                f"corrupt {stream.model} frame {position}: shape {raw.shape} "
                f"dtype {raw.dtype}, expected {stream.frame_shape}",
            )
        if raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raise DocumentError(
                "event", doc["uid"], f"non-finite values in {stream.model} frame {position}"
            )
        scale = 1.0 / self.config.full_scale
        data = doc["data"]
        time_ns = int(data[stream.time_key])
        assert self._pairer is not None
        if stream.camera == "shimadzu":
            self._frames["shimadzu"][position] = self.registration.shimadzu_lr(raw) * scale
            windows = self._pairer.add_shimadzu(position, time_ns)
        else:
            self._frames["phantom"][position] = self.registration.phantom_hr(raw) * scale
            windows = self._pairer.add_phantom(
                position,
                int(data[stream.frame_number_key]),
                time_ns,
                bool(data[stream.flag_key]) if stream.flag_key else True,
            )
        self._submit(windows)

    def _frame(self, camera: str, position: int) -> np.ndarray:
        try:
            return self._frames[camera][position]
        except KeyError:
            raise DocumentError(
                "event",
                None,
                f"{camera} frame {position} needed by a window is not in the ring buffer",
            ) from None

    def _submit(self, windows: list[Window]) -> None:
        assert self.worker is not None
        for w in windows:
            lr, hr = w.lr, w.hr
            job = WindowJob(
                index=w.index,
                shimadzu_index=w.shimadzu_index,
                shimadzu_time_ns=w.shimadzu_time_ns,
                lr=(lr[0], lr[1], lr[2]),
                hr=(hr[0], hr[1]),
                lr_frames=(
                    self._frame("shimadzu", lr[0]),
                    self._frame("shimadzu", lr[1]),
                    self._frame("shimadzu", lr[2]),
                ),
                hr_frames=(self._frame("phantom", hr[0]), self._frame("phantom", hr[1])),
                truth_index=-1 if w.truth is None else w.truth,
                truth=None if w.truth is None else self._frame("phantom", w.truth),
            )
            self.worker.submit(job)
            self.windows_submitted += 1
            self._prune(w)

    def _prune(self, w: Window) -> None:
        """Drop frames no later window can need (windows complete in time order)."""
        for camera, keep_from in (("shimadzu", min(w.lr)), ("phantom", min(w.hr))):
            frames = self._frames[camera]
            for p in [p for p in frames if p < keep_from]:
                del frames[p]

    # ---- assets --------------------------------------------------------------------------
    def stream_resource(self, doc):
        self._guard(self._filler.stream_resource, doc)

    def stream_datum(self, doc):
        self._guard(self._filler.stream_datum, doc)

    def resource(self, doc):
        self._guard(self._filler.resource, doc)

    def datum(self, doc):
        self._guard(self._filler.datum, doc)


def fusion_router(
    model: FusionModel,
    calibration: CalibrationRecord,
    sinks: Iterable[Sink],
    config: FusionConfig | None = None,
    *,
    array_source: ArraySource | None = None,
    on_callback: Callable[[FusionCallback], None] | None = None,
    on_frame: Callable[[FusedFrame, WindowJob], None] | None = None,
    schema: FrameSchema = FUSED_FRAME,
) -> RunRouter:
    """A RunRouter that gives every raw (non-calibration) run its own FusionCallback.

    The workers of overlapping runs call ``sinks`` from their own threads: callers
    that may overlap runs hand in sinks that take turns (``FusionSession`` does).
    """
    sinks = list(sinks)
    registration = Registration(calibration)

    def factory(name: str, start: dict) -> tuple[list, list]:
        if is_calibration_run(start):
            return [], []
        cb = FusionCallback(
            model,
            calibration,
            sinks,
            config,
            array_source=array_source,
            registration=registration,
            on_frame=on_frame,
            schema=schema,
        )
        if on_callback is not None:
            on_callback(cb)
        return [cb], []

    return RunRouter([factory])
