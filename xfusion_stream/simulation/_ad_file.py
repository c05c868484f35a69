"""The HDF5 file an areaDetector HDF5 plugin writes, frame by frame, for the simulators.

Both simulated cameras (the soft IOCs and the in-process simulated detectors) write
this layout, so a run's StreamResources point at the same datasets whichever wrote
them, and a reader written against one reads the other (and the real plugin's files)::

    /entry/data/data                          uint16 (n, rows, cols), chunks (1, rows, cols)
    /entry/instrument/NDAttributes/<name>     one value per frame (n,), per NDAttribute

Why a writer that appends: the camera, not the client, writes the file while the burst
is read out; ``frames`` grows one frame at a time and the file is closed (complete)
when the burst ends, before the camera reports itself idle.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

__all__ = ["AD_ATTRIBUTES_GROUP", "AD_FRAMES_DATASET", "ADFileWriter"]

AD_FRAMES_DATASET = "/entry/data/data"
AD_ATTRIBUTES_GROUP = "/entry/instrument/NDAttributes"


class ADFileWriter:
    """Appends frames and their NDAttribute values to one areaDetector-layout file.

    ``attributes`` maps each NDAttribute name to its numpy dtype. Thread safe: the
    caller's event loop stays free while a worker thread writes (one lock).
    """

    def __init__(self, path: str | os.PathLike[str], attributes: Mapping[str, str]) -> None:
        self.path = Path(path)
        self.attributes = {str(k): np.dtype(v) for k, v in attributes.items()}
        self.frames_written = 0
        self._h5: h5py.File | None = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._h5 is not None

    def _open(self, frame: np.ndarray) -> h5py.File:
        """Create the file at the first frame (lazy open), or reopen it to append."""
        if self._h5 is not None:
            return self._h5
        if self.frames_written:
            self._h5 = h5py.File(self.path, "a")
            return self._h5
        self.path.parent.mkdir(parents=True, exist_ok=True)
        h5 = h5py.File(self.path, "w-")
        rows, cols = frame.shape
        h5.create_dataset(
            AD_FRAMES_DATASET,
            shape=(0, rows, cols),
            maxshape=(None, rows, cols),
            dtype=frame.dtype,
            chunks=(1, rows, cols),
        )
        group = h5.require_group(AD_ATTRIBUTES_GROUP)
        for name, dtype in self.attributes.items():
            group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(16384,))
        self._h5 = h5
        return h5

    def append(self, frame: np.ndarray, values: Mapping[str, float | int | bool]) -> int:
        """Write one frame and its attribute values; returns the frames written so far."""
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise ValueError(f"{self.path.name}: a frame is 2-D, got shape {frame.shape}")
        missing = set(self.attributes) - set(values)
        if missing:
            raise ValueError(f"{self.path.name}: no value for NDAttributes {sorted(missing)}")
        with self._lock:
            h5 = self._open(frame)
            data = h5[AD_FRAMES_DATASET]
            if tuple(data.shape[1:]) != frame.shape:
                raise ValueError(
                    f"{self.path.name}: frame {frame.shape} differs from {data.shape[1:]}"
                )
            n = data.shape[0]
            data.resize(n + 1, axis=0)
            data[n] = frame
            for name in self.attributes:
                column = h5[f"{AD_ATTRIBUTES_GROUP}/{name}"]
                column.resize(n + 1, axis=0)
                column[n] = values[name]
            self.frames_written = n + 1
            return self.frames_written

    def flush(self) -> None:
        with self._lock:
            if self._h5 is not None:
                self._h5.flush()

    def close(self) -> None:
        """Close the file (complete on disk); a later ``append`` reopens it."""
        with self._lock:
            if self._h5 is not None:
                self._h5.close()
                self._h5 = None
