"""``python -m xfusion_stream.publishing.listen``: count documents from a 0MQ proxy.

An independent subscriber (a stock bluesky RemoteDispatcher with the safe msgpack
deserializer) for checking that fused runs really leave the process that made them.
Prints the JSON summary and, with ``--out``, writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xfusion_stream.publishing.listen", description=__doc__
    )
    parser.add_argument(
        "--address",
        default="tcp://127.0.0.1:5578",
        help="the proxy's OUT address (where subscribers connect)",
    )
    parser.add_argument("--prefix", default="fused", help="0MQ prefix to keep (default: fused)")
    parser.add_argument("--out", default=None, help="write the JSON summary here")
    parser.add_argument(
        "--runs", type=int, default=1, help="exit after this many stop documents (0: never)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="exit after this many s")
    parser.add_argument(
        "--ready-file", default=None, help="touch this file once subscribed (for scripts)"
    )
    parser.add_argument(
        "--curve-keys",
        default=None,
        help="CURVE key directory (client.key_secret, server.key) for an authenticated proxy",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if " " in args.prefix:
        print("listen: --prefix may not contain a space", file=sys.stderr)
        return 2
    from ..core import XFusionError
    from ._curve import client_curve
    from ._listener import listen

    try:
        result = listen(
            args.address,
            args.prefix.encode(),
            runs=args.runs or None,
            timeout=args.timeout,
            ready_file=args.ready_file,
            out=args.out,
            curve=client_curve(args.curve_keys) if args.curve_keys else None,
        )
    except XFusionError as exc:
        print(f"listen: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 1 if result["timed_out"] else 0


if __name__ == "__main__":
    sys.exit(main())
