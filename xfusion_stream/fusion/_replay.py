"""Replay: a stored raw run from Tiled through the same FusionCallback as live data.

Tiled hands the run back as documents (``run.documents()``, json-seq). Frames are read
from the files the StreamResources name when this machine can see them, otherwise
fetched from Tiled's own copy of the array, one frame at a time. The app's
``FusionSession.replay`` feeds those documents to its callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core import XFusionError
from ._callback import is_calibration_run

__all__ = ["stored_raw_run", "tiled_array_source"]


def tiled_array_source(run: Any) -> Callable[[str, str, int], np.ndarray]:
    def fetch(stream: str, key: str, index: int) -> np.ndarray:
        return np.asarray(run[stream][key][index])

    return fetch


def stored_raw_run(client: Any, uid: str) -> Any:
    """The Tiled run ``uid``, refused with a clear error when absent or a calibration run."""
    try:
        run = client[uid]
    except KeyError:
        raise XFusionError(f"Tiled has no run with uid {uid!r}") from None
    if is_calibration_run(run.metadata.get("start", {})):
        raise XFusionError(f"run {uid} is a calibration run; calibrate it, don't fuse it")
    return run
