"""Raw runs a TiledWriter could not write: its JSON Lines backups, and their re-ingest.

``TiledWriter(backup_directory=...)`` (bluesky-tiled-plugins) gives up on Tiled for
the rest of a run at the first failed write and writes the run's whole document
stream, from its start, to ``<dir>/<first part of the uid>.jsonl``, one
``{"name": ..., "doc": ...}`` per line. ``reingest_tiled_backups`` writes each complete
backup (start ... stop) into Tiled with a fresh TiledWriter and renames the file to
``.jsonl.ingested``; ``xfusion spool`` runs it next to the fused runs' spool, which
lives in the same folder (``*.xfspool``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._tiled import make_tiled_writer

__all__ = ["BACKUP_SUFFIX", "BackupReport", "reingest_tiled_backups"]

logger = logging.getLogger(__name__)

BACKUP_SUFFIX = ".jsonl"
INGESTED_SUFFIX = ".jsonl.ingested"
_MAX_LINE = 512 * 1024 * 1024  # one document; a line past this is damage, not data


@dataclass
class BackupReport:
    """What a re-ingest did, per backup file (named by its run's uid where known)."""

    runs: list[str] = field(default_factory=list)  # written into Tiled
    documents: int = 0
    present: list[str] = field(default_factory=list)  # complete in Tiled already
    left: dict[str, str] = field(default_factory=dict)  # file -> why it was not written
    failed: dict[str, str] = field(default_factory=dict)  # file -> error (Tiled refused)

    def summary(self) -> dict[str, Any]:
        return {
            "backup_runs_reingested": list(self.runs),
            "backup_documents": self.documents,
            "backup_runs_already_in_tiled": list(self.present),
            "backup_files_left": dict(self.left),
            "backup_files_failed": dict(self.failed),
        }


def _read_backup(path: Path) -> list[tuple[str, dict]]:
    """The documents of one backup file; ValueError naming the line if it is damaged."""
    docs: list[tuple[str, dict]] = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if len(line) > _MAX_LINE:
                raise ValueError(f"{path.name} line {number}: longer than {_MAX_LINE} bytes")
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path.name} line {number}: not JSON ({exc})") from None
            except RecursionError:  # json.loads recurses once per level of nesting
                raise ValueError(f"{path.name} line {number}: nested too deeply") from None
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("name"), str)
                or not isinstance(item.get("doc"), dict)
            ):
                raise ValueError(f"{path.name} line {number}: not a {{name, doc}} pair")
            docs.append((item["name"], item["doc"]))
    return docs


def _complete_in_tiled(client: Any, uid: str) -> bool | None:
    """True: the run is in Tiled with its stop; False: partly; None: not at all."""
    try:
        node = client[uid]
    except KeyError:
        return None
    return bool((node.metadata or {}).get("stop"))


def reingest_tiled_backups(
    directory: str | os.PathLike[str], client: Any, *, batch_size: int = 64
) -> BackupReport:
    """Write every complete TiledWriter backup in ``directory`` into ``client``.

    A backup without its start or stop (the writing process died mid-run) is left and
    reported; so is one whose run is already partly in Tiled (delete that node first,
    the backup holds the whole run); one already complete in Tiled is marked ingested.
    Stops at the first write Tiled refuses (it is down again); the file stays.
    """
    report = BackupReport()
    folder = Path(directory)
    files = sorted(p for p in folder.glob(f"*{BACKUP_SUFFIX}") if p.is_file())
    for path in files:
        try:
            docs = _read_backup(path)
        except (OSError, ValueError) as exc:
            report.left[path.name] = str(exc)
            continue
        names = [name for name, _ in docs]
        if not names or names[0] != "start" or "stop" not in names:
            report.left[path.name] = "incomplete run (no start or no stop document)"
            continue
        uid = str(docs[0][1].get("uid"))
        state = _complete_in_tiled(client, uid)
        if state is False:
            report.left[path.name] = (
                f"run {uid} is partly in Tiled; delete that node, then re-ingest"
            )
            continue
        if state is None:
            writer = make_tiled_writer(client, batch_size=batch_size)
            try:
                for name, doc in docs:
                    writer(name, doc)
            except Exception as exc:  # noqa: BLE001 - Tiled refused: keep the file
                report.failed[path.name] = repr(exc)[:300]
                logger.error("re-ingest of backup %s failed: %r; kept", path, exc)
                break
            report.runs.append(uid)
            report.documents += len(docs)
            logger.info("re-ingested raw run %s from %s", uid, path)
        else:
            report.present.append(uid)
        path.rename(path.with_name(path.name.removesuffix(BACKUP_SUFFIX) + INGESTED_SUFFIX))
    return report
