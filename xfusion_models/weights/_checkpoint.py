"""Checkpoint files: BasicSR-style dicts read with ``weights_only=True`` and checked key by key.

A file this package writes is ``{"params": state_dict, "arch", "preset", "config",
"format", ...extra}``. Files from the original XFusion (BasicSR) hold ``params`` (EDVR)
or ``params_ema`` (Swin), often with DataParallel's ``module.`` prefix; both load here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "FORMAT",
    "ORIGINAL_KEY_RENAMES",
    "file_sha256",
    "read_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_original_checkpoint",
    "load_state_from",
]

FORMAT = "xfusion_models/1"
_STATE_KEYS = {"edvr_stf": ("params", "params_ema"), "swin_xvr": ("params_ema", "params")}
#: Buffers the original saved that this package recomputes instead of storing.
_DROPPED = re.compile(r"(relative_position_index|attn_mask)$")
#: Regex renames from original XFusion key names to ours. Module names here follow the
#: original EDVRSTF (BasicSR's EDVR plus ``conv_first_hi``, ``conv1_hi``, ``conv2_hi`` for
#: the HR branch) and SwinIR, so only the HR branch, shared by both archs, is renamed.
_HR_BRANCH_RENAMES = [
    (r"^conv_first_hi\.", "hr_branch.conv1."),
    (r"^conv1_hi\.", "hr_branch.conv2."),
    (r"^conv2_hi\.", "hr_branch.conv3."),
]
ORIGINAL_KEY_RENAMES: dict[str, list[tuple[str, str]]] = {
    "edvr_stf": _HR_BRANCH_RENAMES,
    "swin_xvr": _HR_BRANCH_RENAMES,
}


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unreadable, tampered, or for another model."""


