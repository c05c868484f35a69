"""Public builders in torchvision style: a preset, optional weights, optional overrides."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, cast

from .archs import ARCHS, EDVRSTF, PRESETS, EDVRSTFConfig, SwinXVR, SwinXVRConfig
from .weights import CheckpointError, WeightsEntry, get_weights, list_weights
from .weights._checkpoint import load_state_from, read_checkpoint

__all__ = ["edvr_stf", "swin_xvr", "build_model", "WeightsSpec"]

WeightsSpec = WeightsEntry | str | os.PathLike | None
DEFAULT_PRESET = "small"
CONFIGS: dict[str, Any] = {"edvr_stf": EDVRSTFConfig, "swin_xvr": SwinXVRConfig}


def _resolve(weights: WeightsSpec) -> WeightsEntry | Path | None:
    """Registry name, entry JSON or checkpoint path -> an entry or a checkpoint path."""
    if weights is None or isinstance(weights, WeightsEntry):
        return weights
    if isinstance(weights, str) and weights in list_weights():
        return get_weights(weights)
    path = Path(weights)
    if path.suffix == ".json" and path.is_file():
        return WeightsEntry.from_json(path)
    if path.is_file():
        return path
    raise CheckpointError(
        f"weights {str(weights)!r} is neither a registered name ({list_weights() or 'none'}) "
        "nor an existing file"
    )


def _check_names(arch: str, overrides: dict) -> None:
    """A mistyped hyper-parameter (``num_feats``) is named, with the ones that exist."""
    known = {f.name for f in dataclasses.fields(CONFIGS[arch])}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {arch} hyper-parameter(s) {unknown}; known: {sorted(known)}")


def _config(arch: str, preset: str | None, base: dict[str, Any] | None, overrides: dict) -> dict:
    _check_names(arch, overrides)
    if base is None:
        name = preset or DEFAULT_PRESET
        if name not in PRESETS[arch]:
            raise ValueError(f"unknown {arch} preset {name!r}; known: {sorted(PRESETS[arch])}")
        return {**PRESETS[arch][name], **overrides}
    clash = {k: v for k, v in overrides.items() if base.get(k) != v}
    if clash:
        raise ValueError(f"overrides {clash} contradict the weights' config {base}")
    return dict(base)


def _build(
    arch: str, preset: str | None, weights: WeightsSpec, overrides: dict
) -> EDVRSTF | SwinXVR:
    source = _resolve(weights)
    obj = path = None
    base: dict[str, Any] | None = None
    saved_preset = None
    if isinstance(source, WeightsEntry):
        if source.arch != arch:
            raise CheckpointError(f"weights {source.name!r} are for {source.arch}, not {arch}")
        base, saved_preset, path = dict(source.config), source.preset, source.path
        obj = read_checkpoint(path, sha256=source.sha256)
    elif isinstance(source, Path):
        path, obj = source, read_checkpoint(source)
        saved_arch = obj.get("arch")
        if isinstance(saved_arch, str) and saved_arch != arch:
            raise CheckpointError(
                f"{path}: wrong architecture: file holds {saved_arch}, not {arch}"
            )
        if isinstance(obj.get("config"), dict):
            base, saved_preset = dict(obj["config"]), obj.get("preset")
    if preset is not None and saved_preset is not None and preset != saved_preset:
        raise ValueError(f"preset {preset!r} asked for, but the weights are {saved_preset!r}")
    try:
        model: Any = ARCHS[arch](**_config(arch, preset, base, overrides))
    except (TypeError, ValueError) as exc:
        if path is None or base is None:
            raise
        raise CheckpointError(f"{path}: its config does not build {arch}: {exc}") from None
    model.preset = saved_preset or preset or (DEFAULT_PRESET if base is None else None)
    if obj is not None and path is not None:
        load_state_from(model, obj, path, key=None, original=False)
    return model


def edvr_stf(
    preset: str | None = None, *, weights: WeightsSpec = None, **overrides: Any
) -> EDVRSTF:
    """EDVR-STF at ``preset`` (``paper``/``small``/``tiny``; default ``small``, or the
    weights' own preset), optionally loaded from ``weights`` (registry name, entry, path)."""
    return cast(EDVRSTF, _build("edvr_stf", preset, weights, overrides))


def swin_xvr(
    preset: str | None = None, *, weights: WeightsSpec = None, **overrides: Any
) -> SwinXVR:
    """SWIN-XVR, with the same arguments as :func:`edvr_stf`."""
    return cast(SwinXVR, _build("swin_xvr", preset, weights, overrides))


def build_model(spec: WeightsEntry | str | os.PathLike) -> EDVRSTF | SwinXVR:
    """A ready-to-run model (eval mode) from a registry name, entry, entry JSON or checkpoint."""
    source = _resolve(spec)
    if source is None:
        raise CheckpointError("build_model needs weights, got None")
    arch: Any
    if isinstance(source, WeightsEntry):
        arch = source.arch
    else:
        arch = read_checkpoint(source).get("arch")
        if arch not in ARCHS:
            raise CheckpointError(
                f"{source}: no arch metadata (an original BasicSR file?); build with "
                "edvr_stf(preset, weights=path) or swin_xvr(preset, weights=path)"
            )
    return _build(arch, None, source, {}).eval()
