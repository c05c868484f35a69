"""Fill camera frames from documents: inline, HDF5 assets, or a Tiled run.

Handles both asset schemes a detector may use: StreamResource/StreamDatum (one datum
covers a range of events of one descriptor) and legacy Resource/Datum (one datum id per
event). Files are opened read-only once per resource and closed at the run's stop.
Which files may be opened at all is the caller's ``data_roots`` (see ``_paths``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import IO, Any

import h5py
import numpy as np

from ..core import DocumentError
from ._paths import (
    DataRoots,
    checked_dataset,
    dataset_path,
    open_confined,
    path_of_resource,
    path_of_uri,
)
from ._paths import data_roots as _roots

__all__ = ["FrameFiller", "ArraySource"]

# (stream name, data key, event index within the stream) -> 2-D array
ArraySource = Callable[[str, str, int], np.ndarray]


def _int(value: Any, doc_name: str, uid: str | None, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DocumentError(doc_name, uid, f"{what} must be an integer, got {value!r:.60}")
    return int(value)


class FrameFiller:
    """Turns asset documents plus an event into the frame array of that event.

    ``data_roots``: None trusts the documents' own paths (they come from this process's
    RunEngine); a sequence of directories confines every file to them; an empty one
    allows no file at all (frames then come inline or from ``array_source``).
    """

    def __init__(
        self,
        array_source: ArraySource | None = None,
        *,
        data_roots: Iterable[str | os.PathLike[str]] | None = None,
    ) -> None:
        self._array_source = array_source
        self.data_roots: DataRoots = _roots(data_roots)
        self._stream_resources: dict[str, dict[str, Any]] = {}
        self._resources: dict[str, dict[str, Any]] = {}
        self._datums: dict[str, dict[str, Any]] = {}
        self._data_keys: dict[str, dict[str, Any]] = {}  # descriptor uid -> data_keys
        # (descriptor uid, data key) -> list of (seq start, seq stop, resource uid, index start)
        self._ranges: dict[tuple[str, str], list[tuple[int, int, str, int]]] = {}
        self._files: dict[str, tuple[h5py.File, IO[bytes]]] = {}
        # stream resource uid -> the confined real path its uri named when first read
        # (its file is open from then on; refusals are not kept)
        self._paths: dict[str, str] = {}
        self._datasets: dict[tuple[str, str, str | None], h5py.Dataset] = {}

    # ---- documents -------------------------------------------------------------
    def descriptor(self, doc: dict[str, Any]) -> None:
        """Remember the data keys, so datasets are checked against what they declare."""
        keys = doc.get("data_keys")
        if isinstance(doc.get("uid"), str) and isinstance(keys, dict):
            self._data_keys[doc["uid"]] = keys

    def stream_resource(self, doc: dict[str, Any]) -> None:
        uid = doc.get("uid")
        if not isinstance(uid, str) or not isinstance(doc.get("data_key"), str):
            raise DocumentError("stream_resource", uid, "uid and data_key must be strings")
        self._stream_resources[uid] = doc
        self._paths.pop(uid, None)

    def _stream_resource_of(self, doc: dict[str, Any]) -> dict[str, Any]:
        resource = self._stream_resources.get(doc.get("stream_resource"))  # type: ignore[arg-type]
        if resource is None:
            raise DocumentError(
                "stream_datum",
                doc.get("uid"),
                f"unknown stream_resource {doc.get('stream_resource')!r:.80}",
            )
        return resource

    def stream_datum(self, doc: dict[str, Any]) -> None:
        resource = self._stream_resource_of(doc)
        uid = doc.get("uid")
        try:
            seq, idx = doc["seq_nums"], doc["indices"]
            start, stop = (
                _int(seq[k], "stream_datum", uid, f"seq_nums.{k}") for k in ("start", "stop")
            )
            index = _int(idx["start"], "stream_datum", uid, "indices.start")
        except (KeyError, TypeError) as exc:
            raise DocumentError(
                "stream_datum", uid, f"malformed seq_nums/indices: {exc!r}"
            ) from None
        if not isinstance(doc.get("descriptor"), str) or index < 0 or stop < start:
            raise DocumentError("stream_datum", uid, "bad descriptor, indices or seq_nums")
        key = (doc["descriptor"], resource["data_key"])
        self._ranges.setdefault(key, []).append((start, stop, resource["uid"], index))

    def stream_datum_frames(self, doc: dict[str, Any]) -> np.ndarray:
        """Every frame a StreamDatum covers, (n, rows, cols), in index order."""
        resource = self._stream_resource_of(doc)
        uid = doc.get("uid")
        try:
            start = _int(doc["indices"]["start"], "stream_datum", uid, "indices.start")
            stop = _int(doc["indices"]["stop"], "stream_datum", uid, "indices.stop")
        except (KeyError, TypeError) as exc:
            raise DocumentError("stream_datum", uid, f"malformed indices: {exc!r}") from None
        return self._read_stream(resource["uid"], slice(start, stop), doc.get("descriptor"))

    def resource(self, doc: dict[str, Any]) -> None:
        if not isinstance(doc.get("uid"), str):
            raise DocumentError("resource", None, "uid must be a string")
        self._resources[doc["uid"]] = doc

    def datum(self, doc: dict[str, Any]) -> None:
        if not isinstance(doc.get("datum_id"), str) or not isinstance(doc.get("resource"), str):
            raise DocumentError(
                "datum", doc.get("datum_id"), "datum_id and resource must be strings"
            )
        if doc["resource"] not in self._resources:
            raise DocumentError(
                "datum", doc["datum_id"], f"unknown resource {doc['resource']!r:.80}"
            )
        self._datums[doc["datum_id"]] = doc

    # ---- frames ----------------------------------------------------------------
    def frame(
        self, descriptor_uid: str, stream_name: str, key: str, event: dict[str, Any], index: int
    ) -> np.ndarray:
        """The 2-D array of ``key`` in ``event`` (the ``index``-th event of its stream)."""
        value = event["data"].get(key)
        if value is not None and not isinstance(value, str):
            return np.asarray(value)
        refused: DocumentError | None = None
        if isinstance(value, str) and value in self._datums:
            try:
                return self._read_datum(value, descriptor_uid, key)
            except DocumentError as exc:
                if self._array_source is None:
                    raise
                return self._from_tiled(event, stream_name, key, index, exc)
        seq_num = int(event["seq_num"])
        for start, stop, resource_uid, index_start in self._ranges.get((descriptor_uid, key), []):
            if start <= seq_num < stop:
                try:
                    return self._read_stream(
                        resource_uid, index_start + seq_num - start, descriptor_uid
                    )
                except DocumentError as exc:
                    if self._array_source is None:  # replay may still fetch it from Tiled
                        raise
                    refused = exc
                    break
        if self._array_source is not None:
            return self._from_tiled(event, stream_name, key, index, refused)
        raise DocumentError("event", event.get("uid"), f"no data and no asset for {key!r}")

    def _from_tiled(
        self,
        event: dict[str, Any],
        stream_name: str,
        key: str,
        index: int,
        refused: DocumentError | None,
    ) -> np.ndarray:
        """Frame ``index`` of Tiled's copy; when that fails too, both reasons are said (a
        bare IndexError, or Tiled's HTTP 500 in place of the local refusal, named neither
        the document nor the cause)."""
        assert self._array_source is not None
        try:
            return np.asarray(self._array_source(stream_name, key, index))
        except Exception as exc:  # noqa: BLE001 - any failure of the remote copy is named
            local = f"{refused}; " if refused is not None else ""
            why = f"{local}frame {index} of {stream_name}/{key} in Tiled: {type(exc).__name__}"
            raise DocumentError("event", event.get("uid"), f"{why}: {exc}"[:500]) from None

    def _dataset(
        self,
        path: str,
        dataset: str,
        data_key: dict | None,
        doc_name: str,
        uid: str | None,
        what: str,
        swmr: bool = False,
    ) -> h5py.Dataset:
        """The checked frames dataset, opening the file once (refusals are not cached)."""
        cache = (path, dataset, repr(data_key) if data_key else None)
        ds = self._datasets.get(cache)
        if ds is None:
            if path not in self._files:
                self._files[path] = open_confined(
                    path, self.data_roots, doc_name, uid, what, swmr=swmr
                )
            ds = checked_dataset(self._files[path][0], dataset, data_key, doc_name, uid)
            self._datasets[cache] = ds
        return ds

    def _data_key(self, descriptor_uid: Any, key: str) -> dict | None:
        keys = self._data_keys.get(descriptor_uid) if isinstance(descriptor_uid, str) else None
        value = keys.get(key) if keys else None
        return value if isinstance(value, dict) else None

    def _read_stream(
        self, resource_uid: str, row: int | slice, descriptor_uid: Any = None
    ) -> np.ndarray:
        res = self._stream_resources[resource_uid]
        uid = res["uid"]
        path = self._paths.get(uid)
        if path is None:  # resolved once per resource, not once per event
            path = path_of_uri(res.get("uri"), self.data_roots, "stream_resource", uid)
            self._paths[uid] = path
        params = res.get("parameters") or {}
        dataset = dataset_path(
            params.get("dataset") if isinstance(params, dict) else None, "stream_resource", uid
        )
        data_key = self._data_key(descriptor_uid, res["data_key"])
        what = f"uri {res['uri'][:200]!r}"
        swmr = isinstance(params, dict) and params.get("swmr") is True
        ds = self._dataset(path, dataset, data_key, "stream_resource", uid, what, swmr)
        stop = row + 1 if isinstance(row, int) else row.stop
        if swmr and stop > ds.shape[0]:
            # a file still being written (a live fused run): its rows grow, and an open
            # handle keeps the length it had; a SWMR reader refreshes it, any other
            # handle (the file object fallback) is opened again
            if ds.file.swmr_mode:
                ds.refresh()
            else:
                self._forget(path)
                ds = self._dataset(path, dataset, data_key, "stream_resource", uid, what, swmr)
        return _rows(ds, row, "stream_resource", uid)

    def _forget(self, path: str) -> None:
        """Close ``path`` and drop its datasets, so the next read opens it afresh."""
        for cache in [c for c in self._datasets if c[0] == path]:
            del self._datasets[cache]
        h5, fh = self._files.pop(path)
        try:
            h5.close()
        finally:
            fh.close()

    def _read_datum(self, datum_id: str, descriptor_uid: str, key: str) -> np.ndarray:
        datum = self._datums[datum_id]
        res = self._resources.get(datum["resource"])
        if res is None:
            raise DocumentError("datum", datum_id, f"unknown resource {datum['resource']!r:.80}")
        path = path_of_resource(res, self.data_roots)
        kwargs = datum.get("datum_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise DocumentError("datum", datum_id, "datum_kwargs must be a map")
        row = _int(
            kwargs.get("point_number", kwargs.get("index", 0)), "datum", datum_id, "point_number"
        )
        rkw = res.get("resource_kwargs") or {}
        dataset = dataset_path(
            rkw.get("dataset") if isinstance(rkw, dict) else None, "resource", res["uid"]
        )
        data_key = self._data_key(descriptor_uid, key)
        ds = self._dataset(path, dataset, data_key, "resource", res["uid"], "its resource_path")
        return _rows(ds, row, "datum", datum_id)

    def forget(self) -> None:
        """``close``, and forget every asset seen: for a filler of one run that is over
        (a fusion session keeps its runs' callbacks, 300000 datums stayed in memory)."""
        self.close()
        for table in (self._stream_resources, self._resources, self._datums, self._data_keys):
            table.clear()
        self._ranges.clear()

    def close(self) -> None:
        self._datasets.clear()
        self._paths.clear()
        for h5, fh in self._files.values():
            try:
                h5.close()
            finally:
                fh.close()
        self._files.clear()


def _rows(ds: h5py.Dataset, row: int | slice, doc_name: str, uid: str | None) -> np.ndarray:
    """Rows of a checked dataset, only inside its bounds (no negative or wrapped index)."""
    n = ds.shape[0]
    start, stop = (row, row + 1) if isinstance(row, int) else (row.start, row.stop)
    if not 0 <= start <= stop <= n:
        raise DocumentError(doc_name, uid, f"{ds.name}[{start}:{stop}] is outside its {n} frames")
    try:
        return np.asarray(ds[row])
    except (OSError, ValueError, IndexError) as exc:
        raise DocumentError(doc_name, uid, f"{ds.name}[{row}] unreadable: {exc}") from exc
