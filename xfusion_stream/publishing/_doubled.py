"""Rows Tiled holds twice: found after TiledWriter sent an append again, and marked.

TiledWriter sends an append again when its answer was lost (a timeout, a cut
connection) and notes in the run's metadata that the rows "may be duplicated": if the
first one had been done, they are. ``TiledSink`` (fused runs, rewritten from the spool)
and ``OffLoopWriter`` (raw runs) read such a run back.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["DOUBLED_KEY", "doubled_rows", "mark_doubled_rows"]

logger = logging.getLogger(__name__)

#: in a run's ``notes`` (its metadata), TiledWriter's words for re-sending rows whose
#: answer was lost: the server may have stored them already (bluesky-tiled-plugins 2.0)
_RESENT_NOTE = "forcing a retry"


def doubled_rows(client: Any, uid: str) -> str:
    """What run ``uid`` holds twice in Tiled ('' : nothing).

    Only when TiledWriter's note says it sent an append again are the streams' tables
    read: a ``seq_num`` found more than once is a row stored twice.
    """
    return _doubled_in(client[uid])


def _doubled_in(node: Any) -> str:
    if not any(_RESENT_NOTE in str(note) for note in node.metadata.get("notes") or ()):
        return ""
    doubled = []
    for name in node:
        stream = node[name]
        container = getattr(stream, "base", stream)
        for key in container:
            if not key.startswith("internal"):
                continue
            table = container[key]
            if "seq_num" not in getattr(table, "columns", ()):
                continue
            seq = [int(v) for v in table.read(["seq_num"])["seq_num"]]
            if len(seq) > len(set(seq)):
                doubled.append(f"{name}/{key}: {len(seq) - len(set(seq))} of {len(seq)} rows")
    return "; ".join(doubled)


#: metadata key of a run found with rows twice (what ``doubled_rows`` said); a rewrite
#: from the spool replaces the run and drops it
DOUBLED_KEY = "doubled_rows"


def mark_doubled_rows(client: Any, uid: str) -> str:
    """``doubled_rows``; when run ``uid`` holds rows twice, its metadata also gets
    ``DOUBLED_KEY`` (its stop still says success: what wrote the stop did not know)."""
    node = client[uid]
    doubled = _doubled_in(node)
    if doubled:
        try:
            node.update_metadata(metadata={DOUBLED_KEY: doubled}, drop_revision=True)
        except Exception:  # noqa: BLE001 - the caller reports the rows anyway
            logger.exception("could not mark run %s as holding rows twice", uid)
    return doubled
