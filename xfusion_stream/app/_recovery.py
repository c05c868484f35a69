"""After a crash: complete or close the fused runs the spool holds without a stop.

Why: a ``kill -9`` of ``xfusion serve`` left a fused run in Tiled with its start, some
rows and no stop, and nothing found it again. The spool (``publishing.Spool``) holds
every such run's documents. :func:`recover_partial_runs` re-fuses the raw run from
Tiled under the same fused uid (replay gives bit-identical frames, so the result
equals an uninterrupted run) and writes it whole; when the raw run is not in Tiled
(or has no stop) it closes the fused run with a stop of exit_status ``abort`` and the
reason. :func:`recover_spool` does that and then re-ingests the complete runs: what
``xfusion serve`` runs at start, and ``xfusion spool --reingest``.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import XFusionError
from ..fusion import is_calibration_run
from ..publishing import (
    SPOOL_SUFFIX,
    append_to_spool,
    iter_spool,
    spool_files,
    spool_status,
    try_lock,
    write_spooled_run,
)

if TYPE_CHECKING:
    from ._session import FusionSession

__all__ = ["RecoveryReport", "recover_partial_runs", "recover_spool"]

logger = logging.getLogger(__name__)

ASIDE_SUFFIX = ".recovering"


@dataclass
class RecoveryReport:
    """Fused runs cut off without a stop: completed by re-fusing their raw run (fused
    uid -> exit_status), closed with ``abort`` (uid -> reason), failed (uid -> why),
    left (in use by another process)."""

    completed: dict[str, str] = field(default_factory=dict)
    closed: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "runs_completed": len(self.completed),
            "runs_closed": len(self.closed),
            "failed": dict(self.failed),
            "left": list(self.left),
        }


def _raw_run_problem(client: Any, raw_uid: Any) -> str | None:
    """Why the raw run cannot be re-fused from Tiled, or None if it can."""
    if not isinstance(raw_uid, str) or not raw_uid:
        return "the fused start names no raw run"
    if raw_uid not in client:
        return f"raw run {raw_uid} is not in Tiled"
    start = client[raw_uid].metadata.get("start", {})
    if is_calibration_run(start):
        return f"raw run {raw_uid} is a calibration run"
    if "stop" not in client[raw_uid].metadata:
        return f"raw run {raw_uid} has no stop in Tiled"
    return None


def _abort_stop(path: Path, run_uid: str, reason: str) -> dict[str, Any]:
    """The stop a cut-off fused run gets: abort, the reason, the events it has."""
    descriptors: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for name, doc in iter_spool(path):
        if name == "descriptor":
            descriptors[doc["uid"]] = doc.get("name", "primary")
        elif name == "event" and doc.get("descriptor") in descriptors:
            counts[descriptors[doc["descriptor"]]] += 1
    return {
        "uid": str(uuid.uuid4()),
        "run_start": run_uid,
        "time": time.time(),
        "exit_status": "abort",
        "reason": reason,
        "num_events": dict(counts),
    }


def _recover_one(
    session: FusionSession, client: Any, aside: Path, start: dict, timeout: float
) -> tuple[str, str]:
    """Re-fuse or close one cut-off run; ("completed" | "closed", status or reason)."""
    run_uid = start["uid"]
    problem = _raw_run_problem(client, start.get("raw_uid"))
    if problem is None:
        if run_uid in client:  # the partial copy goes; the re-fused run replaces it
            client.delete_contents(run_uid, recursive=True, external_only=False)
        result = session.replay(client, start["raw_uid"], timeout=timeout, fused_uid=run_uid)
        if result.sink_errors:  # still spooled under its uid: re-ingested later
            logger.warning("re-fused run %s: %s", run_uid, "; ".join(result.sink_errors))
        return "completed", str(result.exit_status)
    reason = f"xfusion was cut off before this run's stop; not re-fused: {problem}"
    append_to_spool(aside, "stop", _abort_stop(aside, run_uid, reason))
    assert session.tiled is not None
    write_spooled_run(aside, client, batch_size=session.tiled.batch_size)
    return "closed", reason


def recover_partial_runs(
    session: FusionSession,
    tiled_client: Any = None,
    *,
    timeout: float = 600.0,
) -> RecoveryReport:
    """Complete (re-fuse) or close every fused run of ``session``'s spool that has no
    stop and no live writer, so Tiled holds each whole, as an uninterrupted run would.

    ``tiled_client`` (default: the session's Tiled sink's) is where the raw runs are
    looked up; the re-fused runs go to the session's sinks (Tiled through its spool).
    """
    if session.spool is None or session.tiled is None:
        raise XFusionError("recovering fused runs needs a session with spool_dir and a Tiled sink")
    client = tiled_client if tiled_client is not None else session.tiled.client
    report = RecoveryReport()
    for path in spool_files(session.spool.directory):
        uid = path.name.removesuffix(SPOOL_SUFFIX)
        fd = try_lock(path)
        if fd is None:
            report.left.append(uid)
            continue
        aside = path.with_name(uid + ASIDE_SUFFIX)
        try:
            if spool_status(path).complete:
                continue  # a whole run: re-ingest's job
            first = next(iter_spool(path), None)
            if first is None or first[0] != "start":  # nothing was announced
                path.unlink()
                continue
            os.replace(path, aside)  # out of re-ingest's way while we work on it
            kind, what = _recover_one(session, client, aside, first[1], timeout)
            getattr(report, kind)[uid] = what
            aside.unlink(missing_ok=True)
            logger.info("fused run %s cut off earlier: %s (%s)", uid, kind, what)
        except Exception as exc:  # noqa: BLE001 - reported; the spool file stays
            report.failed[uid] = repr(exc)[:300]
            logger.error("recovering fused run %s failed: %r", uid, exc)
            if aside.exists() and not path.exists():
                os.replace(aside, path)
        finally:
            os.close(fd)
    return report


def recover_spool(session: FusionSession, *, timeout: float = 600.0) -> dict[str, Any]:
    """What ``xfusion serve`` does at start: recover the cut-off runs, then re-ingest
    every complete spooled run into Tiled. A summary of both."""
    recovered = recover_partial_runs(session, timeout=timeout)
    reingested = session.reingest()
    return {"recovered": recovered.summary(), "reingested": reingested.summary()}
