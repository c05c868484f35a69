"""Train the calibration flow net on virtual pairs (images + known misregistration).

Loss = flow error + the fusion model's reconstruction error on flow-registered inputs
when ``--evaluator_weights`` names a fusion checkpoint. ``--flow_weights`` warm-starts
from matching tensors; ``--full_weights`` resumes a whole calibration checkpoint
(pass ``None`` for either, as the original's command line does).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._argtypes import positive_float


def _optional(value: str | None) -> str | None:
    return None if value in (None, "", "None", "none") else value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image_root", required=True, help="folder of training images")
    parser.add_argument("--meta_info_file", default=None, help="image list (first column)")
    parser.add_argument("--evaluator_weights", default=None, help="fusion model checkpoint")
    parser.add_argument("--flow_weights", default=None, help="warm start (matching tensors)")
    parser.add_argument("--full_weights", default=None, help="resume a calibration checkpoint")
    parser.add_argument("--iters", type=int, default=1000, help="training steps")
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per step")
    parser.add_argument("--crop", type=int, default=64, help="HR crop size (multiple of 16)")
    parser.add_argument("--lr", type=positive_float, default=1e-4, help="learning rate")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", default="calibration_flow.pth", help="checkpoint to write")


def run(args: argparse.Namespace) -> dict:
    import torch

    from xfusion_models.calibration import (
        CalibrationFlowNet,
        VirtualPairs,
        list_images,
        load_flow_weights,
        save_flow_weights,
        train_flow,
    )

    from ..core import ConfigError

    if args.iters < 1 or args.crop % 16:
        raise ConfigError("--iters must be >= 1 and --crop a multiple of 16")
    torch.manual_seed(args.seed)
    try:
        images = list_images(args.image_root, _optional(args.meta_info_file))
        pairs = VirtualPairs(images, crop=args.crop, seed=args.seed)
        net = CalibrationFlowNet()
        if _optional(args.full_weights):
            load_flow_weights(net, args.full_weights, strict=True)
        elif _optional(args.flow_weights):
            load_flow_weights(net, args.flow_weights, strict=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(str(exc)) from exc
    evaluator = None
    if _optional(args.evaluator_weights):
        from xfusion_models import build_model

        try:
            evaluator = build_model(args.evaluator_weights)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{args.evaluator_weights}: {exc}") from exc
    history = train_flow(
        net,
        pairs,
        args.iters,
        batch_size=args.batch_size,
        lr=args.lr,
        evaluator=evaluator,
        progress=not args.quiet,
    )
    out = save_flow_weights(net, Path(args.out), extra={"iters": args.iters})
    return {
        "checkpoint": str(out),
        "iters": args.iters,
        "n_images": len(images),
        "first_loss": history[0],
        "last_loss": history[-1],
        "evaluator": bool(evaluator),
    }
