"""Calibrate live: collect a ``grid_calibration`` run's frames, fit and save on stop.

Streams are recognised and frames filled by the documents room, as for fusion: the
camera model in the descriptor's configuration, the image data key named as
``cameras`` says (the profile's ``devices.<camera>.keys``; default ``<device>_image``),
frames inline in events or in the HDF5 file a StreamResource/StreamDatum pair names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from event_model import DocumentRouter

from ..core import DocumentError, XFusionError
from ..documents import CameraRecognition, FrameFiller, camera_stream
from ._record import CalibrationRecord

__all__ = ["GridCalibrationCallback"]

log = logging.getLogger(__name__)


class GridCalibrationCallback(DocumentRouter):
    """On a successful stop, ``calibrate_grid`` the run and save record + overlay PNG.

    ``on_record(record)`` is called with the saved record (e.g. to store it in Tiled
    via ``record_to_documents``). Calibration failures are logged and kept in
    ``self.error`` rather than raised into the RunEngine. ``cameras``: how camera
    streams are recognised (as ``FusionConfig.cameras``; default: today's key names).
    """

    def __init__(
        self,
        out_dir: str | Path,
        on_record: Callable[[CalibrationRecord], None] | None = None,
        *,
        ratio: int = 4,
        mirror: bool = True,
        progress: bool = False,
        cameras: CameraRecognition | None = None,
    ) -> None:
        super().__init__()
        self.cameras = cameras
        self.progress = progress  # a bar on stderr over the fit's steps
        self.out_dir = Path(out_dir)
        self.on_record = on_record
        self.ratio = ratio
        self.mirror = mirror
        self.record: CalibrationRecord | None = None
        self.record_path: Path | None = None
        self.error: Exception | None = None
        self._filler = FrameFiller()
        self._reset()

    def _reset(self) -> None:
        self._start: dict | None = None
        self._streams: dict[str, tuple[str, str]] = {}  # descriptor uid -> (camera, key)
        self._filler.close()  # files of a run that never stopped
        self._filler = FrameFiller()
        self._data_keys: dict[str, str | None] = {}  # stream resource uid -> data key
        self._frames: dict[str, list[np.ndarray]] = {"phantom": [], "shimadzu": []}

    def start(self, doc):
        self._reset()
        self._start = doc
        self.record = self.record_path = self.error = None
        return doc

    def descriptor(self, doc):
        try:
            stream = camera_stream(doc, self.cameras)
        except DocumentError as exc:  # a camera whose keys are not the profile's
            self.error = exc
            log.error("grid calibration ignores %s", exc)
            return doc
        if stream is not None:
            self._streams[doc["uid"]] = (stream.camera, stream.image_key)
        return doc

    def event(self, doc):
        stream = self._streams.get(doc["descriptor"])
        if stream is not None and stream[1] in doc["data"]:
            value = doc["data"][stream[1]]
            if not isinstance(value, str):  # a datum id would be a string
                self._frames[stream[0]].append(np.asarray(value))
        return doc

    def stream_resource(self, doc):
        self._filler.stream_resource(doc)
        self._data_keys[doc["uid"]] = doc.get("data_key")
        return doc

    def stream_datum(self, doc):
        stream = self._streams.get(doc["descriptor"])
        if stream is None or self._data_keys.get(doc["stream_resource"]) != stream[1]:
            return doc
        self._frames[stream[0]].extend(self._filler.stream_datum_frames(doc))
        return doc

    def stop(self, doc):
        start = self._start
        try:
            if start is not None and doc.get("exit_status") == "success":
                self._calibrate()
        except XFusionError as exc:
            self.error = exc
            log.error("grid calibration of run %s failed: %s", start["uid"] if start else "?", exc)
        finally:
            self._filler.close()
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
            progress=self.progress,
        )
        self.record = result.record
        self.record_path = result.record.save(self.out_dir / f"calibration_{uid[:8]}.json")
        write_overlay(result, self.record_path.with_suffix(".png"))
        if self.on_record is not None:
            self.on_record(result.record)