def _first(items: list[Any], n: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_plain(value: Any, where: str) -> None:
    """Only types ``torch.load(weights_only=True)`` reads back may go into a checkpoint."""
    if value is None or isinstance(value, (str, int, float, bool, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be str, got {type(k).__name__}")
            _check_plain(v, f"{where}.{k}")
        return
    raise TypeError(f"{where}: {type(value).__name__} is not a plain type a checkpoint may hold")


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None
) -> str:
    """Write ``model`` as a BasicSR-style checkpoint (atomically); returns its sha256."""
    arch = getattr(model, "arch", None)
    if arch not in _STATE_KEYS:
        raise TypeError(f"save_checkpoint needs an xfusion_models arch, got {type(model).__name__}")
    payload: dict[str, Any] = dict(extra or {})
    _check_plain(payload, "extra")
    clash = sorted({"params", "params_ema", "arch", "preset", "config", "format"} & set(payload))
    if clash:
        raise ValueError(f"extra may not set reserved keys {clash}")
    payload.update(
        params={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        arch=arch,
        preset=getattr(model, "preset", None),
        config=dict(model.config),  # type: ignore[arg-type]
        format=FORMAT,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return file_sha256(path)


def read_checkpoint(path: str | os.PathLike[str], *, sha256: str | None = None) -> dict[str, Any]:
    """Read a checkpoint dict safely (no pickle code runs), verifying sha256 when given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256.lower():
            raise CheckpointError(
                f"{path}: sha256 mismatch: expected {sha256.lower()}, file has {actual} "
                "(corrupt download or a different file)"
            )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        if type(exc).__name__ == "UnpicklingError":
            # torch's own text advises weights_only=False, i.e. running code from the file
            msg = (
                "not a checkpoint of tensors; files holding other Python objects are refused "
                "because loading them would run code from the file"
            )
        else:
            msg = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {msg})"
        ) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: checkpoint must be a dict, got {type(obj).__name__}")
    return obj


def _as_json(value: Any) -> Any:
    """Compare configs as JSON sees them (tuples and lists alike, 2 == 2.0)."""
    return json.loads(json.dumps(value, sort_keys=True))


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _select_state(obj: dict[str, Any], arch: str, key: str | None, path: Path) -> dict:
    if key is not None:
        if key not in obj:
            raise CheckpointError(f"{path}: no key {key!r}; top-level keys: {_first(list(obj))}")
        state = obj[key]
    else:
        found = [k for k in _STATE_KEYS[arch] if _is_state_dict(obj.get(k))]
        if found:
            state = obj[found[0]]
        elif _is_state_dict(obj):
            state = obj
        else:
            raise CheckpointError(
                f"{path}: no 'params' or 'params_ema' state dict; top-level keys: {_first(list(obj))}"
            )
    if not _is_state_dict(state):
        raise CheckpointError(f"{path}: {key or 'state'} is not a dict of name -> tensor")
    return state


def _original_keys(state: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    out = {}
    for name, value in state.items():
        while name.startswith("module."):
            name = name[len("module.") :]
        if _DROPPED.search(name):
            continue
        for pattern, repl in ORIGINAL_KEY_RENAMES[arch]:
            name = re.sub(pattern, repl, name)
        out[name] = value
    return out


def _check_keys(
    model: nn.Module, state: dict[str, torch.Tensor], path: Path, allow_missing: str | None = None
) -> None:
    full = model.state_dict()
    own = full
    if allow_missing:  # the module may be absent from the file, or whole in it
        own = {k: v for k, v in full.items() if not k.startswith(allow_missing + ".")}
        module = [k for k in full if k not in own]
        if any(k in state for k in module):
            own = full
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in full]
    if missing and len(missing) > len(own) // 2:
        raise CheckpointError(
            f"{path}: does not look like a {model.arch} checkpoint: {len(missing)} of "
            f"{len(own)} parameters missing (first: {_first(missing)}; "
            f"file has: {_first(list(state))})"
        )
    problems = []
    if missing:
        problems.append(f"missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_first(unexpected)}")
    shapes = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in full.items()
        if k in state and state[k].shape != v.shape
    ]
    if shapes:
        problems.append(f"shape mismatch: {_first(shapes)}")
    if problems:
        raise CheckpointError(f"{path}: does not fit {model.arch}: " + "; ".join(problems))


def _comparable_config(
    saved: dict[str, Any], model_cfg: dict[str, Any], allow_missing: str | None
) -> dict[str, Any]:
    """The model config to compare with the file's: keys of the allowed-missing module
    (e.g. ``hr_gate``, ``hr_gate_feat``) that the file lacks are left out."""
    if not allow_missing:
        return model_cfg
    return {k: v for k, v in model_cfg.items() if k in saved or not k.startswith(allow_missing)}


def load_state_from(
    model: nn.Module,
    obj: dict[str, Any],
    path: Path,
    *,
    key: str | None,
    original: bool,
    allow_missing_prefix: str | None = None,
) -> dict[str, Any]:
    """Load an already-read checkpoint dict into ``model``; returns the non-tensor metadata.

    ``allow_missing_prefix`` names one submodule (e.g. ``"hr_gate"``) that the file may
    lack, with its config keys: it keeps its fresh initialisation (fine-tuning a model
    with an added module from weights trained without it). Everything else stays strict.
    """
    arch = getattr(model, "arch", None)
    if arch not in _STATE_KEYS:
        raise TypeError(f"load needs an xfusion_models arch, got {type(model).__name__}")
    saved_arch = obj.get("arch")
    if isinstance(saved_arch, str) and saved_arch != arch:
        raise CheckpointError(
            f"{path}: wrong architecture: file holds {saved_arch}, model is {arch}"
        )
    saved_cfg = obj.get("config")
    model_cfg = dict(model.config)  # type: ignore[arg-type]
    if isinstance(saved_cfg, dict):
        model_cfg = _comparable_config(saved_cfg, model_cfg, allow_missing_prefix)
    if isinstance(saved_cfg, dict) and _as_json(saved_cfg) != _as_json(model_cfg):
        raise CheckpointError(f"{path}: {arch} config differs: file {saved_cfg}, model {model_cfg}")
    state = _select_state(obj, arch, key, path)
    state = _original_keys(state, arch) if original or saved_arch is None else state
    _check_keys(model, state, path, allow_missing_prefix)
    if allow_missing_prefix:
        own = model.state_dict()
        state = {
            **{k: v for k, v in own.items() if k.startswith(allow_missing_prefix + ".")},
            **state,
        }
    model.load_state_dict(state, strict=True)
    return {k: v for k, v in obj.items() if not _is_state_dict(v)}


def load_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    key: str | None = None,
    allow_missing_prefix: str | None = None,
) -> dict[str, Any]:
    """Load weights into ``model`` in place; returns the checkpoint's metadata.

    ``key`` picks the state dict (default: ``params``, or ``params_ema`` first for Swin).
    Files without this package's metadata are treated as original BasicSR checkpoints.
    ``allow_missing_prefix`` (e.g. ``"hr_gate"``): that submodule may be absent from the
    file and keeps its initialisation; see :func:`load_state_from`.
    """
    path = Path(path)
    obj = read_checkpoint(path, sha256=sha256)
    return load_state_from(
        model, obj, path, key=key, original=False, allow_missing_prefix=allow_missing_prefix
    )


def load_original_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Load an original XFusion/BasicSR checkpoint (``module.`` prefixes, renamed keys)."""
    path = Path(path)
    obj = read_checkpoint(path, sha256=sha256)
    return load_state_from(model, obj, path, key=key, original=True)
