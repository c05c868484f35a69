"""Bounds on hyper-parameters read from files: a checkpoint's config of ``num_feat: 1e9``
asked the allocator for 36 GB before anything said what was wrong."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_BLOCKS", "MAX_CHANNELS", "check_bounds"]

#: Widest feature map and deepest stack a config may ask for (the paper presets: 64
#: channels and 10 reconstruction blocks; 192 channels and 18 Swin blocks).
MAX_CHANNELS = 512
MAX_BLOCKS = 100


def check_bounds(arch: str, bounds: dict[str, tuple[Any, float, float]]) -> None:
    """Raise ``ValueError`` naming the first hyper-parameter that is not a number (a
    whole one where the low bound is) within ``[low, high]``."""
    for name, (value, low, high) in bounds.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            whole = isinstance(low, int)
            kind_ok = isinstance(v, int) if whole else isinstance(v, (int, float))
            if isinstance(v, bool) or not kind_ok or not low <= v <= high:
                kind = "a whole number" if whole else "a number"
                where = f"{value!r} holds {v!r}, which" if v is not value else repr(v)
                raise ValueError(f"{arch} {name}: {where} is not {kind} in {low}..{high}")
