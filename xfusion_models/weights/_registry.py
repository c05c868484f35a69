"""The weights registry: one ``<name>.json`` entry beside each ``<name>.pth`` file.

Adding a trained model is dropping the two files into this folder; nothing to edit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._validation import validation_problems
from ._checkpoint import CheckpointError

__all__ = ["WEIGHTS_DIR", "WeightsEntry", "list_weights", "get_weights", "default_weights"]

WEIGHTS_DIR = Path(__file__).resolve().parent


class WeightsEntry(BaseModel):
    """What a weights file is: architecture, hyper-parameters, how it was made, how good."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str
    arch: Literal["edvr_stf", "swin_xvr"]
    preset: str
    config: dict[str, Any]
    file: str
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    recipe: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    default: bool = False
    description: str = ""
    #: Folder the entry's JSON sits in; ``file`` is relative to it.
    root: Path | None = Field(default=None, exclude=True)

    @property
    def path(self) -> Path:
        """Absolute path of the weights file."""
        file = Path(self.file)
        if file.is_absolute() or self.root is None:
            return file
        return self.root / file

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> WeightsEntry:
        """Read one entry, naming the file and field when it is malformed."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: cannot read weights entry: {exc}") from exc
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: weights entry must be a JSON object")
        try:
            return cls(**data, root=path.resolve().parent)
        except ValidationError as exc:
            problems = validation_problems(exc)
            raise CheckpointError(f"{path}: invalid weights entry: {problems}") from exc
        except TypeError as exc:
            raise CheckpointError(f"{path}: invalid weights entry: {exc}") from exc

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write the entry (``root`` is implied by where the file goes)."""
        Path(path).write_text(json.dumps(self.model_dump(), indent=2, sort_keys=True) + "\n")


def _entries() -> dict[str, WeightsEntry]:
    entries = {}
    for json_path in sorted(WEIGHTS_DIR.glob("*.json")):
        entry = WeightsEntry.from_json(json_path)
        if entry.name != json_path.stem:
            raise CheckpointError(f"{json_path}: name {entry.name!r} must match the file name")
        entries[entry.name] = entry
    return entries


def list_weights() -> list[str]:
    """Names of the registered weights, sorted."""
    return list(_entries())


def get_weights(name: str) -> WeightsEntry:
    """The registry entry called ``name``."""
    entries = _entries()
    if name not in entries:
        raise CheckpointError(f"unknown weights {name!r}; registered: {sorted(entries) or 'none'}")
    return entries[name]


def default_weights() -> WeightsEntry | None:
    """The entry marked ``"default": true``, or ``None`` when none ships."""
    defaults = [e for e in _entries().values() if e.default]
    if len(defaults) > 1:
        names = [e.name for e in defaults]
        raise CheckpointError(f"{WEIGHTS_DIR}: several entries marked default: {names}")
    return defaults[0] if defaults else None
