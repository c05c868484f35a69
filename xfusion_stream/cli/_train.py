"""Train a fusion model (EDVR-STF or SWIN-XVR) with the XFusion recipe.

Virtual data: LR/HR clip folders + meta-info files. Actual data: paired LR/HR folders,
plus ``--dataroot_context`` (every Shimadzu frame) and ``--meta_info_context`` (the
``clip,hr_index,lr_index`` CSV). Progress, metrics.csv, training.png and resumable
checkpoints go to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    required = [
        ("--dir-lo-train", "LR training clip folders"),
        ("--dir-hi-train", "HR training clip folders"),
        ("--dir-lo-val", "LR validation clip folders"),
        ("--dir-hi-val", "HR validation clip folders"),
        ("--opt", "training options YAML"),
        ("--path-train-meta-info-file", "training meta info"),
        ("--path-val-meta-info-file", "validation meta info"),
    ]
    for flag, help_text in required:
        parser.add_argument(flag, type=Path, required=True, help=help_text)
    parser.add_argument("--pretrain_network_g", type=Path, help="weights to start from")
    parser.add_argument("--dataroot_context", type=Path, help="actual data: full LR run")
    parser.add_argument("--meta_info_context", type=Path, help="actual data: index map CSV")
    parser.add_argument("--out", type=Path, default=Path("xfusion_train"), help="run folder")
    parser.add_argument(
        "--iters", type=int, help="override train.iters from the YAML (default: the YAML's)"
    )
    parser.add_argument(
        "--seed", type=int, help="override seed from the YAML (default: the YAML's)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from --out's state")


def run(args: argparse.Namespace) -> dict:
    from xfusion_models.training import TrainData, load_options, train

    if (args.dataroot_context is None) != (args.meta_info_context is None):
        raise ConfigError("--dataroot_context and --meta_info_context go together (actual data)")
    try:
        opt = load_options(args.opt)
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    if args.iters is not None:
        opt.train.iters = args.iters
    if args.seed is not None:
        opt.seed = args.seed
    data = TrainData(
        lr_train=args.dir_lo_train,
        hr_train=args.dir_hi_train,
        meta_train=args.path_train_meta_info_file,
        lr_val=args.dir_lo_val,
        hr_val=args.dir_hi_val,
        meta_val=args.path_val_meta_info_file,
        context_root=args.dataroot_context,
        index_map=args.meta_info_context,
    )
    try:
        summary = train(
            opt,
            data,
            args.out,
            resume=args.resume,
            pretrain=args.pretrain_network_g,
            progress=not args.quiet,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    return {"out": str(args.out), **summary}
