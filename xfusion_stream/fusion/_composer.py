"""The derived (fused) run: documents composed with event-model, validated, fanned out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from event_model import DocumentNames, compose_run, schema_validators

__all__ = ["FusedFrame", "FusedRunComposer", "Sink"]

logger = logging.getLogger(__name__)

Sink = Callable[[str, dict], Any]


@dataclass(frozen=True)
class FusedFrame:
    """One model output and where it came from."""

    window_index: int
    shimadzu_index: int
    shimadzu_time_ns: int
    lr_indices: tuple[int, int, int]
    hr_indices: tuple[int, int]
    truth_index: int  # -1 in continuous mode
    image: np.ndarray  # float32 (4h, 4w), intensity
    attention: np.ndarray  # float32 (5,), NaN where the model has none
    metrics: dict[str, float]
    #: Fraction of the Phantom interval the model placed frame t at (``hr_warp``), or NaN.
    tau: float = float("nan")
    #: Mean blend weight of (network, Phantom before@t, Phantom after@t, Shimadzu) over
    #: the frame (``hr_warp``): how much of the fused frame each source gave; NaN if none.
    blend_weights: np.ndarray = field(default_factory=lambda: np.full(4, np.nan, np.float32))


_METRIC_KEYS = (
    "psnr",
    "ssim",
    "aad",
    "psnr_bicubic",
    "ssim_bicubic",
    "aad_bicubic",
    "psnr_nearest",
    "ssim_nearest",
    "aad_nearest",
)


class FusedRunComposer:
    """Emits one fused run; every document is schema-validated before any sink sees it.

    A sink that raises is reported and dropped for the rest of the run, so a Tiled
    outage cannot stop frames reaching the 0MQ stream (and vice versa).
    """

    def __init__(self, sinks: Iterable[Sink], metadata: dict[str, Any]) -> None:
        self._sinks = list(sinks)
        self.sink_errors: list[str] = []
        self.bundle = compose_run(metadata=metadata)
        self.uid = self.bundle.start_doc["uid"]
        self._fused: Any = None
        self._gaps: Any = None
        self.n_events = 0
        self.n_gaps = 0

    def _emit(self, name: str, doc: Any) -> None:
        schema_validators[DocumentNames[name]].validate(doc)
        for sink in list(self._sinks):
            try:
                sink(name, doc)
            except Exception as exc:  # noqa: BLE001 - one bad sink must not stop the others
                msg = f"sink {sink!r} failed on {name}: {exc!r}; dropped"
                logger.error(msg)
                self.sink_errors.append(msg)
                self._sinks.remove(sink)

    def start(self, frame_shape: tuple[int, int], stream_name: str = "fused") -> None:
        self._emit("start", self.bundle.start_doc)
        data_keys = {
            "fused_image": {
                "source": "xfusion",
                "dtype": "array",
                "dtype_numpy": "<f4",
                "shape": list(frame_shape),
                "dims": ["row", "col"],
                "units": "intensity",
            },
            "window_index": {"source": "xfusion", "dtype": "integer", "shape": []},
            "shimadzu_index": {"source": "xfusion", "dtype": "integer", "shape": []},
            "shimadzu_time_ns": {
                "source": "xfusion",
                "dtype": "integer",
                "shape": [],
                "units": "ns",
            },
            "lr_indices": {
                "source": "xfusion",
                "dtype": "array",
                "dtype_numpy": "<i8",
                "shape": [3],
            },
            "hr_indices": {
                "source": "xfusion",
                "dtype": "array",
                "dtype_numpy": "<i8",
                "shape": [2],
            },
            "truth_index": {"source": "xfusion", "dtype": "integer", "shape": []},
            "attention": {
                "source": "xfusion",
                "dtype": "array",
                "dtype_numpy": "<f4",
                "shape": [5],
            },
            "tau": {"source": "xfusion", "dtype": "number", "shape": []},
            "blend_weights": {
                "source": "xfusion",
                "dtype": "array",
                "dtype_numpy": "<f4",
                "shape": [4],
            },
        }
        for key in _METRIC_KEYS:
            data_keys[key] = {"source": "xfusion", "dtype": "number", "shape": []}
        self._fused = self.bundle.compose_descriptor(name=stream_name, data_keys=data_keys)
        self._emit("descriptor", self._fused.descriptor_doc)
        self._gaps = self.bundle.compose_descriptor(
            name="gaps",
            data_keys={
                "window_index": {"source": "xfusion", "dtype": "integer", "shape": []},
                "shimadzu_index": {"source": "xfusion", "dtype": "integer", "shape": []},
            },
        )
        self._emit("descriptor", self._gaps.descriptor_doc)

    def event(self, frame: FusedFrame, now: float) -> None:
        assert self._fused is not None, "start() first"
        data: dict[str, Any] = {
            "fused_image": frame.image,
            "window_index": frame.window_index,
            "shimadzu_index": frame.shimadzu_index,
            "shimadzu_time_ns": frame.shimadzu_time_ns,
            "lr_indices": np.asarray(frame.lr_indices, dtype=np.int64),
            "hr_indices": np.asarray(frame.hr_indices, dtype=np.int64),
            "truth_index": frame.truth_index,
            "attention": frame.attention.astype(np.float32),
            "tau": float(frame.tau),
            "blend_weights": np.asarray(frame.blend_weights, dtype=np.float32),
        }
        for key in _METRIC_KEYS:
            data[key] = float(frame.metrics.get(key, float("nan")))
        doc = self._fused.compose_event(data=data, timestamps={k: now for k in data}, time=now)
        self.n_events += 1
        self._emit("event", doc)

    def gap(self, window_index: int, shimadzu_index: int, now: float) -> None:
        assert self._gaps is not None, "start() first"
        data = {"window_index": window_index, "shimadzu_index": shimadzu_index}
        doc = self._gaps.compose_event(data=data, timestamps={k: now for k in data}, time=now)
        self.n_gaps += 1
        self._emit("event", doc)

    def stop(self, exit_status: str = "success", reason: str = "") -> dict:
        status = cast(Literal["success", "abort", "fail"], exit_status)
        doc = self.bundle.compose_stop(exit_status=status, reason=reason)
        self._emit("stop", doc)
        return dict(doc)
