"""Calibration flow net: registers the Shimadzu onto the Phantom (optional refinement)."""

from ..ops import warp  # re-exported for callers of the calibration API; defined in ops
from ._checkpoint import load_flow_weights, save_flow_weights
from ._flow import CalibrationFlowNet
from ._train import evaluator_loss, train_flow
from ._virtual_pairs import VirtualPairs, list_images, random_flow

__all__ = [
    "CalibrationFlowNet",
    "VirtualPairs",
    "evaluator_loss",
    "list_images",
    "load_flow_weights",
    "random_flow",
    "save_flow_weights",
    "train_flow",
    "warp",
]
