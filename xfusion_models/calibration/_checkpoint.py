"""Flow-net checkpoints: a plain dict of tensors and config, read with weights_only."""

from __future__ import annotations

from pathlib import Path

import torch

from ._flow import CalibrationFlowNet

__all__ = ["load_flow_weights", "save_flow_weights"]


def save_flow_weights(net: CalibrationFlowNet, path: str | Path, *, extra: dict | None = None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "arch": net.arch,
        "config": dict(net.config),
        "params": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        **(extra or {}),
    }
    torch.save(payload, path)
    return path


def load_flow_weights(net: CalibrationFlowNet, path: str | Path, *, strict: bool = True) -> dict:
    """Load into ``net``; ``strict=False`` takes the matching tensors only (a warm start)."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "params" not in payload:
        raise ValueError(f"{path}: not a calibration flow checkpoint (no 'params')")
    if strict and payload.get("arch") != net.arch:
        raise ValueError(f"{path}: arch {payload.get('arch')!r} is not {net.arch!r}")
    state = payload["params"]
    if not strict:
        own = net.state_dict()
        state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(state, strict=strict)
    return payload
