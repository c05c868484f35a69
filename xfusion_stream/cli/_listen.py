"""`xfusion listen`: print fused runs as they arrive from a bluesky 0MQ proxy.

The third of the three processes (README, "Three processes"): subscribes at the proxy's
OUT address (``--profile``: its ``zmq.raw_out``) to documents with prefix ``fused``
and prints a line when a fused run starts, a progress bar on stderr while its frames
arrive (``--every N``: also a line per N frames), and a line when it stops (frames,
gaps, mean ``shimadzu_residual``). With ``--json`` every document summary is one JSON
line, then the result. Binds nothing; SIGINT/SIGTERM end it.
"""

from __future__ import annotations

import argparse

from ..core import ConfigError
from ._argtypes import non_negative_int, positive_float

_OUT = "tcp://127.0.0.1:5578"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--profile",
        default=None,
        help="beamline profile (a shipped name such as sim, or a YAML path) whose "
        "zmq.raw_out is the address (default: none)",
    )
    a(
        "--address",
        default=None,
        help=f"the proxy's OUT address, where subscribers connect (default: the profile's "
        f"zmq.raw_out, else {_OUT})",
    )
    a("--prefix", default="fused", help="0MQ prefix of the documents to print")
    a(
        "--max-runs",
        type=non_negative_int,
        default=0,
        help="exit after N fused runs stopped (default: 0, run until SIGINT/SIGTERM)",
    )
    a(
        "--timeout",
        type=positive_float,
        default=None,
        help="exit after this many seconds (default: never)",
    )
    a(
        "--every",
        type=non_negative_int,
        default=0,
        help="also print a line per N fused frames (default: 0, only the progress bar)",
    )
    a("--ready-file", default=None, help="write this file once subscribed (for scripts)")


def _address(args: argparse.Namespace) -> str:
    if args.address:
        return str(args.address)
    if args.profile:
        from ..app import load_profile

        profile = load_profile(args.profile)
        if profile.zmq is None:
            raise ConfigError(f"--profile {args.profile}: the profile has no zmq: block")
        return profile.zmq.raw_out
    return _OUT


def run(args: argparse.Namespace) -> dict:
    from ..app import FusedRunPrinter, listen_fused, stdout_lines

    if not args.prefix or " " in args.prefix:
        raise ConfigError(f"--prefix {args.prefix!r}: must be non-empty and contain no space")
    printer = FusedRunPrinter(
        stdout_lines, as_json=args.json, every=args.every, progress=not args.quiet
    )
    result = listen_fused(
        _address(args),
        printer,
        prefix=args.prefix.encode(),
        max_runs=args.max_runs or None,
        timeout=args.timeout,
        ready_file=args.ready_file,
    )
    if args.max_runs and len(result["runs"]) < args.max_runs:
        why = "timed out" if result["timed_out"] else f"stopped by {result['signal']}"
        result["ok"] = False
        result["error"] = f"{why} after {len(result['runs'])} of {args.max_runs} fused runs"
    return result
