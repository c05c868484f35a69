"""Events with their external arrays read in, for consumers that want pixels.

A fused run stored like a camera's (``FusionConfig.fused_data_dir``) sends its frames
by StreamResource / StreamDatum; its events carry only the scalars. ``FilledEvents``
passes every document on and, for each event, reads the external keys of its
descriptor from the files the StreamDatums name (``FrameFiller``: confined to
``data_roots``, files still being written are reopened to see new rows) before the
consumer sees it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable
from typing import Any

from ..core import DocumentError
from ._filler import FrameFiller

__all__ = ["FilledEvents"]

Callback = Callable[[str, dict], Any]


class FilledEvents:
    """``callback(name, doc)`` for every document, events with external keys filled.

    ``data_roots``: as for ``FrameFiller`` (None trusts the documents' paths). An event
    whose array cannot be read raises ``DocumentError`` naming the key and the file,
    after the documents before it were passed on; the consumer decides what to do.
    With ``strict=False`` (a display) it is passed on without that key instead, counted
    in ``unfilled`` with the reason in ``last_problem``.
    """

    def __init__(
        self,
        callback: Callback,
        *,
        data_roots: Iterable[str | os.PathLike[str]] | None = None,
        strict: bool = True,
    ) -> None:
        self.callback = callback
        self.strict = strict
        self.unfilled = 0
        self.last_problem: str | None = None
        self._filler = FrameFiller(data_roots=data_roots)
        self._external: dict[str, tuple[str, list[str]]] = {}  # descriptor -> (stream, keys)
        self._counts: dict[str, int] = {}  # descriptor -> events seen

    def __call__(self, name: str, doc: dict) -> None:
        if name == "descriptor":
            self._filler.descriptor(doc)
            keys = [
                k
                for k, v in (doc.get("data_keys") or {}).items()
                if isinstance(v, dict) and v.get("external") == "STREAM:"
            ]
            if keys and isinstance(doc.get("uid"), str):
                self._external[doc["uid"]] = (str(doc.get("name", "primary")), keys)
        elif name == "stream_resource":
            self._filler.stream_resource(doc)
        elif name == "stream_datum":
            self._filler.stream_datum(doc)
        elif name == "event":
            doc = self._fill(doc)
        elif name == "event_page":
            doc = self._fill_page(doc)
        self.callback(name, doc)
        if name == "stop":
            self._filler.close()

    def _fill(self, event: dict) -> dict:
        entry = self._external.get(event.get("descriptor"))  # type: ignore[arg-type]
        if entry is None:
            return event
        stream, keys = entry
        index = self._counts.get(event["descriptor"], 0)
        self._counts[event["descriptor"]] = index + 1
        filled = copy.copy(event)
        filled["data"] = dict(event.get("data") or {})
        filled["filled"] = dict(event.get("filled") or {})
        for key in keys:
            if key in filled["data"]:
                continue
            try:
                filled["data"][key] = self._filler.frame(
                    event["descriptor"], stream, key, filled, index
                )
            except DocumentError as exc:
                problem = DocumentError("event", event.get("uid"), f"cannot fill {key!r}: {exc}")
                if self.strict:
                    raise problem from None
                self.unfilled += 1
                self.last_problem = str(problem)
                continue
            filled["filled"][key] = True
        return filled

    def _fill_page(self, page: dict) -> dict:
        if page.get("descriptor") not in self._external:
            return page
        n = len(page.get("seq_num") or [])
        rows = []
        for i in range(n):
            event = {
                "uid": page["uid"][i],
                "descriptor": page["descriptor"],
                "seq_num": page["seq_num"][i],
                "data": {k: v[i] for k, v in (page.get("data") or {}).items()},
                "filled": {},
            }
            rows.append(self._fill(event)["data"])
        filled = copy.copy(page)
        filled["data"] = {k: [row[k] for row in rows] for k in (rows[0] if rows else {})}
        return filled
