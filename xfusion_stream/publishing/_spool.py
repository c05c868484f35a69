"""A durable spool of fused runs on disk, kept until Tiled confirms each run.

Why: with Tiled down or the process killed, up to a batch of fused rows lived only in
memory and were lost while 0MQ said ``success``. Every document bound for Tiled is
appended here first, in the safe wire format (msgpack, ``pack_document``; never
pickle): one file per fused run, ``<uid>.xfspool``, a magic line then records of
``>II`` (payload length, CRC-32) + payload ``{"name", "doc"}``. Each record is flushed
to the OS at once (a ``kill -9`` loses nothing written), fsync'd every ``sync_every``
records and at the stop. A torn or corrupt tail (power cut) ends the readable part.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import stat
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core import XFusionError
from ._serialization import WireFormatError, pack_document, unpack_document

__all__ = [
    "SPOOL_SUFFIX",
    "Spool",
    "SpoolStatus",
    "append_to_spool",
    "iter_spool",
    "spool_files",
    "spool_status",
    "try_lock",
]

logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".xfspool"
_MAGIC = b"XFSPOOL1\n"
_HEADER = struct.Struct(">II")
_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_MAX_RECORD = 1 << 31


def _check_uid(run: str) -> str:
    if not isinstance(run, str) or not _UID.match(run) or ".." in run:
        raise XFusionError(f"run uid {str(run)[:60]!r} cannot name a spool file")
    return run


def spool_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The spool files in ``directory`` (none if it does not exist), oldest first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    dated = []
    for path in folder.iterdir():
        if path.suffix != SPOOL_SUFFIX:
            continue
        try:  # another thread may write a run whole and delete its file meanwhile
            info = path.stat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            dated.append((info.st_mtime, path.name, path))
    return [path for _, _, path in sorted(dated)]


def _records(stream: IO[bytes], path: Path) -> Iterator[bytes]:
    magic = stream.read(len(_MAGIC))
    if magic != _MAGIC:
        if _MAGIC.startswith(magic):  # just created: nothing written yet
            return
        raise XFusionError(f"{path}: not an xfusion spool file")
    while True:
        header = stream.read(_HEADER.size)
        if len(header) < _HEADER.size:
            if header:
                logger.warning("%s: torn record header at the end; ignored", path)
            return
        size, crc = _HEADER.unpack(header)
        payload = stream.read(size)
        if len(payload) < size or zlib.crc32(payload) != crc:
            logger.warning("%s: torn or corrupt record at the end; the rest is ignored", path)
            return
        yield payload


def iter_spool(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict]]:
    """``(name, doc)`` of every whole record of one spool file, in order."""
    path = Path(path)
    with open(path, "rb") as stream:
        for payload in _records(stream, path):
            try:
                record = unpack_document(payload)
            except WireFormatError as exc:
                logger.warning("%s: unreadable record (%s); the rest is ignored", path, exc)
                return
            name, doc = record.get("name"), record.get("doc")
            if not isinstance(name, str) or not isinstance(doc, dict):
                logger.warning("%s: a record is not a document; the rest is ignored", path)
                return
            yield name, doc


@dataclass(frozen=True)
class SpoolStatus:
    """What one spool file holds: its run, how many documents, whether its stop."""

    path: Path
    uid: str
    documents: int
    complete: bool  # the last whole record is the run's stop


def spool_status(path: str | os.PathLike[str]) -> SpoolStatus:
    """Count the whole records of ``path`` and tell whether the last is a stop."""
    path = Path(path)
    last: bytes | None = None
    n = 0
    with open(path, "rb") as stream:
        for payload in _records(stream, path):
            last, n = payload, n + 1
    complete = False
    if last is not None:
        try:
            complete = unpack_document(last).get("name") == "stop"
        except WireFormatError:
            complete = False
    return SpoolStatus(path, path.name.removesuffix(SPOOL_SUFFIX), n, complete)


class _Writer:
    """One open spool file, locked (``lockf``) against other processes while written."""

    def __init__(self, path: Path, sync_every: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise XFusionError(f"{path}: spool file in use by another process") from None
        self.stream = os.fdopen(fd, "ab")
        if self.stream.tell() == 0:
            self.stream.write(_MAGIC)
        self.sync_every = sync_every
        self.unsynced = 0

    def append(self, payload: bytes, sync: bool) -> None:
        if len(payload) >= _MAX_RECORD:
            raise XFusionError(f"a spool record of {len(payload)} bytes is too large")
        self.stream.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self.stream.flush()
        self.unsynced += 1
        if sync or self.unsynced >= self.sync_every:
            os.fsync(self.stream.fileno())
            self.unsynced = 0

    def close(self) -> None:
        if not self.stream.closed:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()


class Spool:
    """The spool directory of one Tiled sink: ``append`` before delivery, ``confirmed``
    once Tiled holds the run (the file goes), ``release`` to close without deleting."""

    def __init__(self, directory: str | os.PathLike[str], *, sync_every: int = 16) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sync_every = max(1, int(sync_every))
        self.documents_spooled = 0
        self._writers: dict[str, _Writer] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Spool {self.directory}>"

    def path(self, run: str) -> Path:
        return self.directory / f"{_check_uid(run)}{SPOOL_SUFFIX}"

    def append(self, run: str, name: str, doc: dict[str, Any]) -> None:
        """Write one document of ``run``; at its stop the file is fsync'd and closed."""
        payload = pack_document({"name": name, "doc": doc})
        with self._lock:
            writer = self._writers.get(run)
            if writer is None:
                writer = self._writers[run] = _Writer(self.path(run), self.sync_every)
            writer.append(payload, sync=name == "stop")
            self.documents_spooled += 1
            if name == "stop":
                self._writers.pop(run).close()

    def release(self, run: str) -> None:
        """Close ``run``'s file if still open (its documents stay for re-ingest)."""
        with self._lock:
            writer = self._writers.pop(run, None)
        if writer is not None:
            writer.close()

    def confirmed(self, run: str) -> None:
        """Tiled holds ``run`` whole: its spool file is no longer needed."""
        self.release(run)
        self.path(run).unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()


def append_to_spool(path: str | os.PathLike[str], name: str, doc: dict[str, Any]) -> None:
    """Append one document to the spool file ``path`` (fsync'd): e.g. the stop that
    closes a run cut off by a crash."""
    writer = _Writer(Path(path), sync_every=1)
    try:
        writer.append(pack_document({"name": name, "doc": doc}), sync=True)
    finally:
        writer.close()


def try_lock(path: Path) -> int | None:
    """An fd holding ``path``'s lock, or None while another process writes it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
