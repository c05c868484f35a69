"""Download test data (a zip over HTTP(S)) with progress, resume and integrity checks."""

from __future__ import annotations

import argparse

from ._argtypes import positive_float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir-inf", "--dir_inf", dest="dir_inf", required=True, help="URL of the archive"
    )
    parser.add_argument(
        "--out-dir-inf",
        "--out_dir_inf",
        dest="out_dir_inf",
        required=True,
        help="folder for the archive and its unpacked files",
    )
    parser.add_argument("--sha256", default=None, help="expected sha256 of the archive")
    parser.add_argument("--size", type=int, default=None, help="expected size in bytes")
    parser.add_argument("--no-extract", action="store_true", help="keep the archive packed")
    parser.add_argument(
        "--timeout", type=positive_float, default=60.0, help="network timeout in seconds"
    )


def run(args: argparse.Namespace) -> dict:
    from ..app import download

    result = download(
        args.dir_inf,
        args.out_dir_inf,
        sha256=args.sha256,
        size=args.size,
        extract=not args.no_extract,
        timeout=args.timeout,
        progress=not args.quiet,
    )
    return {
        "archive": str(result.archive),
        "size": result.size,
        "sha256": result.sha256,
        "resumed_from": result.resumed_from,
        "extracted_to": str(result.extracted_to) if result.extracted_to else None,
        "members": result.members,
    }
