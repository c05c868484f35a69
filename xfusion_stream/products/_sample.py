"""An evenly spaced pick from a stream of frames whose length is not known yet.

A live run does not say how many fused frames it will give, but the GIF and the
montage want a few frames spread over all of them, and memory must stay bounded.
Keep every ``stride``-th frame; when more than twice the wanted number are held,
double the stride and drop the frames off the new grid. At most ``2 * capacity + 1``
items are ever held and the kept frames are always evenly spaced. When the total is
known in advance the stride starts right and no frame is built for nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["EvenSample"]

T = TypeVar("T")


class EvenSample(Generic[T]):
    """Hold an evenly spaced subset (by arrival order) of at most ~2x ``capacity`` items."""

    def __init__(self, capacity: int, total: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.stride = max(1, math.ceil(total / capacity)) if total else 1
        self.seen = 0
        self._items: list[tuple[int, T]] = []

    def offer(self, make: Callable[[], T]) -> bool:
        """Count one arrival; build and keep it (``make()``) only if it is on the grid."""
        n = self.seen
        self.seen += 1
        if n % self.stride:
            return False
        self._items.append((n, make()))
        if len(self._items) > 2 * self.capacity:
            self.stride *= 2
            self._items = [(k, v) for k, v in self._items if k % self.stride == 0]
        return True

    @property
    def held(self) -> int:
        return len(self._items)

    def picks(self) -> list[tuple[int, T]]:
        """Up to ``capacity`` (arrival number, item) pairs, evenly spread, first one included."""
        items = self._items
        if len(items) <= self.capacity:
            return list(items)
        if self.capacity == 1:
            return [items[0]]
        step = (len(items) - 1) / (self.capacity - 1)
        chosen = sorted({round(i * step) for i in range(self.capacity)})
        return [items[i] for i in chosen]
