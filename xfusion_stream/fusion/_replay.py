"""Replay: a stored raw run from Tiled through the same FusionCallback as live data.

Tiled hands the run back as documents (``run.documents()``, json-seq). Frames are read
from the files the StreamResources name when this machine can see them, otherwise
fetched from Tiled's own copy of the array, one frame at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..calibration import CalibrationRecord
from ..core import XFusionError
from ._callback import FusionCallback, is_calibration_run
from ._composer import FusedFrame, Sink
from ._config import FusionConfig
from ._model import FusionModel
from ._runner import WindowJob

__all__ = ["replay_run", "tiled_array_source"]


def tiled_array_source(run: Any) -> Callable[[str, str, int], np.ndarray]:
    def fetch(stream: str, key: str, index: int) -> np.ndarray:
        return np.asarray(run[stream][key][index])

    return fetch


def replay_run(
    client: Any,
    uid: str,
    model: FusionModel,
    calibration: CalibrationRecord,
    sinks: Iterable[Sink],
    config: FusionConfig | None = None,
    *,
    on_frame: Callable[[FusedFrame, WindowJob], None] | None = None,
    timeout: float | None = None,
) -> FusionCallback:
    """Fuse the stored run ``uid`` into a new fused run; returns the finished callback."""
    try:
        run = client[uid]
    except KeyError:
        raise XFusionError(f"Tiled has no run with uid {uid!r}") from None
    start = run.metadata.get("start", {})
    if is_calibration_run(start):
        raise XFusionError(f"run {uid} is a calibration run; calibrate it, don't fuse it")
    callback = FusionCallback(
        model, calibration, sinks, config, array_source=tiled_array_source(run), on_frame=on_frame
    )
    for name, doc in run.documents():
        callback(name, doc)
    if not callback.join(timeout):
        raise XFusionError(f"fusion of replayed run {uid} did not finish in {timeout} s")
    return callback
