"""The HDF5 file a camera's burst is read out into, and the documents that point at it.

Layout (what an areaDetector HDF5 plugin would write, kept deliberately small)::

    /entry/data/data                 uint16 (n_frames, rows, cols), chunks (1, rows, cols)
    /entry/instrument/frame_number   int64 (n_frames,)
    /entry/instrument/time_ns        int64 (n_frames,)
    /entry/instrument/trigger_flag   bool  (n_frames,)

The file is complete and closed before any event references it, so readers (Tiled's
HDF5 adapter, the fusion callback) open it without SWMR.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from event_model import ComposeStreamResource, ComposeStreamResourceBundle, StreamRange
from event_model.documents import StreamDatum, StreamResource

from ._camera_backend import CameraFrame

__all__ = ["FRAME_DATASET", "HDF5_MIMETYPE", "BurstFile", "write_burst_file"]

FRAME_DATASET = "/entry/data/data"
HDF5_MIMETYPE = "application/x-hdf5"


def write_burst_file(path: Path, frames: Sequence[CameraFrame]) -> Path:
    """Write one read-out burst; refuses to overwrite (each burst gets a new file)."""
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    images = np.stack([np.asarray(f.image, dtype=np.uint16) for f in frames])
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w-") as h5:
        h5.create_dataset(FRAME_DATASET, data=images, chunks=(1, *images.shape[1:]))
        inst = h5.require_group("/entry/instrument")
        inst["frame_number"] = np.array([f.frame_number for f in frames], dtype=np.int64)
        inst["time_ns"] = np.array([f.time_ns for f in frames], dtype=np.int64)
        inst["trigger_flag"] = np.array([f.e_flag for f in frames], dtype=bool)
    return path


class BurstFile:
    """One HDF5 file of one burst, and its StreamResource / StreamDatum documents.

    The StreamResource goes out with the first frame's event; each frame's event gets a
    StreamDatum for exactly that row (``indices`` i..i+1). The RunEngine fills in
    ``seq_nums`` and ``descriptor``.
    """

    def __init__(self, path: Path, data_key: str, frame_shape: tuple[int, int]) -> None:
        self.path = path.resolve()
        self.data_key = data_key
        self._bundle: ComposeStreamResourceBundle = ComposeStreamResource()(
            mimetype=HDF5_MIMETYPE,
            uri=f"file://localhost{self.path.as_posix()}",
            data_key=data_key,
            parameters={
                "dataset": FRAME_DATASET,
                "chunk_shape": [1, *frame_shape],
                "swmr": False,
            },
        )
        self._resource_sent = False

    @property
    def stream_resource(self) -> StreamResource:
        return self._bundle.stream_resource_doc

    def asset_docs(self, index: int) -> list[tuple[str, StreamResource | StreamDatum]]:
        """Documents for row ``index``: the resource first time round, then its datum."""
        docs: list[tuple[str, StreamResource | StreamDatum]] = []
        if not self._resource_sent:
            docs.append(("stream_resource", self.stream_resource))
            self._resource_sent = True
        datum = self._bundle.compose_stream_datum(StreamRange(start=index, stop=index + 1))
        docs.append(("stream_datum", datum))
        return docs
