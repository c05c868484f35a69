"""Entry point: one sub-module per subcommand, each with ``add_arguments`` and ``run``.

``run(args)`` returns a JSON-serialisable dict; ``--json`` prints it as one line,
otherwise it is printed as ``key: value`` lines. Exit codes: 0 success; 1 the command
ran but its result has ``"ok": false`` (with ``error`` saying why); 2 a user or input
error; 3 not implemented.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from ..core import XFusionError

# subcommand -> (module under xfusion_stream.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("_init", "write ~/xfusion.conf with the model and data type"),
    "convert": ("_convert", "convert REDS RGB frames to gray-scale training data"),
    "train": ("_train", "train a fusion model (EDVR-STF or SWIN-XVR)"),
    "train_calibration": ("_train_calibration", "train the calibration flow net"),
    "download": ("_download", "download and unpack test data"),
    "calibrate": ("_calibrate", "spatial calibration from G400 grid images"),
    "inference": ("_inference", "fuse a recorded (actual) or virtual experiment"),
    "demo": ("_demo", "simulate, calibrate, acquire and fuse live, end to end"),
    "simulate": ("_simulate", "write a simulated recorded experiment and calibration case"),
    "serve": ("_serve", "fuse raw documents from a 0MQ proxy and publish fused ones"),
    "replay": ("_replay", "fuse a stored raw run from Tiled into a new fused run"),
    "bench": ("_bench", "run the benchmarks and print JSON"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xfusion", description="Live spatiotemporal fusion for dual-camera radiography"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"{__package__}.{module_name}")
        p = sub.add_parser(name, help=help_text, description=module.__doc__)
        p.add_argument("--json", action="store_true", help="print a one-line JSON result")
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args._module.run(args)
    except XFusionError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"xfusion {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except NotImplementedError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": f"not implemented yet: {exc}"}))
        print(f"xfusion {args.command}: not implemented yet: {exc}", file=sys.stderr)
        return 3
    # a command that ran to the end but whose result is not a success (a fused run that
    # failed or fused nothing) says so with "ok": false and exit code 1
    result = {"ok": True, **(result or {})}
    ok = result["ok"] is True
    if not ok:
        why = result.get("error") or result.get("problem") or "the result is not ok"
        print(f"xfusion {args.command}: failed: {why}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for key, value in result.items():
            text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else value
            print(f"{key}: {text}")
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
