"""Moving features drawn over the sample: a droplet in flight and a growing jet.

Both add x-ray absorption (optical depth) inside their bounding box only, so a frame
costs a few small array operations however large the canvas is. Positions are in
canvas pixels, time ``tau`` in Phantom frame periods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Droplet", "Jet", "random_features"]


@dataclass(frozen=True)
class Droplet:
    """A sphere on a ballistic path: ``centre(tau) = start + velocity*tau + accel*tau^2/2``."""

    start: tuple[float, float]
    velocity: tuple[float, float]
    accel: tuple[float, float]
    radius: float
    depth: float

    def centre(self, tau: float) -> tuple[float, float]:
        x = self.start[0] + self.velocity[0] * tau + 0.5 * self.accel[0] * tau * tau
        y = self.start[1] + self.velocity[1] * tau + 0.5 * self.accel[1] * tau * tau
        return x, y

    def add_depth(self, depth: np.ndarray, tau: float) -> None:
        """Add the sphere's optical depth (chord length through it) into ``depth``."""
        cx, cy = self.centre(tau)
        box = _box(depth.shape, cx, cy, self.radius + 1, self.radius + 1)
        if box is None:
            return
        (r0, r1), (c0, c1) = box
        yy, xx = np.ogrid[r0:r1, c0:c1]
        rho2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / self.radius**2
        chord = np.sqrt(np.clip(1.0 - rho2, 0.0, None))
        depth[r0:r1, c0:c1] += (self.depth * chord).astype(depth.dtype)


@dataclass(frozen=True)
class Jet:
    """A liquid jet leaving a nozzle; its rounded front advances at ``speed`` px/period."""

    nozzle: tuple[float, float]
    angle_rad: float
    length0: float
    speed: float
    half_width: float
    depth: float

    def length(self, tau: float) -> float:
        return max(self.length0 + self.speed * tau, 0.0)

    def add_depth(self, depth: np.ndarray, tau: float) -> None:
        """Add the jet's optical depth: a cylinder of growing length with a round cap."""
        length = self.length(tau)
        ux, uy = np.cos(self.angle_rad), np.sin(self.angle_rad)
        nx0, ny0 = self.nozzle
        fx, fy = nx0 + ux * length, ny0 + uy * length
        w = self.half_width + 1
        cx, cy = (nx0 + fx) / 2, (ny0 + fy) / 2
        box = _box(depth.shape, cx, cy, abs(fx - nx0) / 2 + w, abs(fy - ny0) / 2 + w)
        if box is None:
            return
        (r0, r1), (c0, c1) = box
        yy, xx = np.ogrid[r0:r1, c0:c1]
        along = (xx - nx0) * ux + (yy - ny0) * uy
        across = -(xx - nx0) * uy + (yy - ny0) * ux
        along_in_body = np.clip(along, 0.0, length)
        # distance to the segment nozzle->front, but the nozzle end is open (no cap)
        dist2 = (along - along_in_body) ** 2 * (along > length) + across**2
        chord = np.sqrt(np.clip(1.0 - dist2 / self.half_width**2, 0.0, None))
        chord = chord * (along >= 0)
        depth[r0:r1, c0:c1] += (self.depth * chord).astype(depth.dtype)


def random_features(
    shape: tuple[int, int], rng: np.random.Generator, speed_px: float
) -> list[Droplet | Jet]:
    """One jet from the left or top edge and one droplet crossing the field, seeded."""
    rows, cols = shape
    small = float(min(rows, cols))
    from_left = bool(rng.integers(2))
    if from_left:
        nozzle = (-2.0, rng.uniform(0.3, 0.7) * rows)
        angle = rng.uniform(-0.15, 0.15)
    else:
        nozzle = (rng.uniform(0.3, 0.7) * cols, -2.0)
        angle = np.pi / 2 + rng.uniform(-0.15, 0.15)
    jet = Jet(
        nozzle=nozzle,
        angle_rad=float(angle),
        length0=0.15 * (cols if from_left else rows),
        speed=1.5 * speed_px * rng.uniform(0.8, 1.2),
        half_width=0.025 * small,
        depth=0.7,
    )
    # the droplet crosses the other half of the field, roughly perpendicular to the jet
    direction = np.array([np.cos(angle + np.pi / 2), np.sin(angle + np.pi / 2)])
    if rng.integers(2):
        direction = -direction
    start_centre = np.array([cols / 2, rows / 2]) - direction * 0.25 * small
    offset = np.array([np.cos(angle), np.sin(angle)]) * rng.uniform(0.15, 0.3) * small
    start = start_centre + offset
    velocity = direction * speed_px * rng.uniform(0.8, 1.2)
    accel = np.array([0.0, 0.02 * speed_px])
    droplet = Droplet(
        start=(float(start[0]), float(start[1])),
        velocity=(float(velocity[0]), float(velocity[1])),
        accel=(float(accel[0]), float(accel[1])),
        radius=0.04 * small,
        depth=0.9,
    )
    return [jet, droplet]


def _box(
    shape: tuple[int, ...], cx: float, cy: float, half_w: float, half_h: float
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Integer (rows, cols) bounds of a box around (cx, cy) clipped to ``shape``; None if empty."""
    r0 = max(int(np.floor(cy - half_h)), 0)
    r1 = min(int(np.ceil(cy + half_h)) + 1, shape[0])
    c0 = max(int(np.floor(cx - half_w)), 0)
    c1 = min(int(np.ceil(cx + half_w)) + 1, shape[1])
    if r0 >= r1 or c0 >= c1:
        return None
    return (r0, r1), (c0, c1)
