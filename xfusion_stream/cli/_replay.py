"""Fuse a stored raw run from Tiled into a new fused run, through the live callback.

The calibration is a record file (``--calibration``) or the uid of a calibration
record stored in the same Tiled (``--calibration-uid``). The fused run is written
back to that Tiled, linked to the raw uid, and optionally published over 0MQ. The JSON
is the fused run's summary (``FusedRunResult.summary``: frames, exit status, the mean
residual against the Shimadzu frames ``shimadzu_residual`` ...).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._argtypes import positive_float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--tiled-uri",
        required=True,
        help="Tiled server or node URI (with ?api_key=... if needed), or profile:NAME",
    )
    a("--uid", required=True, help="uid of the raw run to fuse")
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
    a("--device", default="cpu", help="cpu, cuda or cuda:N")
    a("--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="model precision")
    a("--publish", default=None, help="0MQ proxy in-address to publish fused documents to")
    a("--out", type=Path, default=None, help="also write PNG/GIF/CSV products here")
    a(
        "--derived-uri",
        default=None,
        help="Tiled node for the fused run, e.g. a facility's .../api/v1/metadata/derived "
        "or profile:NAME (default: beside the raw run, in --tiled-uri)",
    )
    a(
        "--fused-data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the fused frames as HDF5 here (Tiled must be able to read it) "
        "instead of inline in the events",
    )
    a("--timeout", type=positive_float, default=3600.0, help="seconds to wait for the fused run")
    a(
        "--data-root",
        action="append",
        default=None,
        metavar="DIR",
        help="a folder the raw run's frame files may be read from directly; repeat for more "
        "(default: none, frames come from Tiled)",
    )
    a(
        "--overlay",
        choices=("residual",),
        default=None,
        help="residual: tint the GIF/MP4 fused frames where the Shimadzu frame does not "
        "support them (|residual| > 3 noise sigma)",
    )


def _calibration(args, client):
    from ..calibration import CalibrationRecord, load_record
    from ..core import ConfigError, load_config

    if args.calibration is not None:
        return load_record(args.calibration)
    if args.calibration_uid is None:
        raise ConfigError("replay needs --calibration RECORD or --calibration-uid UID")
    try:
        start = client[args.calibration_uid].metadata["start"]
    except KeyError:
        raise ConfigError(f"Tiled has no run {args.calibration_uid!r}") from None
    if "calibration" not in start:
        raise ConfigError(f"run {args.calibration_uid} holds no calibration record")
    return load_config(
        CalibrationRecord, start["calibration"], source=f"calibration run {args.calibration_uid}"
    )


def _raw_start(client):
    """The stored raw run's start document, for the progress bar's total."""

    def start(uid: str) -> dict | None:
        try:
            return dict(client[uid].metadata["start"])
        except (KeyError, TypeError):
            return None

    return start


def run(args: argparse.Namespace) -> dict:
    from ..app import FusionProgress, FusionSession
    from ..fusion import FusionConfig, load_fusion_model
    from ..publishing import make_publisher, make_tiled_writer
    from ._tiled import connect

    client = connect(args.tiled_uri)
    calibration = _calibration(args, client)
    model = load_fusion_model(args.model_file, device=args.device, precision=args.precision)
    bars = FusionProgress(_raw_start(client), enabled=not args.quiet)
    derived = connect(args.derived_uri, flag="--derived-uri") if args.derived_uri else None
    sinks = [make_tiled_writer(derived if derived is not None else client), bars]
    if args.publish:
        sinks.append(make_publisher(args.publish))
    writer = None
    if args.out is not None:
        from ..products import ProductWriter

        writer = ProductWriter(
            args.out,
            traverse_mode=args.traverse_mode,
            progress=False,  # the FusionProgress bar counts the frames
            overlay=args.overlay,
        )
    session = FusionSession(
        model,
        calibration,
        sinks,
        FusionConfig(
            traverse_mode=args.traverse_mode,
            fused_data_dir=str(args.fused_data_dir.expanduser().resolve())
            if args.fused_data_dir
            else None,
        ),
        on_frame=writer,
        data_roots=args.data_root,
    )
    try:
        fused = session.replay(client, args.uid, timeout=args.timeout)
    finally:
        session.close()
        bars.close()
    result = {**fused.summary(), "raw_uid": args.uid, "calibration_uid": calibration.uid}
    if not fused.ok:  # "ok": false and exit code 1 (cli._main)
        start = client[args.uid].metadata.get("start", {})
        if start.get("purpose") == "fused":
            why = f"it is itself a fused run (of raw run {start.get('raw_uid')}); {fused.problem}"
        else:
            why = str(fused.problem)
        result["error"] = f"replay of run {args.uid}: {why}"
    if writer is not None:
        result["products"] = writer.close()
    return result
