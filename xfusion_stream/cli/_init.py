"""Write ``xfusion.conf`` with the model family and the data type.

Run again whenever the model (EDVR-STF or SWIN-XVR) or the data type changes.
"""

from __future__ import annotations

import argparse
import configparser

from ..core import DATA_TYPES, MODEL_TYPES, write_config

_ARCH = {"EDVRModel": "edvr_stf", "SwinIRModel": "swin_xvr"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model_type",
        "--model-type",
        choices=MODEL_TYPES,
        default="EDVRModel",
        help="model family: EDVRModel (EDVR-STF) or SwinIRModel (SWIN-XVR)",
    )
    parser.add_argument(
        "--data_type",
        "--data-type",
        choices=DATA_TYPES,
        default="actual",
        help="actual (two recorded cameras) or virtual (synthesized from one)",
    )
    parser.add_argument(
        "--home", default=None, help="folder for xfusion.conf (default: ~, or $XFUSION_HOME)"
    )


def run(args: argparse.Namespace) -> dict:
    parser = configparser.ConfigParser(interpolation=None)  # as read_config reads it
    parser["general"] = {
        "model_type": args.model_type,
        "arch": _ARCH[args.model_type],
        "data_type": args.data_type,
    }
    for section in ("convert", "train", "train_calibration", "download", "calibrate", "inference"):
        parser.add_section(section)
    path = write_config(parser, args.home)
    return {"config": str(path), "model_type": args.model_type, "data_type": args.data_type}
