"""Run benchmark scripts from the checkout's ``benchmarks/`` folder and print their JSON.

Each script prints one JSON line; ``xfusion bench`` collects them under the script
names. Timing targets live there, never in tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ..core import ConfigError

DEFAULT = ("bench_fusion",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: {', '.join(DEFAULT)})"
    )
    parser.add_argument("--all", action="store_true", help="run every benchmarks/*.py")
    parser.add_argument("--dir", type=Path, default=None, help="benchmarks folder")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds per benchmark script"
    )


def _folder(args: argparse.Namespace) -> Path:
    folder = args.dir or Path(__file__).resolve().parents[2] / "benchmarks"
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no benchmarks folder (run from a checkout or pass --dir)")
    return folder


def run(args: argparse.Namespace) -> dict:
    folder = _folder(args)
    available = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    if args.list:
        return {"benchmarks": available}
    names = available if args.all else (args.names or list(DEFAULT))
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {unknown}; available: {available}")
    results: dict[str, object] = {}
    for name in names:
        proc = subprocess.run(
            [sys.executable, str(folder / f"{name}.py")],
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            results[name] = {"error": (proc.stderr or proc.stdout)[-800:], "rc": proc.returncode}
            continue
        results[name] = json.loads(lines[-1])
    return {"results": results}
