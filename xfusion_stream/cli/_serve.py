"""`xfusion serve`: fuse raw documents from a bluesky 0MQ proxy and publish fused runs.

Start a proxy (``bluesky-0MQ-proxy --in-address tcp://127.0.0.1:5577 --out-address
tcp://127.0.0.1:5578``), let the RunEngine publish raw documents to its IN address with
prefix ``raw`` (safe msgpack format), and run this. Fused runs go back to the proxy's
IN address with prefix ``fused``, and into Tiled with ``--tiled-uri``. Nothing is
bound here; SIGINT/SIGTERM end it cleanly (open fused runs end with ``abort``).
"""

from __future__ import annotations

import argparse
import logging

from ..core import ConfigError, mask_secrets
from ._logging import command_handler


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--in-address",
        default="tcp://127.0.0.1:5577",
        help="the proxy's IN address, where publishers connect; fused runs go here",
    )
    parser.add_argument(
        "--out-address",
        default="tcp://127.0.0.1:5578",
        help="the proxy's OUT address, where subscribers connect; raw runs come from here",
    )
    parser.add_argument("--raw-prefix", default="raw", help="0MQ prefix of raw documents")
    parser.add_argument("--fused-prefix", default="fused", help="0MQ prefix of fused documents")
    parser.add_argument(
        "--calibration", required=True, metavar="RECORD", help="calibration record (JSON/YAML)"
    )
    parser.add_argument(
        "--model_file", default=None, help="checkpoint path or registry name (default: shipped)"
    )
    parser.add_argument(
        "--traverse_mode",
        choices=["continuous", "double"],
        default="continuous",
        help="continuous: a fused frame per Shimadzu frame; double: per Phantom frame, held out as truth",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="model precision"
    )
    parser.add_argument(
        "--torch-threads",
        type=_positive_int,
        default=None,
        help="CPU threads for inference (default: torch's; 1 when sharing few cores)",
    )
    parser.add_argument(
        "--queue-size", type=_positive_int, default=64, help="windows waiting for the model"
    )
    parser.add_argument(
        "--when-full",
        choices=["block", "skip"],
        default="block",
        help="queue full: hold the documents (block) or drop the window and record a gap",
    )
    parser.add_argument("--tiled-uri", default=None, help="also write fused runs to this Tiled")
    parser.add_argument(
        "--api-key", default=None, help="Tiled API key (default: $TILED_API_KEY if set)"
    )
    parser.add_argument(
        "--max-runs",
        type=_positive_int,
        default=None,
        help="exit after N raw runs (default: run forever)",
    )
    parser.add_argument(
        "--ready-file", default=None, help="write this file once subscribed (for scripts)"
    )


def _load_model(args: argparse.Namespace):
    from ..fusion import load_fusion_model

    try:
        return load_fusion_model(
            args.model_file or None, device=args.device, precision=args.precision
        )
    except ConfigError as exc:
        raise ConfigError(f"--model_file {args.model_file}: {exc}") from exc


def _tiled_client(args: argparse.Namespace):
    if not args.tiled_uri:
        return None
    from ._tiled import connect

    return connect(args.tiled_uri, api_key=args.api_key)


def _check_prefix(flag: str, text: str) -> bytes:
    if not text or " " in text:
        raise ConfigError(f"{flag} {text!r}: must be non-empty and contain no space")
    return text.encode()


def run(args: argparse.Namespace) -> dict:
    from ..app import FusionSession
    from ..calibration import load_record
    from ..fusion import FusionConfig
    from ..publishing import check_address, make_tiled_writer

    check_address(args.in_address, "--in-address")
    check_address(args.out_address, "--out-address")
    raw_prefix = _check_prefix("--raw-prefix", args.raw_prefix)
    fused_prefix = _check_prefix("--fused-prefix", args.fused_prefix)
    calibration = load_record(args.calibration)
    config = FusionConfig.model_validate(
        {
            "traverse_mode": args.traverse_mode,
            "queue_size": args.queue_size,
            "when_full": args.when_full,
        }
    )
    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    model = _load_model(args)
    client = _tiled_client(args)
    handler = command_handler("serve")
    log = logging.getLogger("xfusion_stream")
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    sinks = [make_tiled_writer(client)] if client is not None else []
    session = FusionSession(model, calibration, sinks, config)
    try:
        result = session.serve(
            args.out_address,
            args.in_address,
            raw_prefix=raw_prefix,
            fused_prefix=fused_prefix,
            max_runs=args.max_runs,
            ready_file=args.ready_file,
        )
    finally:
        log.removeHandler(handler)
        if client is not None:
            client.context.close()
    return {
        "model": model.metadata(),
        "calibration_uid": calibration.uid,
        "traverse_mode": args.traverse_mode,
        "tiled_uri": mask_secrets(args.tiled_uri) if args.tiled_uri else None,
        **result,
    }
