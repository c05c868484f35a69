"""Where the live viewer's documents come from: a 0MQ proxy or a fused run in Tiled.

Both sources end in one document callback, :class:`ViewerFeed`, which turns a fused
run's documents into ``FrameStore`` entries. It never raises: a malformed document is
one log line and a count, so nothing a publisher sends can stop the viewer. A viewer
that joins mid-run (0MQ subscribers miss earlier messages) still shows the frames
that arrive; the run is then shown as joined late.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from ._viewer_store import PANELS, FrameStore

__all__ = ["TiledSource", "ViewerFeed", "ZmqSource", "zmq_address"]

logger = logging.getLogger(__name__)

FUSED_STREAM = "fused"
GAPS_STREAM = "gaps"
_SHOWN = ("start", "descriptor", "event", "event_page", "stop")
_IGNORED = ("resource", "datum", "datum_page", "stream_resource", "stream_datum")
#: keys only a fused stream's events have (the image may be in a file, not the event)
_FUSED_ONLY = ("fused_image", "attention", "blend_weights")


class ViewerFeed:
    """Document callback: the latest fused run's frames into ``store``; never raises.

    Frames a run stores as HDF5 (StreamResource / StreamDatum) are read from their files
    (``FilledEvents``) when those lie inside ``data_roots``; ``()`` (the default) reads
    no file, and such a run shows its numbers only.
    """

    def __init__(
        self, store: FrameStore, *, data_roots: Iterable[str | os.PathLike[str]] = ()
    ) -> None:
        from ..documents import FilledEvents

        self.store = store
        self.accepted = 0
        self.rejected = 0
        self._run_uid: str | None = None
        self._streams: dict[str, str] = {}  # descriptor uid -> stream name (current run)
        self._filled = FilledEvents(self._dispatch, data_roots=data_roots, strict=False)
        self._unfilled = 0

    def __call__(self, name: str, doc: Any) -> None:
        try:
            if not isinstance(doc, dict):
                raise TypeError(f"a document is a dict, not {type(doc).__name__}")
            if name not in _SHOWN and name not in _IGNORED:
                raise ValueError(f"not a document name: {str(name)[:40]!r}")
            self._filled(name, doc)
            self.accepted += 1
        except Exception as exc:  # noqa: BLE001 - any document; the viewer goes on
            self.rejected += 1
            logger.warning("viewer skipped a %.20s document: %.300r", name, exc)

    def _dispatch(self, name: str, doc: dict) -> None:
        if name in _SHOWN:
            getattr(self, "_" + name)(doc)

    def _start(self, doc: dict) -> None:
        uid = _text(doc["uid"])
        if doc.get("purpose") not in (None, "fused"):
            return  # a raw or calibration run on the same proxy: not ours to show
        self._run_uid = uid
        self._streams = {}
        model = doc.get("model")
        model = model if isinstance(model, dict) else {}
        self.store.begin_run(
            {
                "uid": uid,
                "raw_uid": _text(doc.get("raw_uid") or ""),
                "traverse_mode": _text(doc.get("traverse_mode") or ""),
                "model": _text(model.get("name") or ""),
                "started": float(doc.get("time") or time.time()),
            }
        )

    def _descriptor(self, doc: dict) -> None:
        if doc["run_start"] == self._run_uid:
            self._streams[_text(doc["uid"])] = _text(doc.get("name") or "primary")

    def _stream(self, descriptor: Any, data: dict) -> str | None:
        stream = self._streams.get(descriptor)
        if stream is not None:
            return stream
        fused = any(key in data for key in _FUSED_ONLY)
        if self._run_uid is None and fused:  # joined after the start
            self._run_uid = ""
            self.store.begin_run({"uid": "", "joined_late": True})
        return FUSED_STREAM if self._run_uid == "" and fused else None

    def _event(self, doc: dict) -> None:
        data = doc["data"]
        if not isinstance(data, dict):
            raise TypeError("event data is not a map")
        self._row(self._stream(doc["descriptor"], data), data)

    def _event_page(self, doc: dict) -> None:
        data = doc["data"]
        if not isinstance(data, dict):
            raise TypeError("event_page data is not a map")
        n = len(doc["seq_num"])
        if any(len(column) != n for column in data.values()):
            raise ValueError("event_page columns differ in length from seq_num")
        stream = self._stream(doc["descriptor"], {k: None for k in data})
        for i in range(n):
            self._row(stream, {k: v[i] for k, v in data.items()})

    def _row(self, stream: str | None, data: dict) -> None:
        if stream == FUSED_STREAM:
            problems = {}
            if self._filled.unfilled > self._unfilled:  # its frames are in files we may not read
                self._unfilled = self._filled.unfilled
                why = f"stored in a file this viewer may not read (--data-root): {self._filled.last_problem}"
                problems = {panel: why[:300] for panel, key in PANELS.items() if key not in data}
            self.store.add_frame(data, problems=problems)
        elif stream == GAPS_STREAM:
            self.store.add_gap()

    def _stop(self, doc: dict) -> None:
        run_start = _text(doc["run_start"])
        if self._run_uid == "" or run_start == self._run_uid:
            self.store.end_run(_text(doc.get("exit_status") or "?"), _text(doc.get("reason") or ""))


def _text(value: Any, limit: int = 200) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value[:limit]


def zmq_address(text: str) -> str:
    """``HOST:PORT`` (a proxy's out side) as a 0MQ address; tcp:// and ipc:// pass as given."""
    from ..publishing import check_address

    address = text if "://" in text else f"tcp://{text}"
    return check_address(address, "--zmq")


class ZmqSource:
    """Subscribes at a proxy's out address (prefix ``fused``) and feeds ``feed`` on a
    thread of its own until ``close``."""

    def __init__(self, address: str, feed: ViewerFeed, *, prefix: bytes = b"fused") -> None:
        from ..publishing import dispatch_in_thread, make_remote_dispatcher

        self.address = zmq_address(address)
        self.ready = threading.Event()
        self._dispatcher = make_remote_dispatcher(self.address, prefix=prefix)
        self._dispatcher.loop.call_soon(self.ready.set)  # the loop's first turn: subscribed
        self._thread = dispatch_in_thread(self._dispatcher, feed)

    @property
    def rejected(self) -> int:
        """Messages the wire dropped (malformed, oversized)."""
        return int(self._dispatcher.rejected)

    def close(self) -> None:
        from ..publishing import stop_dispatcher

        stop_dispatcher(self._dispatcher, self._thread)


class TiledSource:
    """Reads fused run ``uid`` from a Tiled client every ``interval`` s as it grows,
    handing ``feed`` the same documents a 0MQ subscriber would get; ends after the
    run's stop (or at ``close``)."""

    def __init__(self, client: Any, uid: str, feed: ViewerFeed, *, interval: float = 1.0) -> None:
        self.client = client
        self.uid = uid
        self.feed = feed
        self.interval = float(interval)
        self.ready = threading.Event()
        self.done = threading.Event()
        self.error: str | None = None
        self._stop = threading.Event()
        self._read = 0
        self._thread = threading.Thread(target=self._poll, name="xfusion-view-tiled", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        started = False
        while not self._stop.is_set():
            try:
                started = self._once(started)
            except Exception as exc:  # noqa: BLE001 - a server hiccup: say so, try again
                self.error = f"{type(exc).__name__}: {exc}"[:300]
                logger.warning("viewer: reading %s from Tiled failed: %s", self.uid, self.error)
            self.ready.set()
            if self.done.is_set():
                return
            self._stop.wait(self.interval)

    def _once(self, started: bool) -> bool:
        run = self.client[self.uid]
        metadata = run.metadata
        if not started:
            self.feed("start", dict(metadata["start"]))
            self.feed("descriptor", {"uid": "tiled", "run_start": self.uid, "name": FUSED_STREAM})
        stop = metadata.get("stop")
        if FUSED_STREAM in run:
            self._read_rows(run[FUSED_STREAM])
        expected = ((stop or {}).get("num_events") or {}).get(FUSED_STREAM, 0)
        if stop and self._read >= int(expected):  # the stop may be filed before the last rows
            self.feed("stop", dict(stop))
            self.done.set()
        return True

    def _read_rows(self, stream: Any) -> None:
        """Hand on the rows every data key has (a writer fills its columns one by one)."""
        declared = list((stream.metadata or {}).get("data_keys") or ())
        listed = set(stream)
        if "fused_image" not in declared or not listed.issuperset(declared):
            return  # the writer has not made every column yet
        nodes = {k: stream[k] for k in declared}
        shapes = {k: tuple(getattr(node, "shape", ()) or ()) for k, node in nodes.items()}
        if not all(shapes.values()):
            return
        n = min(shape[0] for shape in shapes.values())
        if n <= self._read:
            return
        # images are fetched row by row below; short columns in one request each
        columns = {k: None if len(s) >= 3 else nodes[k][self._read : n] for k, s in shapes.items()}
        for i in range(self._read, n):
            row = {
                k: nodes[k][i] if column is None else column[i - self._read]
                for k, column in columns.items()
            }
            self.feed("event", {"descriptor": "tiled", "seq_num": i + 1, "data": row})
        self._read = n

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
