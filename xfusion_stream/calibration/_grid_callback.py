"""Calibrate live: collect a ``grid_calibration`` run's frames, fit and save on stop.

Streams are recognised by the camera model in the descriptor's configuration (a key
ending in ``_camera_model``), images by the data key ending in ``_image``; frames come
inline in events or from the HDF5 file a StreamResource/StreamDatum pair points at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from event_model import DocumentRouter

from ..core import DocumentError, XFusionError
from ._record import CalibrationRecord

__all__ = ["GridCalibrationCallback", "CAMERA_MODELS"]

log = logging.getLogger(__name__)

CAMERA_MODELS = {"Phantom TMX7510": "phantom", "Shimadzu HPV-X2": "shimadzu"}


def _camera_of(descriptor: dict) -> str | None:
    for device in descriptor.get("configuration", {}).values():
        for key, value in device.get("data", {}).items():
            if key.endswith("_camera_model") and value in CAMERA_MODELS:
                return CAMERA_MODELS[value]
    return None


def _hdf5_rows(resource: dict, start: int, stop: int) -> np.ndarray:
    import h5py

    uri = urlparse(resource["uri"])
    if uri.scheme not in ("file", ""):
        raise DocumentError(
            "stream_resource", resource.get("uid"), f"cannot read {resource['uri']}"
        )
    dataset = resource.get("parameters", {}).get("dataset", "/entry/data/data")
    with h5py.File(uri.path, "r") as h5:
        return np.asarray(h5[dataset][start:stop])


class GridCalibrationCallback(DocumentRouter):
    """On a successful stop, ``calibrate_grid`` the run and save record + overlay PNG.

    ``on_record(record)`` is called with the saved record (e.g. to store it in Tiled
    via ``record_to_documents``). Calibration failures are logged and kept in
    ``self.error`` rather than raised into the RunEngine.
    """

    def __init__(
        self,
        out_dir: str | Path,
        on_record: Callable[[CalibrationRecord], None] | None = None,
        *,
        ratio: int = 4,
        mirror: bool = True,
    ) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.on_record = on_record
        self.ratio = ratio
        self.mirror = mirror
        self.record: CalibrationRecord | None = None
        self.record_path: Path | None = None
        self.error: Exception | None = None
        self._reset()

    def _reset(self) -> None:
        self._start: dict | None = None
        self._streams: dict[str, tuple[str, str]] = {}  # descriptor uid -> (camera, key)
        self._resources: dict[str, dict] = {}
        self._frames: dict[str, list[np.ndarray]] = {"phantom": [], "shimadzu": []}

    def start(self, doc):
        self._reset()
        self._start = doc
        self.record = self.record_path = self.error = None
        return doc

    def descriptor(self, doc):
        camera = _camera_of(doc)
        keys = [k for k in doc.get("data_keys", {}) if k.endswith("_image")]
        if camera is not None and keys:
            self._streams[doc["uid"]] = (camera, keys[0])
        return doc

    def event(self, doc):
        stream = self._streams.get(doc["descriptor"])
        if stream is not None and stream[1] in doc["data"]:
            value = doc["data"][stream[1]]
            if not isinstance(value, str):  # a datum id would be a string
                self._frames[stream[0]].append(np.asarray(value))
        return doc

    def stream_resource(self, doc):
        self._resources[doc["uid"]] = doc
        return doc

    def stream_datum(self, doc):
        stream = self._streams.get(doc["descriptor"])
        resource = self._resources.get(doc["stream_resource"])
        if stream is None or resource is None or resource.get("data_key") != stream[1]:
            return doc
        rows = _hdf5_rows(resource, doc["indices"]["start"], doc["indices"]["stop"])
        self._frames[stream[0]].extend(rows)
        return doc

    def stop(self, doc):
        if self._start is None or doc.get("exit_status") != "success":
            return doc
        try:
            self._calibrate()
        except XFusionError as exc:
            self.error = exc
            log.error("grid calibration of run %s failed: %s", self._start["uid"], exc)
        return doc

    def _calibrate(self) -> None:
        from ._overlay import write_overlay
        from ._spatial import calibrate_grid

        start = self._start
        assert start is not None  # stop() only calls this after a start
        uid = start["uid"]
        for camera, frames in self._frames.items():
            if not frames:
                raise DocumentError("stop", uid, f"the run carried no {camera} frames")
        result = calibrate_grid(
            self._frames["phantom"],
            self._frames["shimadzu"],
            pitch_um=float(start.get("grid_pitch_um", 62.0)),
            ratio=self.ratio,
            mirror=self.mirror,
            source=f"run:{uid}",
        )
        self.record = result.record
        self.record_path = result.record.save(self.out_dir / f"calibration_{uid[:8]}.json")
        write_overlay(result, self.record_path.with_suffix(".png"))
        if self.on_record is not None:
            self.on_record(result.record)
