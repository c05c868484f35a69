"""The kinds of fast event: what each adds to the optical depth at time ``tau``.

An event renders as a few :class:`Patch` es (optical depth over a small box), so a
frame costs box-sized work however large the canvas, and the event's footprint at a
time is exactly where its patches are non-zero: the truth mask is derived from the
same rendering as the truth, never from a separate description. Voids (keyholes,
bubbles, pores, cracks) remove depth, solids (spatter, particles, fragments) add it.

``active`` is the time span over which an event changes the scene; outside it the
event looks the same at every time, so it cannot contradict a Phantom frame. Positions
are canvas pixels, times Phantom periods, speeds canvas pixels per Phantom period.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from ._event_shapes import Patch, Point, half_ellipsoid, plateau, polyline, sphere

__all__ = [
    "Bubble",
    "Crack",
    "FastEvent",
    "Fragmentation",
    "Front",
    "Keyhole",
    "Particle",
    "Pore",
    "Spatter",
]


def _alive(items: list[Patch | None]) -> list[Patch]:
    return [p for p in items if p is not None]


class FastEvent:
    """Base of every kind: ``patches(tau, shape)``, ``active`` and a JSON summary."""

    kind: ClassVar[str] = "event"

    @property
    def active(self) -> tuple[float, float]:
        raise NotImplementedError

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        raise NotImplementedError

    def changing(self, t0: float, t1: float) -> bool:
        """Whether the event changes the scene somewhere in ``[t0, t1]``."""
        start, end = self.active
        return t0 <= end and t1 >= start

    def summary(self) -> dict:
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class Keyhole(FastEvent):
    """A vapour depression whose depth and/or width oscillate with ``period``."""

    kind: ClassVar[str] = "keyhole"
    opening: Point
    angle: float
    length: float
    half_width: float
    period: float
    phase: float
    length_swing: float
    width_swing: float
    contrast: float

    @property
    def active(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        s = math.sin(2 * math.pi * tau / self.period + self.phase)
        length = self.length * (1 + self.length_swing * s)
        half_width = self.half_width * (1 + self.width_swing * s)
        return _alive(
            [half_ellipsoid(shape, self.opening, self.angle, length, half_width, -self.contrast)]
        )


@dataclass(frozen=True)
class Spatter(FastEvent):
    """Droplets ejected from ``origin`` at ``birth`` that vanish after ``lifetime``."""

    kind: ClassVar[str] = "spatter"
    origin: Point
    birth: float
    lifetime: float
    velocities: tuple[Point, ...]
    radius: float
    contrast: float

    @property
    def active(self) -> tuple[float, float]:
        return (self.birth, self.birth + self.lifetime)

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        if not self.birth <= tau < self.birth + self.lifetime:
            return []
        dt = tau - self.birth
        ox, oy = self.origin
        return _alive(
            [sphere(shape, (ox + vx * dt, oy + vy * dt), self.radius, self.contrast)
             for vx, vy in self.velocities]
        )  # fmt: skip


@dataclass(frozen=True)
class Bubble(FastEvent):
    """A gas bubble that collapses from ``collapse`` on, gone after ``duration``."""

    kind: ClassVar[str] = "bubble"
    centre: Point
    radius: float
    collapse: float
    duration: float
    contrast: float

    @property
    def active(self) -> tuple[float, float]:
        return (self.collapse, self.collapse + self.duration)

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        s = (tau - self.collapse) / self.duration
        if s >= 1:
            return []
        radius = self.radius * (1 - max(s, 0.0)) ** 0.4  # fast at the end, like Rayleigh
        return _alive([sphere(shape, self.centre, radius, -self.contrast)])


@dataclass(frozen=True)
class Pore(FastEvent):
    """A pore that nucleates at ``birth`` and grows to ``radius`` within ``duration``."""

    kind: ClassVar[str] = "pore"
    centre: Point
    radius: float
    birth: float
    duration: float
    contrast: float

    @property
    def active(self) -> tuple[float, float]:
        return (self.birth, self.birth + self.duration)

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        if tau < self.birth:
            return []
        s = min((tau - self.birth) / self.duration, 1.0)
        return _alive([sphere(shape, self.centre, self.radius * s**0.5, -self.contrast)])


@dataclass(frozen=True)
class Particle(FastEvent):
    """A fast ballistic particle from ``start`` at ``birth``; ``death``: it left the canvas."""

    kind: ClassVar[str] = "particle"
    start: Point
    velocity: Point
    birth: float
    death: float
    radius: float
    contrast: float

    @property
    def active(self) -> tuple[float, float]:
        return (self.birth, self.death)

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        if not self.birth <= tau <= self.death:
            return []
        dt = tau - self.birth
        centre = (self.start[0] + self.velocity[0] * dt, self.start[1] + self.velocity[1] * dt)
        return _alive([sphere(shape, centre, self.radius, self.contrast)])


@dataclass(frozen=True)
class Crack(FastEvent):
    """A crack whose tip runs along ``path`` from ``start``, reaching its end after ``duration``."""

    kind: ClassVar[str] = "crack"
    path: tuple[Point, ...]
    start: float
    duration: float
    half_width: float
    contrast: float

    @property
    def active(self) -> tuple[float, float]:
        return (self.start, self.start + self.duration)

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        if tau <= self.start:
            return []
        return _alive([polyline(shape, self._grown(tau), self.half_width, -self.contrast)])

    def _grown(self, tau: float) -> tuple[Point, ...]:
        """The path up to the tip at ``tau`` (arc length grows linearly in time)."""
        pts = np.asarray(self.path, dtype=np.float64)
        seg = np.hypot(*np.diff(pts, axis=0).T)
        left = float(seg.sum()) * min((tau - self.start) / self.duration, 1.0)
        out = [self.path[0]]
        for i, length in enumerate(seg):
            take = min(float(length), left)
            a, b = pts[i], pts[i + 1]
            tip = a + (b - a) * (take / max(float(length), 1e-12))
            out.append((float(tip[0]), float(tip[1])))
            left -= take
            if left <= 0:
                break
        return tuple(out)


@dataclass(frozen=True)
class Front(FastEvent):
    """A phase or density front spreading from ``centre`` from ``start`` for ``duration``."""

    kind: ClassVar[str] = "front"
    centre: Point
    radii: Point
    angle: float
    start: float
    duration: float
    contrast: float

    @property
    def active(self) -> tuple[float, float]:
        return (self.start, self.start + self.duration)

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        s = min((tau - self.start) / self.duration, 1.0)
        if s <= 0:
            return []
        radii = (self.radii[0] * s, self.radii[1] * s)
        return _alive([plateau(shape, self.centre, radii, self.angle, self.contrast)])


@dataclass(frozen=True)
class Fragmentation(FastEvent):
    """A body that breaks at ``breakup`` into pieces flying apart; ``end``: all left the canvas."""

    kind: ClassVar[str] = "fragmentation"
    centre: Point
    radius: float
    breakup: float
    velocities: tuple[Point, ...]
    end: float
    contrast: float

    @property
    def active(self) -> tuple[float, float]:
        return (self.breakup, self.end)

    def patches(self, tau: float, shape: tuple[int, int]) -> list[Patch]:
        if tau < self.breakup:
            return _alive([sphere(shape, self.centre, self.radius, self.contrast)])
        if tau > self.end:
            return []
        piece = self.radius * len(self.velocities) ** (-1 / 3)  # the volume is shared
        dt = tau - self.breakup
        out = []
        for vx, vy in self.velocities:
            speed = max(math.hypot(vx, vy), 1e-12)
            x = self.centre[0] + vx / speed * (self.radius - piece) + vx * dt
            y = self.centre[1] + vy / speed * (self.radius - piece) + vy * dt
            out.append(sphere(shape, (x, y), piece, self.contrast))
        return _alive(out)
