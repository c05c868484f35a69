"""The per-frame events a StreamDatum-only camera stream implies (fly-scanned bursts).

Why: an ophyd-async detector that fly-scans a burst sends no Event documents. Each
StreamDatum covers a range of event indices of one data key, and the per-frame values
(time in ns, frame number, Phantom 'E' flag) sit in the camera's HDF5 file as
NDAttribute datasets beside the frames. Consumers that work per event (fusion, live
calibration) get here the events such a run implies: once the StreamDatums of every
key a camera stream needs cover a range, the values are read from the file and the
consumer gets one event per frame, in order. The image stays external: the consumer's
``FrameFiller`` reads it from the same StreamDatum range. Files are confined to the
data roots as frames are (``_paths``), and nothing here raises into the caller.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import h5py
import numpy as np

from ..core import DocumentError
from ._paths import DataRoots, _walk, dataset_path, open_confined, path_of_uri
from ._paths import data_roots as _confining
from ._streams import CameraRecognition, CameraStream, camera_stream

__all__ = ["StreamDatumEvents"]

logger = logging.getLogger(__name__)

Callback = Callable[[str, dict], Any]


@dataclass
class _Tracked:
    """One camera stream whose per-frame values come by StreamDatum."""

    stream: CameraStream
    value_keys: list[str]  # time, frame number, flag: read from the file
    keys: list[str]  # every key whose StreamDatums must be in before an event goes out
    # data key -> [(seq start, seq stop, stream_resource uid, index start)]
    ranges: dict[str, list[tuple[int, int, str, int]]] = field(default_factory=dict)
    covered: dict[str, int] = field(default_factory=dict)  # data key -> next seq not covered
    emitted: int = 1  # next seq_num to emit


def _external(descriptor: dict[str, Any], key: str) -> bool:
    value = (descriptor.get("data_keys") or {}).get(key)
    return isinstance(value, dict) and value.get("external") == "STREAM:"


class StreamDatumEvents:
    """``callback(name, doc)`` for every document, plus the events StreamDatum-only
    camera streams imply, right after the StreamDatum that completes them.

    ``data_roots`` as for ``FrameFiller``: None trusts the documents' paths, a sequence
    confines files to those directories, ``()`` reads no file (no events then).
    ``cameras`` says how camera streams are recognised; None: the callback's own
    (``callback.config.cameras``, as a ``FusionCallback`` has), else the defaults, so
    the events follow the same key names as the consumer they feed.
    """

    def __init__(
        self,
        callback: Callback,
        *,
        data_roots: Iterable[str | os.PathLike[str]] | None = None,
        cameras: CameraRecognition | None = None,
    ) -> None:
        self.callback = callback
        if cameras is None:
            cameras = getattr(getattr(callback, "config", None), "cameras", None)
        self.cameras = cameras if isinstance(cameras, CameraRecognition) else None
        self._roots: DataRoots = _confining(data_roots)
        self._tracked: dict[str, _Tracked] = {}
        self._resources: dict[str, dict[str, Any]] = {}
        self._files: dict[str, tuple[h5py.File, IO[bytes]]] = {}
        self.rejected = 0

    def __call__(self, name: str, doc: dict) -> None:
        self.callback(name, doc)
        handler = getattr(self, f"_on_{name}", None)
        if handler is None:
            return
        try:
            handler(doc)
        except Exception as exc:  # noqa: BLE001 - a bad document never reaches the caller
            self.rejected += 1
            logger.error("no events from %s %s: %s", name, doc.get("uid"), exc)

    # ---- documents -------------------------------------------------------------------
    def _on_descriptor(self, doc: dict) -> None:
        stream = camera_stream(doc, self.cameras)
        if stream is None:
            return
        values = [stream.time_key, stream.frame_number_key]
        values += [stream.flag_key] if stream.flag_key else []
        if not all(_external(doc, key) for key in values):
            return  # the values come in events already
        keys = [*values, stream.image_key] if _external(doc, stream.image_key) else values
        self._tracked[str(doc["uid"])] = _Tracked(stream, values, keys)

    def _on_stream_resource(self, doc: dict) -> None:
        self._resources[str(doc["uid"])] = doc

    def _on_stream_datum(self, doc: dict) -> None:
        tracked = self._tracked.get(doc.get("descriptor"))  # type: ignore[arg-type]
        resource = self._resources.get(doc.get("stream_resource"))  # type: ignore[arg-type]
        if tracked is None or resource is None or resource["data_key"] not in tracked.keys:
            return
        key = resource["data_key"]
        start, stop = int(doc["seq_nums"]["start"]), int(doc["seq_nums"]["stop"])
        tracked.ranges.setdefault(key, []).append(
            (start, stop, str(resource["uid"]), int(doc["indices"]["start"]))
        )
        if start == tracked.covered.get(key, 1) and stop > start:
            tracked.covered[key] = stop
        ready = min(tracked.covered.get(k, 1) for k in tracked.keys)
        if ready > tracked.emitted:
            self._emit(tracked, tracked.emitted, ready)
            tracked.emitted = ready

    def _on_stop(self, doc: dict) -> None:
        self.close()
        self._tracked.clear()
        self._resources.clear()

    # ---- events ----------------------------------------------------------------------
    def _emit(self, tracked: _Tracked, first: int, stop: int) -> None:
        """One event per seq_num in [first, stop), values read from the file."""
        columns = {key: self._values(tracked, key, first, stop) for key in tracked.value_keys}
        now = time.time()
        for i, seq in enumerate(range(first, stop)):
            data = {key: columns[key][i].item() for key in tracked.value_keys}
            if tracked.stream.flag_key:
                data[tracked.stream.flag_key] = bool(data[tracked.stream.flag_key])
            event = {
                "uid": str(uuid.uuid4()),
                "descriptor": tracked.stream.descriptor_uid,
                "seq_num": seq,
                "time": now,
                "data": data,
                "timestamps": dict.fromkeys(data, now),
                "filled": {},
            }
            self.callback("event", event)

    def _values(self, tracked: _Tracked, key: str, first: int, stop: int) -> np.ndarray:
        parts = []
        for start, end, resource_uid, index in sorted(tracked.ranges[key]):
            lo, hi = max(first, start), min(stop, end)
            if lo < hi:
                rows = slice(index + lo - start, index + hi - start)
                parts.append(self._column(resource_uid, rows))
        values = np.concatenate(parts) if parts else np.empty(0)
        if len(values) != stop - first:
            why = f"{key}: {len(values)} values for events {first}..{stop - 1}"
            raise DocumentError("stream_datum", None, why)
        return values

    def _column(self, resource_uid: str, rows: slice) -> np.ndarray:
        """Rows of a per-frame dataset: in the file only, 1-D, numeric, in bounds."""
        res = self._resources[resource_uid]
        path = path_of_uri(res.get("uri"), self._roots, "stream_resource", resource_uid)
        params = res.get("parameters") or {}
        dataset = dataset_path(params.get("dataset"), "stream_resource", resource_uid)
        if path not in self._files:
            what = f"uri {str(res.get('uri'))[:200]!r}"
            self._files[path] = open_confined(
                path, self._roots, "stream_resource", resource_uid, what
            )
        ds = _walk(self._files[path][0], dataset, "stream_resource", resource_uid)
        if (
            not isinstance(ds, h5py.Dataset)
            or ds.is_virtual
            or ds.external
            or ds.ndim != 1
            or ds.dtype.kind not in "biuf"
        ):
            why = f"{dataset!r} is not a numeric per-frame dataset of this file"
            raise DocumentError("stream_resource", resource_uid, why)
        if not 0 <= rows.start <= rows.stop <= ds.shape[0]:
            why = f"{dataset}[{rows.start}:{rows.stop}] is outside its {ds.shape[0]} values"
            raise DocumentError("stream_resource", resource_uid, why)
        return np.asarray(ds[rows])

    def close(self) -> None:
        """Close the files read so far (at each run's stop, and when done)."""
        for h5, fh in self._files.values():
            try:
                h5.close()
            finally:
                fh.close()
        self._files.clear()
