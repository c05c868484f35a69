"""Fuse many stored raw runs from Tiled on Dask distributed workers, into fused runs.

Runs are chosen by ``--uid`` (repeat it) or by a query on their start documents
(``--plan-name``, ``--sample``, ``--since``/``--until``). Each run is one task: a worker
replays it through the same fusion session as ``xfusion replay``; the model and the
calibration reach workers by reference (registry name or checkpoint path + sha256, the
record's content), never as tensors. A run already fused with the same model sha256,
calibration uid and traverse mode is skipped (``--force`` redoes it); a failed run is
retried once, then reported with its reason while the rest complete. The JSON lists the
runs fused, skipped and failed, frames, seconds and workers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._argtypes import positive_float, process_count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--tiled-uri", required=True, help="Tiled server URI (with ?api_key=... if needed)")
    a("--uid", action="append", default=None, help="uid of a raw run to fuse; repeat for more")
    a("--plan-name", default=None, help="select raw runs whose start has this plan_name")
    a("--sample", default=None, help="select raw runs whose start has this sample")
    a("--since", default=None, help="select raw runs started at or after this (ISO or epoch s)")
    a("--until", default=None, help="select raw runs started at or before this (ISO or epoch s)")
    a("--calibration", type=Path, default=None, help="calibration record file")
    a("--calibration-uid", default=None, help="uid of a calibration record run in Tiled")
    a("--model_file", "--model-file", default=None, help="checkpoint or registry name")
    a(
        "--traverse_mode",
        "--traverse-mode",
        choices=("continuous", "double"),
        default="continuous",
        help="continuous: a fused frame per Shimadzu frame; double: per Phantom frame, held out as truth",
    )
    a("--device", default="cpu", help="cpu, cuda or cuda:N, on every worker")
    a("--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="model precision")
    a(
        "--scheduler",
        default=None,
        help="an existing Dask scheduler, tcp://HOST:PORT (default: a LocalCluster here)",
    )
    a(
        "--workers",
        type=process_count,
        default=2,
        help="LocalCluster worker processes (one thread each)",
    )
    a(
        "--split-windows",
        type=int,
        default=32,
        metavar="N",
        help="a run longer than N Shimadzu frames has its windows fused on several workers, "
        "in index ranges of N (same frames as fusing it on one); 0: one worker per run",
    )
    a(
        "--data-root",
        action="append",
        default=None,
        metavar="DIR",
        help="a folder every worker sees where the raw runs' HDF5 files may be read "
        "directly; repeat for more (default: none, every frame comes through Tiled)",
    )
    a("--force", action="store_true", help="fuse runs again even if already fused alike")
    a("--timeout", type=positive_float, default=3600.0, help="seconds to wait for each fused run")
    a(
        "--fused-data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write fused frames as HDF5 here (every worker must reach it, Tiled read it) "
        "instead of inline in the events",
    )


def run(args: argparse.Namespace) -> dict:
    from ..app import RunSelection, calibration_from_tiled, epoch_seconds, reprocess, resolve_model
    from ..calibration import load_record
    from ..core import ConfigError
    from ._tiled import connect

    if args.calibration is None and args.calibration_uid is None:
        raise ConfigError("reprocess needs --calibration RECORD or --calibration-uid UID")
    client = connect(args.tiled_uri)
    if args.calibration is not None:
        calibration = load_record(args.calibration)
    else:
        calibration = calibration_from_tiled(client, args.calibration_uid)
    selection = RunSelection(
        uids=tuple(args.uid or ()),
        plan_name=args.plan_name,
        sample=args.sample,
        since=None if args.since is None else epoch_seconds(args.since),
        until=None if args.until is None else epoch_seconds(args.until),
    )
    report = reprocess(
        client,
        args.tiled_uri,
        selection,
        resolve_model(args.model_file),
        calibration,
        scheduler=args.scheduler,
        workers=args.workers,
        force=args.force,
        traverse_mode=args.traverse_mode,
        device=args.device,
        precision=args.precision,
        timeout=args.timeout,
        split_windows=args.split_windows,
        data_roots=args.data_root or (),
        progress=not args.quiet,
        fused_data_dir=str(args.fused_data_dir.expanduser().resolve())
        if args.fused_data_dir
        else None,
    )
    return {**report.summary(), "calibration_uid": calibration.uid}
