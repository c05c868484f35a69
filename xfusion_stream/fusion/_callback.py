"""FusionCallback: raw dual-camera documents in, a fused derived run out.

One instance per raw run (``fusion_router`` in ``_router`` wraps it in an event-model
RunRouter for the app's ``FusionSession``).
Steps per frame, in the caller's thread: fill -> register (one remap) -> normalise ->
ring buffer -> temporal pairing; each window complete at that moment goes to the
worker. Nothing here raises into the RunEngine: any error becomes the fused run's
``fail`` reason while the raw run carries on.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from event_model import DocumentRouter

from .. import __version__
from ..calibration import CalibrationRecord, Registration, StreamingPairer, Window
from ..core import DocumentError, openmp_released
from ..documents import (
    ArraySource,
    CameraStream,
    FrameFiller,
    announced_frames,
    camera_stream,
    declares_camera,
)
from ._alignment import AlignmentMonitor
from ._composer import FusedFrame, FusedRunComposer, Sink
from ._config import FusionConfig
from ._fidelity import shimadzu_measurement
from ._frame_ring import FrameRing
from ._inference import WindowExecutor
from ._model import FusionModel
from ._runner import FusionWorker, WindowJob
from ._schema import FUSED_FRAME, FrameSchema

__all__ = ["FusionCallback", "is_calibration_run"]

logger = logging.getLogger(__name__)


_FLOAT32_MAX = float(np.finfo(np.float32).max)  # frames are float32: 1e300 became inf


def is_calibration_run(start: dict[str, Any]) -> bool:
    return bool(start.get("calibration")) or start.get("plan_name") == "grid_calibration"


DataRootsArg = Iterable[str | os.PathLike[str]] | None

#: how long a new run waits for one of the session's fusion slots (runs being fused)
SLOT_TIMEOUT = 600.0


class FusionCallback(DocumentRouter):
    """Fuses one raw run; ``report``/``fused_uid`` tell what happened once ``join`` returns.

    ``data_roots`` confines the files asset documents may name (``FrameFiller``): None
    trusts them (documents from this process's RunEngine), ``()`` allows none.
    ``slots`` bounds the runs being fused at once: the fused run takes one when it
    opens (waiting, which holds the raw documents back) and frees it when done.
    ``fused_uid`` names the fused run (re-fusing a run cut off earlier). ``executor``
    fuses the windows outside the worker thread (``FusionWorker``).
    """

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
        data_roots: DataRootsArg = None,
        fused_uid: str | None = None,
        slots: threading.Semaphore | None = None,
        executor: WindowExecutor | None = None,
    ) -> None:
        super().__init__()
        self._slots = slots
        self._executor = executor
        self._fused_uid = fused_uid
        self.stopped = False  # the raw run's stop (or the guard's stand-in) came
        self.lost: list[str] = []
        self._on_frame = on_frame
        self.schema = schema
        self.model = model
        self.calibration = calibration
        self.config = config or FusionConfig()
        self.registration = registration or Registration(calibration)
        self._sinks = list(sinks)
        self._filler = FrameFiller(array_source, data_roots=data_roots)
        self._streams: dict[str, CameraStream] = {}
        self._raw_start: dict[str, Any] = {}
        self._ring = FrameRing(self.config.max_buffered_mib)  # frames windows still need
        self._pairer: StreamingPairer | None = None
        self.worker: FusionWorker | None = None
        self.raw_uid: str | None = None
        self.windows_submitted = 0
        self.alignment: AlignmentMonitor | None = None  # does the calibration fit the run?
        self.failure: str | None = None  # set: the run failed, no more frames are taken

    # ---- life of the fused run ------------------------------------------------------
    @property
    def fused_uid(self) -> str | None:
        return self.worker.composer.uid if self.worker else None

    def join(self, timeout: float | None = None) -> bool:
        return self.worker.join(timeout) if self.worker else True

    def _fail(self, reason: str) -> None:
        logger.error("fusion of run %s failed: %s", self.raw_uid, reason)
        if self.failure is None:  # the first cause: the reason of a run never opened
            self.failure = reason
        self._release()
        if self.worker is not None:
            self.worker.fail(reason)

    def _release(self) -> None:
        """Let go of the frames waiting for windows (the run failed or ended)."""
        self._ring.clear()

    def note_loss(self, message: str) -> None:
        """Raw documents of this run were lost before they reached us (``RunGuard``):
        a ``gaps`` event with the reason, and the run's result says so."""
        self.lost.append(message)
        if self.worker is not None:
            self.worker.note_loss(message)

    def _guard(self, handler: Callable[[dict], None], doc: dict) -> None:
        if self.failure is not None:
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
        cfg = self.config
        self._pairer = StreamingPairer(
            cfg.traverse_mode,
            tolerance_ns=cfg.tolerance_ns,
            n_shimadzu=announced_frames(self._raw_start, "shimadzu"),
        )
        composer = FusedRunComposer(
            self._sinks,
            self._fused_metadata(),
            schema=self.schema,
            uid=self._fused_uid,
            frame_dir=cfg.fused_data_dir,
        )
        if self._slots is not None and not self._slots.acquire(timeout=SLOT_TIMEOUT):
            raise DocumentError(
                "descriptor", None, f"no fusion slot came free in {SLOT_TIMEOUT:g} s"
            )
        with openmp_released():  # torch in the RunEngine's thread, not the worker's
            measurement = shimadzu_measurement(self.calibration, self.registration)
        self.alignment = AlignmentMonitor(measurement, cfg.tolerance_ns)
        try:
            self.worker = FusionWorker(
                self.model,
                composer,
                queue_size=cfg.queue_size,
                when_full=cfg.when_full,
                max_batch=cfg.max_batch,
                feature_cache=cfg.feature_cache,
                on_frame=self._on_frame,
                shimadzu=measurement,
                on_done=self._slots.release if self._slots is not None else None,
                executor=self._executor,
            )
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise
        self.worker.start_run(self.registration.hr_shape, cfg.stream_name)
        for message in self.lost:
            self.worker.note_loss(message)

    def _fused_metadata(self) -> dict[str, Any]:
        """The fused run's start metadata: where it came from and how it was made."""
        doc, cfg = self._raw_start, self.config
        metadata: dict[str, Any] = {
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
        # what facility Tiled servers file and authorize runs by, and clients' hints
        metadata["analysis_stage"] = "fused"
        metadata["hints"] = {"dimensions": [[["time"], cfg.stream_name]]}
        for key in ("sample", "data_session", "tiled_access_tags", "proposal", "beamline_id"):
            if key in doc:
                metadata[key] = doc[key]
        if self._fused_uid is not None:
            metadata["recovered"] = (
                "re-fused from the stored raw run (the first attempt was cut off)"
            )
        return metadata

    def stop(self, doc):
        if self.stopped:  # a second stop (e.g. a caller ending the run again) changes nothing
            return
        self.stopped = True
        if self.worker is None:  # no camera stream: nothing to fuse, no fused run
            self._filler.forget()
            self._raw_start = {"uid": self.raw_uid}  # kept for the session's life otherwise
            return
        raw_status = doc.get("exit_status", "success")
        if self.failure is None:
            try:
                if len({s.camera for s in self._streams.values()}) < 2:
                    raise DocumentError(
                        "stop", doc.get("uid"), "the run lacks a Phantom or a Shimadzu stream"
                    )
                assert self._pairer is not None
                self._submit(self._pairer.finish())
            except Exception as exc:  # noqa: BLE001
                if raw_status == "success":
                    self._fail(str(exc))
                else:  # a cut-off run: its windows so far are fused, its reason stands
                    logger.info("raw run %s cut off (%s): %s", self.raw_uid, raw_status, exc)
        reason = (
            ""
            if raw_status == "success"
            else f"raw run ended with {raw_status}: {doc.get('reason', '')}"
        )
        self.worker.stop_run(raw_status if raw_status != "success" else "success", reason)
        self._filler.forget()
        self._release()
        self._raw_start = {"uid": self.raw_uid}  # a start may be large: keep only its uid

    # ---- raw documents ----------------------------------------------------------------
    def descriptor(self, doc):
        self._guard(self._descriptor, doc)

    def _descriptor(self, doc: dict) -> None:
        if not declares_camera(doc, self.config.cameras):
            return
        self._filler.descriptor(doc)
        self._open_fused_run()
        stream = camera_stream(doc, self.config.cameras)
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
        if raw.dtype.kind == "f" and not (np.abs(raw) <= _FLOAT32_MAX).all():  # NaN too
            why = f"non-finite values in {stream.model} frame {position} (NaN, inf, > float32)"
            raise DocumentError("event", doc["uid"], why)
        scale = 1.0 / self.config.full_scale
        data = doc["data"]
        time_ns = int(data[stream.time_key])
        assert self._pairer is not None
        if stream.camera == "shimadzu":
            frame = self.registration.shimadzu_lr(raw) * scale
            windows = self._pairer.add_shimadzu(position, time_ns)
        else:
            frame = self.registration.phantom_hr(raw) * scale
            windows = self._pairer.add_phantom(
                position,
                int(data[stream.frame_number_key]),
                time_ns,
                bool(data[stream.flag_key]) if stream.flag_key else True,
            )
        self._ring.keep(stream.camera, position, frame)
        if self.alignment is not None:
            self.alignment.add(stream.camera, time_ns, frame)
        self._submit(windows)

    def _submit(self, windows: list[Window]) -> None:
        assert self.worker is not None
        ring, alignment = self._ring, self.alignment
        for w in windows:
            lr, hr = w.lr, w.hr
            job = WindowJob(
                index=w.index,
                shimadzu_index=w.shimadzu_index,
                shimadzu_time_ns=w.shimadzu_time_ns,
                lr=(lr[0], lr[1], lr[2]),
                hr=(hr[0], hr[1]),
                lr_frames=(
                    ring.get("shimadzu", lr[0]),
                    ring.get("shimadzu", lr[1]),
                    ring.get("shimadzu", lr[2]),
                ),
                hr_frames=(ring.get("phantom", hr[0]), ring.get("phantom", hr[1])),
                truth_index=-1 if w.truth is None else w.truth,
                truth=None if w.truth is None else ring.get("phantom", w.truth),
                # the registration residual measured up to the window (NaN: none)
                shimadzu_offset=(
                    alignment.reference(w.shimadzu_time_ns) if alignment else (math.nan,) * 2
                ),
            )
            self.worker.submit(job)
            self.windows_submitted += 1
            ring.prune(w)

    # ---- assets --------------------------------------------------------------------------
    def stream_resource(self, doc):
        self._guard(self._filler.stream_resource, doc)

    def stream_datum(self, doc):
        self._guard(self._filler.stream_datum, doc)

    def resource(self, doc):
        self._guard(self._filler.resource, doc)

    def datum(self, doc):
        self._guard(self._filler.datum, doc)
