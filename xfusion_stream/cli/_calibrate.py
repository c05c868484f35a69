"""Spatial calibration from a recorded G400 grid case (``--cal_dir``/``--cal_id``).

Writes the calibration record (JSON) and an overlay PNG of both cameras' grids after
registration, with the residual of every paired square drawn magnified.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._argtypes import positive_float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cal_dir", required=True, help="folder holding calibration cases")
    parser.add_argument("--cal_id", required=True, help="calibration case subfolder name")
    parser.add_argument(
        "--out", default=None, help="record file (default <cal_dir>/<cal_id>/calibration.json)"
    )
    parser.add_argument("--png", default=None, help="overlay PNG (default next to the record)")
    parser.add_argument(
        "--pitch-um", type=positive_float, default=62.0, help="grid pitch (G400: 62 um)"
    )
    parser.add_argument("--ratio", type=int, default=4, help="Phantom/Shimadzu pixel ratio")
    parser.add_argument(
        "--no-mirror", action="store_true", help="the Phantom is not mirrored left-right"
    )
    parser.add_argument(
        "--cal_model_file",
        default=None,
        help="accepted for the original's command line; the lattice pairing needs no model",
    )


def run(args: argparse.Namespace) -> dict:
    from ..calibration._overlay import write_overlay
    from ..calibration._spatial import calibrate_grid
    from ..core import CalibrationError, ConfigError
    from ..recorded import read_case, read_frame

    case_dir = Path(args.cal_dir) / args.cal_id
    if not case_dir.is_dir():
        raise ConfigError(f"{case_dir}: calibration case folder not found")
    case = read_case(case_dir)
    phantom = [read_frame(p) for p in case.phantom_frames]
    shimadzu = [read_frame(p) for p in case.shimadzu_frames]
    try:
        result = calibrate_grid(
            phantom,
            shimadzu,
            pitch_um=args.pitch_um,
            ratio=args.ratio,
            mirror=not args.no_mirror,
            source=str(case_dir.resolve()),
            progress=not args.quiet,
        )
    except CalibrationError as exc:  # which recording the grid could not be found in
        raise CalibrationError(f"{case_dir}: {exc}") from None
    record_path = Path(args.out) if args.out else case_dir / "calibration.json"
    result.record.save(record_path)
    png_path = Path(args.png) if args.png else record_path.with_suffix(".png")
    write_overlay(result, png_path)
    out = {"uid": result.record.uid, **result.report()}
    out.update(record=str(record_path), png=str(png_path))
    _remember(record_path.resolve(), out)
    if args.cal_model_file:
        out["note"] = "--cal_model_file ignored: squares are paired by lattice coordinates"
    return out


def _remember(record_path: Path, out: dict) -> None:
    """Note the record in xfusion.conf (if `xfusion init` made one) for `xfusion inference`;
    a damaged xfusion.conf is said in ``config_problem`` (the record itself is written)."""
    from ..core import ConfigError, read_config_if_any, update_config

    out["config_updated"] = False
    try:
        if read_config_if_any() is not None:
            update_config("calibrate", record=record_path)
            out["config_updated"] = True
    except ConfigError as exc:
        out["config_problem"] = f"{exc}; the record was not noted in it"
