"""The fusion model as the pipeline holds it: network, identity, device and precision."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xfusion_models import StreamingFusionNet, file_sha256

from ..core import ConfigError, read_mapping

__all__ = ["FusionModel", "load_fusion_model"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class FusionModel:
    """A loaded network plus what a fused run must record about it."""

    net: StreamingFusionNet
    name: str
    arch: str
    sha256: str
    device: torch.device
    precision: str = "fp32"
    #: how another process loads the same weights (a registry name or an absolute
    #: checkpoint path); None when built some other way (``arch_opt``, by hand)
    source: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.net, StreamingFusionNet):
            missing = [
                name
                for name in ("num_feat", "needs_hr_frames", "encode_lr", "encode_hr", "fuse")
                if not hasattr(self.net, name)
            ]
            raise ConfigError(
                f"{type(self.net).__name__} is not a streaming fusion network "
                f"(xfusion_models.StreamingFusionNet); it lacks {', '.join(missing)}"
            )

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    def to_tensor(self, frames: list[np.ndarray]) -> torch.Tensor:
        """(N, 1, H, W) float32 on the model's device."""
        return torch.from_numpy(np.stack(frames)[:, None]).to(self.device)

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arch": self.arch,
            "sha256": self.sha256,
            "device": str(self.device),
            "precision": self.precision,
        }


def _arch_options(path: Path) -> dict[str, Any]:
    """The ``--arch-opt`` YAML: ``arch`` (edvr_stf | swin_xvr), ``preset``, overrides."""
    opts = read_mapping(path, what="architecture options file")
    if opts.get("arch") not in ("edvr_stf", "swin_xvr"):
        raise ConfigError(f"{path}: arch: must be 'edvr_stf' or 'swin_xvr'")
    return opts


def _original_model(path: Path, arch_opt: Path, dev: torch.device, precision: str) -> FusionModel:
    """An original XFusion/BasicSR checkpoint loaded into the network ``arch_opt`` builds."""
    import xfusion_models as xm

    opts = _arch_options(arch_opt)
    arch = opts.pop("arch")
    builder = xm.edvr_stf if arch == "edvr_stf" else xm.swin_xvr
    try:
        net = builder(opts.pop("preset", "paper"), **opts)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{arch_opt}: {exc}") from None
    if not path.exists():
        raise ConfigError(f"{path}: model file not found")
    try:
        xm.load_original_checkpoint(net, path)
    except xm.CheckpointError as exc:
        raise ConfigError(str(exc)) from exc
    return FusionModel(
        net=net.to(dev).eval(),
        name=path.stem,
        arch=arch,
        sha256=file_sha256(path),
        device=dev,
        precision=precision,
    )


def load_fusion_model(
    spec: str | os.PathLike | None = None,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    arch_opt: str | os.PathLike | None = None,
) -> FusionModel:
    """Shipped default (None), a registry name, or a checkpoint path -> ready model.

    ``arch_opt`` (a YAML with ``arch``, ``preset`` and hyper-parameter overrides) builds
    the network first and loads an original XFusion/BasicSR checkpoint into it.
    """
    import xfusion_models as xm

    if precision not in _DTYPES:
        raise ConfigError(f"precision {precision!r} is not one of {sorted(_DTYPES)}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as exc:  # "tpu:9", "cuda:-1", ...
        raise ConfigError(f"device {device!r}: {str(exc).splitlines()[0][:120]}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: only cpu and cuda[:N] run the fusion models")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but no CUDA device is available")
    if precision == "fp16" and dev.type == "cpu":
        raise ConfigError("fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    if arch_opt is not None:
        if spec is None:
            raise ConfigError("--arch-opt needs --model_file (the checkpoint to load)")
        return _original_model(Path(spec), Path(arch_opt), dev, precision)
    source: Any = spec
    if source is None:
        entry = xm.default_weights()
        if entry is None:
            raise ConfigError("no default model ships with this installation; pass --model_file")
        source = entry
    if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
        if isinstance(source, os.PathLike) or any(c in str(source) for c in "/\\."):
            raise ConfigError(f"{source}: model file not found")
        try:
            source = xm.get_weights(str(source))
        except xm.CheckpointError as exc:
            raise ConfigError(str(exc)) from exc
    arch: str
    if isinstance(source, xm.WeightsEntry):
        name, arch, sha = source.name, source.arch, source.sha256
        reload = source.name
    else:
        path = Path(source)
        if not path.is_file():  # a FIFO would block the digest for ever, a folder fail it
            raise ConfigError(f"{path}: model file is not a regular file")
        name, sha = path.stem, file_sha256(path)
        arch, reload = "", str(path.resolve())
    try:
        net = xm.build_model(source).to(dev).eval()
    except xm.CheckpointError as exc:
        raise ConfigError(str(exc)) from exc
    if not arch:
        arch = "edvr_stf" if type(net).__name__.lower().startswith("edvr") else "swin_xvr"
    return FusionModel(
        net=net,
        name=name,
        arch=arch,
        sha256=sha,
        device=dev,
        precision=precision,
        source=reload,
    )
