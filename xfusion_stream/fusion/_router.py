"""The fusion RunRouter: one FusionCallback per raw run, behind a RunGuard.

Why a module of its own: the guard's limits (open runs, idle runs) and what it learns
about lost raw documents are wired to the callbacks here, in one place, for every
caller (the session's subscription, ``serve``, the fuzz tests).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable

from event_model import RunRouter

from ..calibration import CalibrationRecord, Registration
from ..documents import ArraySource, RunGuard, StreamDatumEvents
from ._callback import DataRootsArg, FusionCallback, is_calibration_run
from ._composer import FusedFrame, Sink
from ._config import FusionConfig
from ._inference import WindowExecutor
from ._model import FusionModel
from ._runner import WindowJob
from ._schema import FUSED_FRAME, FrameSchema

__all__ = ["fusion_router"]

_REMEMBERED_RUNS = 1024  # callbacks found by raw uid, to hand them news of lost documents


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
    data_roots: DataRootsArg = None,
    max_open_runs: int | None = None,
    idle_timeout: float | None = None,
    slots: threading.Semaphore | None = None,
    executor: WindowExecutor | None = None,
) -> RunGuard:
    """A RunRouter that gives every raw (non-calibration) run its own FusionCallback,
    behind a ``RunGuard``: documents out of order or naming unknown runs are logged and
    dropped, never raised into the RunEngine or the 0MQ loop.

    ``max_open_runs``/``idle_timeout`` bound the runs the guard keeps open (the oldest,
    or a silent one, is ended with ``abort`` and the reason); raw documents the guard
    finds lost become gaps of their fused run; ``slots`` bounds the runs being fused at
    once (``FusionCallback``); ``executor`` fuses every run's windows outside its worker
    thread (``WindowPool``). The workers of overlapping runs call
    ``sinks`` from their own threads: callers that may overlap runs hand in sinks that
    deliver on their own (``FusionSession`` does).
    """
    roots = None if data_roots is None else tuple(data_roots)
    sinks = list(sinks)
    registration = Registration(calibration)
    by_uid: collections.OrderedDict[str, FusionCallback] = collections.OrderedDict()

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
            data_roots=roots,
            slots=slots,
            executor=executor,
        )
        by_uid[start["uid"]] = cb
        while len(by_uid) > _REMEMBERED_RUNS:
            by_uid.popitem(last=False)
        if on_callback is not None:
            on_callback(cb)
        # fly-scanned cameras send StreamDatum ranges, no events: imply one per frame
        return [StreamDatumEvents(cb, data_roots=roots, cameras=cb.config.cameras)], []

    def lost(run_uid: str, message: str) -> None:
        cb = by_uid.get(run_uid)
        if cb is not None:
            cb.note_loss(message)

    return RunGuard(
        RunRouter([factory]),
        max_open_runs=max_open_runs,
        idle_timeout=idle_timeout,
        on_loss=lost,
    )
