"""Speed of this installation against this machine's own limit.

Without names, measures in one process (works from an installed package): the fused
forward's FLOP/s against a large matmul (``efficiency``), the caches against
recomputing every input (``streaming_speedup``, identical output checked), the live
path RunEngine -> fusion -> 0MQ + Tiled against the bare model on the same windows
(``pipeline_ratio``), where a fused frame's time goes (``stage_shares``), frames
stored as shipped (HDF5 + StreamResource/StreamDatum to Tiled) and inline in Tiled and
0MQ against h5py (``persistence``), bf16/fp16 against fp32 (``precision``) and kernel
against user time (``sys_over_user``), each beside its target. Names run scripts from
a checkout's ``benchmarks/`` folder instead and collect their JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ..core import ConfigError
from ._argtypes import positive_float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", help="benchmark scripts of a checkout to run instead (see --list)"
    )
    parser.add_argument(
        "--model", default=None, help="registry name or checkpoint (default: shipped)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--shape", type=int, nargs=2, default=(64, 96), metavar=("ROWS", "COLS"),
        help="Shimadzu frame size of the live burst",
    )  # fmt: skip
    parser.add_argument(
        "--frames", type=int, default=128, help="Shimadzu frames in the live burst (issue 15: 128)"
    )
    parser.add_argument(
        "--presets",
        nargs="*",
        default=["tiny", "small", "paper"],
        help="untrained presets for efficiency (paper: about 18 s on 2 CPU cores)",
    )
    parser.add_argument(
        "--no-full-sensor",
        action="store_true",
        help="skip the efficiency figure at the HPV-X2's 400x250 (slow on a CPU)",
    )
    parser.add_argument(
        "--persistence-frames", type=int, default=32, help="full-size fused frames persisted"
    )
    parser.add_argument(
        "--burst-frames", type=int, default=128, help="raw 400x250 frames persisted (one burst)"
    )
    parser.add_argument(
        "--full-burst", type=int, default=None, metavar="FRAMES",
        help="frames of the whole-burst figure at 400x250 with the shipped and paper-size "
        "models (default: 256 on a GPU, 0 = none on a CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch threads (default: all cores)"
    )
    parser.add_argument(
        "--opencv-threads", type=int, default=None, help="OpenCV threads (default: 1)"
    )
    parser.add_argument(
        "--partial", type=Path, default=None, metavar="FILE",
        help="after each step, write the figures so far to FILE as JSON (a run cut short "
        "keeps them; a failing step is named there with its error)",
    )  # fmt: skip
    parser.add_argument("--all", action="store_true", help="run every script of benchmarks/")
    parser.add_argument("--dir", type=Path, default=None, help="benchmarks folder of a checkout")
    parser.add_argument("--list", action="store_true", help="list the benchmark scripts and exit")
    parser.add_argument(
        "--timeout", type=positive_float, default=1800.0, help="seconds per benchmark script"
    )


def _folder(args: argparse.Namespace) -> Path:
    folder = args.dir or Path(__file__).resolve().parents[2] / "benchmarks"
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no benchmarks folder (run from a checkout or pass --dir)")
    return folder


def _last_json(text: str) -> object:
    """The last JSON document a script printed (one line, or an indented block)."""
    decoder = json.JSONDecoder()
    found: object = None
    for start in (i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")):
        try:
            found, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
    return found


def _script_name(name: str, available: list[str]) -> str:
    """``event_loop`` names ``bench_event_loop.py`` too: the prefix may be left out."""
    return name if name in available or f"bench_{name}" not in available else f"bench_{name}"


def _scripts(args: argparse.Namespace) -> dict:
    folder = _folder(args)
    available = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    if args.list:
        return {"benchmarks": available}
    names = available if args.all else [_script_name(n, available) for n in args.names]
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
        found = _last_json(proc.stdout)
        if proc.returncode != 0 or found is None:
            results[name] = {"error": (proc.stderr or proc.stdout)[-800:], "rc": proc.returncode}
            continue
        results[name] = found
    failed = sorted(n for n, r in results.items() if isinstance(r, dict) and "error" in r)
    if failed:
        raise ConfigError(f"benchmark(s) {failed} failed: {json.dumps(results)[:2000]}")
    return {"results": results}


def run(args: argparse.Namespace) -> dict:
    if args.names or args.all or args.list:
        return _scripts(args)
    from ..app import BenchSettings, run_benchmarks

    if args.frames < 24:  # two Phantom frames (20 Shimadzu frames apart) and a window
        raise ConfigError(f"--frames {args.frames}: need at least 24")
    if args.full_burst is not None and args.full_burst < 0:
        raise ConfigError(f"--full-burst {args.full_burst}: need 0 (none) or more frames")
    if args.persistence_frames < 1 or args.burst_frames < 1:
        raise ConfigError(
            f"--persistence-frames {args.persistence_frames}, --burst-frames "
            f"{args.burst_frames}: need at least 1 each"
        )
    if args.partial is not None and not args.partial.absolute().parent.is_dir():
        raise ConfigError(f"--partial {args.partial}: its folder does not exist")
    settings = BenchSettings(
        model=args.model,
        device=args.device,
        shape=tuple(args.shape),
        frames=args.frames,
        presets=tuple(args.presets),
        full_shape=None if args.no_full_sensor else (250, 400),
        persistence_frames=args.persistence_frames,
        burst_frames=args.burst_frames,
        full_burst_frames=args.full_burst,
        torch_threads=args.torch_threads,
        opencv_threads=args.opencv_threads,
        progress=not args.quiet,
        partial=args.partial,
    )
    return run_benchmarks(settings)
