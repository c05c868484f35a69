"""The derived (fused) run: documents composed with event-model, validated, fanned out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, cast

from event_model import DocumentNames, compose_run, schema_validators

from ..publishing import DeliveringSink
from ._frame_file import FusedFrameFile
from ._schema import FUSED_FRAME, FrameSchema, FusedFrame

__all__ = ["FusedFrame", "FusedRunComposer", "Sink"]

logger = logging.getLogger(__name__)

#: a callable sink (called from the worker's thread) or one that delivers on its own
Sink = Callable[[str, dict], Any] | DeliveringSink


#: the ``gaps`` stream's own key: why the gap is there (a skipped window, lost input)
GAP_CAUSE_KEY = {"dtype": "string", "shape": [], "source": "xfusion"}
SKIPPED = "window skipped: the fusion queue was full (when_full: skip)"
# the fused stream's object name and the fields clients show by default
OBJECT_NAME = "xfusion"
HINTED_FIELDS = ("fused_image", "shimadzu_residual_rms")


class FusedRunComposer:
    """Emits one fused run; every document is schema-validated before any sink sees it,
    once: per-frame documents by event-model as they are composed (``validate=True``,
    its default, which also checks an event's keys against its descriptor), the others
    here. Validating them twice took a third of the composer's time per frame.

    A sink that raises is reported and dropped for the rest of the run, so a Tiled
    outage cannot stop frames reaching the 0MQ stream (and vice versa). Sinks that
    deliver on their own (``publishing.DeliveringSink``, e.g. a ``SinkThread``) are
    handed each document without waiting; ``finish_delivery`` waits (bounded) for
    their stops and collects their errors. ``schema`` (default ``FUSED_FRAME``) gives
    the fused stream's data keys and event data; the worker builds its records from it.

    With ``frame_dir`` the frame-sized fields (the fused image, the residual map) are
    written to an HDF5 file there (``FusedFrameFile``) and the stream points at them
    with StreamResource / StreamDatum documents; without it they travel inline in the
    events.
    """

    def __init__(
        self,
        sinks: Iterable[Sink],
        metadata: dict[str, Any],
        *,
        schema: FrameSchema = FUSED_FRAME,
        uid: str | None = None,
        frame_dir: str | Path | None = None,
    ) -> None:
        self.schema = schema
        self.frame_dir = Path(frame_dir) if frame_dir is not None else None
        self.frame_file: FusedFrameFile | None = None
        self._sinks = list(sinks)
        self._all_sinks = list(self._sinks)
        self.sink_errors: list[str] = []
        self.bundle = compose_run(uid=uid, metadata=metadata)
        self.uid = self.bundle.start_doc["uid"]
        self._fused: Any = None
        self._gaps: Any = None
        self.n_events = 0
        self.n_gaps = 0

    def _emit(self, name: str, doc: Any, *, validated: bool = False) -> None:
        """Hand ``doc`` to every sink; ``validated``: event-model composed it with
        ``validate=True`` just now, so it is not validated a second time."""
        if not validated:
            schema_validators[DocumentNames[name]].validate(doc)
        for sink in list(self._sinks):
            if isinstance(sink, DeliveringSink):
                sink.submit(self.uid, name, doc)
                continue
            try:
                sink(name, doc)  # type: ignore[operator]
            except Exception as exc:  # noqa: BLE001 - one bad sink must not stop the others
                msg = f"sink {sink!r} failed on {name}: {exc!r}; dropped"
                logger.error(msg)
                self.sink_errors.append(msg)
                self._sinks.remove(sink)

    def start(self, frame_shape: tuple[int, int], stream_name: str = "fused") -> None:
        self._emit("start", self.bundle.start_doc)
        data_keys = self.schema.data_keys(frame_shape)
        if self.frame_dir is not None:
            sized = [f for f in self.schema if not isinstance(f.shape, tuple)]
            try:
                self.frame_file = FusedFrameFile(
                    self.frame_dir,
                    self.bundle,
                    {f.name: (f.dtype, f.shape_for(frame_shape)) for f in sized},
                )
            except Exception as exc:  # noqa: BLE001 - the run fails with this reason
                raise OSError(f"cannot write fused frames to {self.frame_dir}: {exc}") from None
            for name in self.frame_file.names:
                data_keys[name]["external"] = "STREAM:"
        # hints: BestEffortCallback and Tiled clients show hinted fields, and only those
        hinted = [k for k in HINTED_FIELDS if k in data_keys]
        self._fused = self.bundle.compose_descriptor(
            name=stream_name,
            data_keys=data_keys,
            object_keys={OBJECT_NAME: list(data_keys)},
            hints={OBJECT_NAME: {"fields": hinted}},
        )
        self._emit("descriptor", self._fused.descriptor_doc)
        gap_keys = self.schema.data_keys(frame_shape, ("window_index", "shimadzu_index"))
        self._gaps = self.bundle.compose_descriptor(
            name="gaps", data_keys={**gap_keys, "cause": dict(GAP_CAUSE_KEY)}
        )
        self._emit("descriptor", self._gaps.descriptor_doc)

    def event(self, frame: FusedFrame, now: float) -> None:
        assert self._fused is not None, "start() first"
        data = self.schema.event_data(frame)
        seq_num = self.n_events + 1
        if self.frame_file is not None:
            external = {name: data.pop(name) for name in self.frame_file.names}
            descriptor = self._fused.descriptor_doc
            for name, doc in self.frame_file.append(external, descriptor, seq_num):
                self._emit(name, doc, validated=True)
        doc = self._fused.compose_event(
            data=data, timestamps={k: now for k in data}, seq_num=seq_num, time=now, validate=True
        )
        self.n_events += 1
        self._emit("event", doc, validated=True)

    def gap(self, window_index: int, shimadzu_index: int, now: float, cause: str = SKIPPED) -> None:
        """One ``gaps`` event: a window that was not fused (-1: input lost before any
        window could be formed), and why. None before the descriptors exist (the run
        failed at its start; its stop says why)."""
        if self._gaps is None:
            return
        data = {"window_index": window_index, "shimadzu_index": shimadzu_index, "cause": cause}
        doc = self._gaps.compose_event(
            data=data, timestamps={k: now for k in data}, time=now, validate=True
        )
        self.n_gaps += 1
        self._emit("event", doc, validated=True)

    def stop(self, exit_status: str = "success", reason: str = "") -> dict:
        status = cast(Literal["success", "abort", "fail"], exit_status)
        if self.frame_file is not None:
            try:
                self.frame_file.close()  # complete on disk before anyone sees the stop
            except Exception as exc:  # noqa: BLE001 - e.g. a full disk: the stop says so
                status, reason = "fail", f"{reason}; closing {self.frame_file.path}: {exc}"
                reason = reason.lstrip("; ")
        doc = self.bundle.compose_stop(exit_status=status, reason=reason)
        self._emit("stop", doc)
        return dict(doc)

    def pending_errors(self) -> list[str]:
        """Errors the sinks that deliver on their own reported so far (without waiting)."""
        return [e for sink in self._delivering() for e in sink.errors(self.uid)]

    def finish_delivery(self) -> None:
        """Wait (each sink's bounded ``delivery_timeout``) until every sink delivered or
        gave up this run's stop; their errors join ``sink_errors``."""
        for sink in self._delivering():
            for error in sink.delivered(self.uid):
                if error not in self.sink_errors:
                    self.sink_errors.append(error)

    def _delivering(self) -> list[DeliveringSink]:
        return [s for s in self._all_sinks if isinstance(s, DeliveringSink)]
