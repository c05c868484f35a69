"""Fused frames stored the way cameras store theirs: one HDF5 file per fused run.

The frame-sized fields of the schema (the fused image, the residual map) go to the file,
one row per event, and the fused stream points at them with StreamResource /
StreamDatum documents (``external: "STREAM:"`` in the descriptor), so neither 0MQ nor
Tiled carries a float32 frame inline. Layout::

    /entry/data/<field>     (n_frames, *field_shape), chunks (1, *field_shape)

The file is written in HDF5's single-writer/multiple-reader mode and flushed after
every row, so Tiled (``swmr: true`` in the StreamResource) and the live viewer read the
frames of a run still being fused; it is complete and closed before the stop document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from event_model import ComposeRunBundle, StreamRange

__all__ = ["DATA_GROUP", "HDF5_MIMETYPE", "FusedFrameFile"]

DATA_GROUP = "/entry/data"
HDF5_MIMETYPE = "application/x-hdf5"


def _free_path(directory: Path, stem: str) -> Path:
    """``<stem>.h5``, or ``<stem>-rN.h5`` when a run is fused again under its uid (crash
    recovery): the earlier file stays, as the documents that point at it may."""
    path = directory / f"{stem}.h5"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-r{n}.h5"
    return path


class FusedFrameFile:
    """The HDF5 file of one fused run and the asset documents that point into it.

    ``fields`` maps each external data key to its dtype and per-frame shape. The file
    is created (never overwritten) in ``directory`` as ``fused_<run uid>.h5`` (``-r2``,
    ``-r3`` ... when the run is fused again under its uid after a crash).
    """

    def __init__(
        self,
        directory: Path,
        bundle: ComposeRunBundle,
        fields: Mapping[str, tuple[str, Sequence[int]]],
    ) -> None:
        if not fields:
            raise ValueError("a fused frame file needs at least one field")
        directory = Path(directory).expanduser().resolve()
        directory.mkdir(parents=True, exist_ok=True)
        self.path = _free_path(directory, f"fused_{bundle.start_doc['uid']}")
        h5 = h5py.File(self.path, "w-", libver="latest")
        self._h5: h5py.File | None = h5
        self._datasets: dict[str, h5py.Dataset] = {}
        self._resources: dict[str, Any] = {}
        uri = f"file://localhost{self.path.as_posix()}"
        compose = bundle.compose_stream_resource
        assert compose is not None  # event-model always gives a run bundle one
        for name, (dtype, shape) in fields.items():
            shape = tuple(int(s) for s in shape)
            self._datasets[name] = h5.create_dataset(
                f"{DATA_GROUP}/{name}",
                shape=(0, *shape),
                maxshape=(None, *shape),
                chunks=(1, *shape),
                dtype=np.dtype(dtype),
            )
            self._resources[name] = compose(
                mimetype=HDF5_MIMETYPE,
                uri=uri,
                data_key=name,
                parameters={
                    "dataset": f"{DATA_GROUP}/{name}",
                    "chunk_shape": [1, *shape],
                    "swmr": True,
                },
                validate=True,
            )
        h5.swmr_mode = True  # every dataset exists; readers may open it now
        self.n_rows = 0
        self._announced = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._datasets)

    def append(
        self, values: Mapping[str, Any], descriptor: Any, seq_num: int
    ) -> list[tuple[str, dict]]:
        """Write one row (every field) and flush; returns the documents that announce
        it: the StreamResources before the first row, then one StreamDatum per field
        for event ``seq_num`` of ``descriptor``. event-model validated each of them
        against its schema as it composed it."""
        if self._h5 is None:
            raise RuntimeError(f"{self.path} is closed")
        row = self.n_rows
        for name, dataset in self._datasets.items():
            value = np.asarray(values[name], dtype=dataset.dtype)
            if value.shape != dataset.shape[1:]:
                raise ValueError(
                    f"{name}: frame of shape {value.shape}, the file holds {dataset.shape[1:]}"
                )
            dataset.resize(row + 1, axis=0)
            dataset[row] = value
            dataset.flush()
        self.n_rows = row + 1
        docs: list[tuple[str, dict]] = []
        if not self._announced:
            docs += [
                ("stream_resource", dict(r.stream_resource_doc)) for r in self._resources.values()
            ]
            self._announced = True
        for resource in self._resources.values():
            datum = resource.compose_stream_datum(
                indices=StreamRange(start=row, stop=row + 1),
                seq_nums=StreamRange(start=seq_num, stop=seq_num + 1),
                descriptor=descriptor,
                validate=True,
            )
            docs.append(("stream_datum", dict(datum)))
        return docs

    def close(self) -> None:
        """Close the file (idempotent); rows already written stay readable."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
