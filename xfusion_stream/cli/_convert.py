"""Convert RGB frame folders (REDS layout ``<root>/<clip>/<frame>.png``) to gray.

Writes the gray frames under the same clip/frame names and a meta-info file
(``folder nframes (H,W,C)`` per clip) beside each output folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir-lo-convert", type=Path, help="LR RGB clip folders")
    parser.add_argument("--dir-hi-convert", type=Path, help="HR RGB clip folders")
    parser.add_argument("--out-dir-lo", type=Path, help="where gray LR clips go")
    parser.add_argument("--out-dir-hi", type=Path, help="where gray HR clips go")


def run(args: argparse.Namespace) -> dict:
    from xfusion_models.data import convert_to_gray, write_meta_info

    jobs = [
        ("lo", args.dir_lo_convert, args.out_dir_lo),
        ("hi", args.dir_hi_convert, args.out_dir_hi),
    ]
    jobs = [j for j in jobs if j[1] is not None or j[2] is not None]
    if not jobs:
        raise ConfigError("give --dir-lo-convert/--out-dir-lo and/or --dir-hi-convert/--out-dir-hi")
    result: dict = {}
    for label, source, target in jobs:
        if source is None or target is None:
            raise ConfigError(f"--dir-{label}-convert and --out-dir-{label} go together")
        try:
            entries = convert_to_gray(source, target, progress=not args.quiet)
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
        meta = Path(target).with_name(Path(target).name + "_meta_info.txt")
        write_meta_info(meta, entries)
        result[label] = {
            "out_dir": str(target),
            "meta_info": str(meta),
            "clips": len(entries),
            "frames": sum(e.nframes for e in entries),
        }
    return result
