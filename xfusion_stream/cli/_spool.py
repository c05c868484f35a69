"""Write fused runs waiting in a spool folder into Tiled.

``xfusion serve`` keeps every fused document on disk until Tiled confirms it, and
re-ingests by itself when Tiled comes back; this command does the same on demand, e.g.
after a service was stopped while Tiled was down. Complete runs only: runs cut off by a
crash need the model to be finished, which ``xfusion serve`` does at start.

The same folder is where the beamline's raw TiledWriter backs up runs Tiled refused
(``<uid>.jsonl``, bluesky-tiled-plugins' own backup format); they are written too.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--spool-dir",
        default=None,
        metavar="DIR",
        help="the spool folder (default: the profile's data_dir/spool)",
    )
    a("--profile", default=None, help="beamline profile: the spool folder and a remote Tiled")
    a("--tiled-uri", default=None, help="Tiled to write to (default: the profile's tiled.uri)")
    a("--api-key", default=None, help="Tiled API key (default: $TILED_API_KEY)")
    a("--list", action="store_true", help="only list the spooled runs, write nothing")


def _spool_dir(args: argparse.Namespace, profile: Any) -> str:
    if args.spool_dir:
        return str(args.spool_dir)
    if profile is not None:
        return str(profile.resolved_spool_dir())
    raise ConfigError("spool needs --spool-dir DIR or --profile NAME")


def run(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from ..app import load_profile
    from ..publishing import reingest_spool, reingest_tiled_backups
    from ._tiled import connect

    profile = load_profile(args.profile) if args.profile else None
    folder = Path(_spool_dir(args, profile))
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such spool folder")
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    if args.list:
        return {"spool_dir": str(folder), "files": files}
    uri = args.tiled_uri or (profile.tiled.uri if profile is not None else None)
    if not uri or uri == "embedded":
        raise ConfigError("spool needs --tiled-uri URI (or a profile with a remote tiled.uri)")
    client = connect(uri, api_key=args.api_key)
    try:
        report = reingest_spool(folder, client)
        backups = reingest_tiled_backups(folder, client)  # raw runs TiledWriter backed up
    finally:
        client.context.close()
    result = {"spool_dir": str(folder), **report.summary(), **backups.summary()}
    if backups.failed:
        result["ok"] = False
        result["error"] = f"Tiled refused backed-up runs: {backups.failed}"
    return result
