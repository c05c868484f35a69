"""Fast events: scene changes quicker than the Phantom samples, each with its truth mask.

The Phantom sees the scene once per period; whatever is born, dies, oscillates or flies
between two of its frames is recorded only by the Shimadzu. A fusion model that
interpolates the Phantom frames shows the wrong state there, so the scene engine makes
such events on request and says where they are: ``event_mask(tau)`` is the region an
event changes, its footprint at ``tau`` united with its footprints at the two
bracketing Phantom frames (so a ghost of the other state counts), dilated by
``MASK_DILATE_PX``. Events are drawn from their own random streams (one per kind), so
adding them never changes what the rest of a seeded scene looks like.

Kinds (``_event_kinds``): oscillating keyholes, spatter born and gone between Phantom
frames, collapsing bubbles, nucleating pores, fast ballistic particles (2-20 Phantom px
per Shimadzu frame), cracks and fronts that start mid-interval and grow, bodies that
fragment. Sizes and positions are fractions of the Phantom field.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import Field

from ..core import ConfigError, ConfigModel
from ._event_kinds import (
    Bubble,
    Crack,
    FastEvent,
    Fragmentation,
    Front,
    Keyhole,
    Particle,
    Pore,
    Spatter,
)

__all__ = [
    "FAST_EVENTS_HELP",
    "FAST_EVENT_PRESETS",
    "MASK_DILATE_PX",
    "EventField",
    "FastEvents",
    "draw_fast_events",
    "fast_event_mask",
    "fast_events_argument",
    "parse_fast_events",
]

MASK_DILATE_PX = 2


class FastEvents(ConfigModel):
    """How many fast events a scene holds.

    ``keyholes`` is a count (a keyhole lasts the whole recording); every other kind is a
    mean number of events starting per Phantom interval (rounded per scene, at random).
    """

    keyholes: int = Field(default=0, ge=0, le=8)
    spatter: float = Field(default=0.0, ge=0, le=20)
    bubbles: float = Field(default=0.0, ge=0, le=20)
    pores: float = Field(default=0.0, ge=0, le=20)
    particles: float = Field(default=0.0, ge=0, le=20)
    cracks: float = Field(default=0.0, ge=0, le=20)
    fronts: float = Field(default=0.0, ge=0, le=20)
    fragmentations: float = Field(default=0.0, ge=0, le=20)

    @property
    def empty(self) -> bool:
        return not any(getattr(self, name) for name in type(self).model_fields)


#: Named mixes for command lines: ``mixed`` has every kind in about every interval.
FAST_EVENT_PRESETS: dict[str, FastEvents | None] = {
    "none": None,
    "mixed": FastEvents(
        keyholes=1,
        spatter=1.0,
        bubbles=0.5,
        pores=0.5,
        particles=1.0,
        cracks=0.5,
        fronts=0.3,
        fragmentations=0.3,
    ),
    "dense": FastEvents(
        keyholes=2,
        spatter=2.0,
        bubbles=1.0,
        pores=1.0,
        particles=2.0,
        cracks=1.0,
        fronts=0.5,
        fragmentations=0.5,
    ),
}


def parse_fast_events(text: str) -> FastEvents | None:
    """``mixed``, ``spatter=2,particles=1`` or both (``mixed,cracks=1``); ``none`` -> None."""
    base: dict[str, float] = {}
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            continue
        if "=" not in token:
            if token not in FAST_EVENT_PRESETS:
                names = ", ".join(FAST_EVENT_PRESETS)
                raise ConfigError(f"fast events: unknown preset {token!r} (one of {names})")
            preset = FAST_EVENT_PRESETS[token]
            base |= preset.model_dump() if preset is not None else {}
            continue
        name, value = (part.strip() for part in token.split("=", 1))
        if name not in FastEvents.model_fields:
            kinds = ", ".join(FastEvents.model_fields)
            raise ConfigError(f"fast events: unknown kind {name!r} (one of {kinds})")
        try:
            base[name] = float(value)
        except ValueError:
            raise ConfigError(f"fast events: {name}: not a number: {value!r}") from None
    if "keyholes" in base:
        if base["keyholes"] != int(base["keyholes"]):
            raise ConfigError(f"fast events: keyholes: must be a whole number, got {text!r}")
        base["keyholes"] = int(base["keyholes"])
    config = FastEvents(**base)
    return None if config.empty else config


def fast_events_argument(text: str) -> FastEvents | None:
    """``parse_fast_events`` for argparse's ``type=``: errors become usage errors."""
    try:
        return parse_fast_events(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: what ``--fast-events`` says in a command's help
FAST_EVENTS_HELP = (
    "fast events, faster than the Phantom samples: a preset ("
    + ", ".join(FAST_EVENT_PRESETS)
    + ") and/or KIND=N pairs, comma-separated, e.g. 'mixed' or 'spatter=2,particles=1'; "
    "keyholes=N is a count, the other kinds ("
    + ", ".join(k for k in FastEvents.model_fields if k != "keyholes")
    + ") are per Phantom interval"
)


@dataclass(frozen=True)
class EventField:
    """Where events may happen: the Phantom field on the canvas, and the recording's span.

    ``x0, y0`` is the field's top-left canvas pixel; ``duration`` the last Shimadzu
    frame's time in Phantom periods; ``every`` Shimadzu frames per Phantom period.
    """

    canvas_shape: tuple[int, int]
    x0: float
    y0: float
    rows: int
    cols: int
    duration: float
    every: int

    @property
    def small(self) -> float:
        return float(min(self.rows, self.cols))

    def point(self, rng: np.random.Generator, lo: float = 0.1, hi: float = 0.9) -> tuple:
        return (
            self.x0 + rng.uniform(lo, hi) * self.cols,
            self.y0 + rng.uniform(lo, hi) * self.rows,
        )

    def size(self, rng: np.random.Generator, lo: float, hi: float, floor: float) -> float:
        """A length between ``lo`` and ``hi`` of the field's smaller side, at least ``floor`` px."""
        return max(float(rng.uniform(lo, hi)) * self.small, floor)

    def time(self, rng: np.random.Generator) -> float:
        """A time in the recording at least one Shimadzu frame from every Phantom frame."""
        margin = min(1.0 / self.every, 0.25)
        hi = max(self.duration, 2 * margin + 1e-6)
        for _ in range(100):
            t = float(rng.uniform(0.0, hi))
            if abs(t - round(t)) >= margin:
                return t
        return math.floor(t) + 0.5  # pragma: no cover - 100 misses in a row

    def shimadzu_speed(self, rng: np.random.Generator, lo: float, hi: float) -> float:
        """A speed drawn in px per Shimadzu frame, returned in px per Phantom period."""
        return float(rng.uniform(lo, hi)) * self.every

    def exit_time(self, velocity: tuple, radius: float) -> float:
        """How long (Phantom periods) a body at ``velocity`` surely takes to leave the canvas."""
        speed = max(math.hypot(*velocity), 1e-9)
        return (math.hypot(*self.canvas_shape) + 2 * radius) / speed


def _direction(angle: float) -> tuple[float, float]:
    return math.cos(angle), math.sin(angle)


def _keyhole(rng: np.random.Generator, f: EventField) -> FastEvent:
    mode = int(rng.integers(3))  # 0: depth oscillates, 1: width, 2: both
    x, _ = f.point(rng, 0.2, 0.8)
    return Keyhole(
        opening=(x, f.y0 + float(rng.uniform(0.1, 0.45)) * f.rows),
        angle=math.pi / 2 + float(rng.uniform(-0.35, 0.35)),
        length=f.size(rng, 0.15, 0.3, 6.0),
        half_width=f.size(rng, 0.03, 0.06, 2.0),
        period=float(rng.uniform(0.5, 4.0)),
        phase=float(rng.uniform(0, 2 * math.pi)),
        length_swing=float(rng.uniform(0.3, 0.5)) if mode != 1 else 0.0,
        width_swing=float(rng.uniform(0.3, 0.5)) if mode != 0 else 0.0,
        contrast=float(rng.uniform(0.2, 0.35)),
    )


def _spatter(rng: np.random.Generator, f: EventField) -> FastEvent:
    heading = float(rng.uniform(0, 2 * math.pi))
    velocities = []
    for _ in range(int(rng.integers(1, 4))):
        dx, dy = _direction(heading + float(rng.uniform(-0.6, 0.6)))
        speed = f.shimadzu_speed(rng, 1.0, 8.0)
        velocities.append((dx * speed, dy * speed))
    return Spatter(
        origin=f.point(rng),
        birth=f.time(rng),
        lifetime=float(rng.uniform(0.15, 0.85)),
        velocities=tuple(velocities),
        radius=f.size(rng, 0.012, 0.025, 1.5),
        contrast=float(rng.uniform(0.3, 0.6)),
    )


def _bubble(rng: np.random.Generator, f: EventField) -> FastEvent:
    return Bubble(
        centre=f.point(rng),
        radius=f.size(rng, 0.03, 0.07, 2.0),
        collapse=f.time(rng),
        duration=float(rng.uniform(0.1, 0.6)),
        contrast=float(rng.uniform(0.15, 0.3)),
    )


def _pore(rng: np.random.Generator, f: EventField) -> FastEvent:
    return Pore(
        centre=f.point(rng),
        radius=f.size(rng, 0.015, 0.04, 1.5),
        birth=f.time(rng),
        duration=float(rng.uniform(0.05, 0.4)),
        contrast=float(rng.uniform(0.15, 0.3)),
    )


def _particle(rng: np.random.Generator, f: EventField) -> FastEvent:
    dx, dy = _direction(float(rng.uniform(0, 2 * math.pi)))
    speed = f.shimadzu_speed(rng, 2.0, 20.0)
    start, velocity = f.point(rng), (dx * speed, dy * speed)
    radius = f.size(rng, 0.008, 0.02, 1.2)
    birth = f.time(rng)
    return Particle(
        start=start,
        velocity=velocity,
        birth=birth,
        death=birth + f.exit_time(velocity, radius),
        radius=radius,
        contrast=float(rng.uniform(0.4, 0.8)),
    )


def _crack(rng: np.random.Generator, f: EventField) -> FastEvent:
    n_segments = int(rng.integers(2, 6))
    step = f.size(rng, 0.2, 0.45, 8.0) / n_segments
    heading = float(rng.uniform(0, 2 * math.pi))
    path = [f.point(rng, 0.2, 0.8)]
    for _ in range(n_segments):
        heading += float(rng.uniform(-0.5, 0.5))
        dx, dy = _direction(heading)
        path.append((path[-1][0] + dx * step, path[-1][1] + dy * step))
    return Crack(
        path=tuple(path),
        start=f.time(rng),
        duration=float(rng.uniform(0.2, 1.5)),
        half_width=f.size(rng, 0.006, 0.012, 1.0),
        contrast=float(rng.uniform(0.2, 0.35)),
    )


def _front(rng: np.random.Generator, f: EventField) -> FastEvent:
    radius = f.size(rng, 0.12, 0.3, 5.0)
    return Front(
        centre=f.point(rng, 0.2, 0.8),
        radii=(radius, radius * float(rng.uniform(0.6, 1.0))),
        angle=float(rng.uniform(0, math.pi)),
        start=f.time(rng),
        duration=float(rng.uniform(0.3, 2.0)),
        contrast=float(rng.choice([-1.0, 1.0]) * rng.uniform(0.06, 0.12)),
    )


def _fragmentation(rng: np.random.Generator, f: EventField) -> FastEvent:
    centre, radius = f.point(rng, 0.25, 0.75), f.size(rng, 0.04, 0.08, 2.5)
    n = int(rng.integers(3, 7))
    angles = rng.uniform(0, 2 * math.pi) + 2 * math.pi * np.arange(n) / n
    velocities = []
    for angle in angles + rng.uniform(-0.3, 0.3, n):
        dx, dy = _direction(float(angle))
        speed = f.shimadzu_speed(rng, 2.0, 10.0)
        velocities.append((dx * speed, dy * speed))
    breakup = f.time(rng)
    slowest = min(velocities, key=lambda v: math.hypot(*v))
    return Fragmentation(
        centre=centre,
        radius=radius,
        breakup=breakup,
        velocities=tuple(velocities),
        end=breakup + f.exit_time(slowest, radius),
        contrast=float(rng.uniform(0.4, 0.7)),
    )


#: kind field -> how to draw one; the order fixes each kind's random stream.
_DRAW: dict[str, Callable[[np.random.Generator, EventField], FastEvent]] = {
    "keyholes": _keyhole,
    "spatter": _spatter,
    "bubbles": _bubble,
    "pores": _pore,
    "particles": _particle,
    "cracks": _crack,
    "fronts": _front,
    "fragmentations": _fragmentation,
}


def draw_fast_events(
    config: FastEvents | None, seed: Sequence[int], field: EventField
) -> list[FastEvent]:
    """The events of one scene; kind ``i`` draws from ``default_rng([*seed, i])``."""
    if config is None:
        return []
    events: list[FastEvent] = []
    for i, (name, draw) in enumerate(_DRAW.items()):
        amount = getattr(config, name)
        if not amount:
            continue
        rng = np.random.default_rng([*seed, i])
        if name == "keyholes":
            count = int(amount)
        else:  # unbiased rounding of the expected number over the recording
            count = int(math.floor(amount * field.duration + rng.uniform()))
        events += [draw(rng, field) for _ in range(count)]
    return events


def bracketing_phantom_times(tau: float) -> tuple[float, float]:
    """The nominal Phantom frame times at or around ``tau`` (equal on a Phantom frame)."""
    return float(math.floor(tau + 1e-9)), float(math.ceil(tau - 1e-9))


def fast_event_mask(events: Sequence[FastEvent], tau: float, field: EventField) -> np.ndarray:
    """Bool mask on the Phantom field of what ``events`` change around ``tau``.

    An event that does not change between the bracketing Phantom frames contributes
    nothing: it looks the same in them as at ``tau``.
    """
    m = MASK_DILATE_PX
    marked = np.zeros((field.rows + 2 * m, field.cols + 2 * m), dtype=bool)
    before, after = bracketing_phantom_times(tau)
    r_origin, c_origin = int(field.y0) - m, int(field.x0) - m
    for event in events:
        if not event.changing(before, after):
            continue
        for t in {tau, before, after}:
            for patch in event.patches(t, field.canvas_shape):
                patch.mark(marked, r_origin, c_origin)
    if not marked.any():
        return np.zeros((field.rows, field.cols), dtype=bool)
    kernel = (np.hypot(*np.mgrid[-m : m + 1, -m : m + 1]) <= m).astype(np.uint8)  # a disc
    grown = cv2.dilate(marked.astype(np.uint8), kernel) > 0
    return grown[m : m + field.rows, m : m + field.cols]
