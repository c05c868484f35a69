"""The shared pieces of the human summaries: numbers and text cut to one line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Lines", "_SCALARS", "_generic", "_number", "_pairs", "_short"]

Lines = list[str]
_SCALARS = (str, int, float, bool, type(None))
_WIDTH = 100


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _short(value: Any) -> str:
    text = _number(value)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def _pairs(result: dict, keys: Iterable[str]) -> Lines:
    """``key: value`` for those of ``keys`` that are present and not None."""
    return [f"{k}: {_short(result[k])}" for k in keys if result.get(k) is not None]


def _generic(result: dict) -> Lines:
    """Scalars as they are; a nested dict or list as its size (``--json`` has them)."""
    lines = []
    for key, value in result.items():
        if key == "ok":
            continue
        if isinstance(value, _SCALARS):
            lines.append(f"{key}: {_short(value)}")
        elif isinstance(value, dict) and all(isinstance(v, _SCALARS) for v in value.values()):
            text = ", ".join(f"{k} {_number(v)}" for k, v in value.items())
            lines.append(f"{key}: {_short(text)}")
        elif isinstance(value, (dict, list, tuple)):
            lines.append(f"{key}: {len(value)} entries (--json shows them)")
    return lines
