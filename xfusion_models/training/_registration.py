"""Turning a trained checkpoint into a registry entry (``<name>.pth`` + ``<name>.json``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

__all__ = ["register_weights"]


def register_weights(
    checkpoint: str | Path,
    name: str,
    *,
    folder: str | Path | None = None,
    recipe: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    default: bool = False,
    description: str = "",
):
    """Copy ``checkpoint`` to ``<folder>/<name>.pth`` and write its JSON entry beside it.

    Arch, preset and config come from the checkpoint itself, the sha256 from the copied
    file; ``folder`` defaults to the package's own weights folder.
    """
    from ..weights import WEIGHTS_DIR, WeightsEntry, file_sha256, read_checkpoint

    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    meta = read_checkpoint(checkpoint)
    missing = [k for k in ("arch", "preset", "config") if not meta.get(k)]
    if missing:
        raise ValueError(f"{checkpoint}: not written by save_checkpoint (no {missing})")
    target = folder / f"{name}.pth"
    if Path(checkpoint).resolve() != target.resolve():
        shutil.copyfile(checkpoint, target)
    entry = WeightsEntry(
        name=name,
        arch=meta["arch"],
        preset=meta["preset"],
        config=dict(meta["config"]),
        file=target.name,
        sha256=file_sha256(target),
        recipe=recipe or {},
        metrics=metrics or {},
        default=default,
        description=description,
        root=folder,
    )
    entry.to_json(folder / f"{name}.json")
    return entry
