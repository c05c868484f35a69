"""Shapes a fast event is drawn with, as patches of optical depth over small boxes.

A :class:`Patch` covers only the box around its shape, so an event costs box-sized
work however large the canvas; where its values are non-zero is the event's footprint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._features import _box

__all__ = ["Patch", "Point", "half_ellipsoid", "plateau", "polyline", "sphere"]

Point = tuple[float, float]


@dataclass(frozen=True)
class Patch:
    """Optical depth added over the box whose top-left canvas pixel is ``(r0, c0)``."""

    r0: int
    c0: int
    values: np.ndarray

    def add_to(self, depth: np.ndarray) -> None:
        rows, cols = self.values.shape
        depth[self.r0 : self.r0 + rows, self.c0 : self.c0 + cols] += self.values

    def mark(self, mask: np.ndarray, r_origin: int, c_origin: int) -> None:
        """Set ``mask`` where the patch is non-zero; ``mask[0, 0]`` is canvas ``(r_origin, c_origin)``."""
        rows, cols = self.values.shape
        r0, c0 = self.r0 - r_origin, self.c0 - c_origin
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + rows, mask.shape[0]), min(c0 + cols, mask.shape[1])
        if rr0 >= rr1 or cc0 >= cc1:
            return
        inside = self.values[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] != 0
        mask[rr0:rr1, cc0:cc1] |= inside


def _patch(box, values: np.ndarray) -> Patch | None:
    (r0, _), (c0, _) = box
    if not np.any(values):
        return None
    return Patch(r0, c0, values.astype(np.float32))


def sphere(shape: tuple[int, int], centre: Point, radius: float, amplitude: float) -> Patch | None:
    """A ball: ``amplitude`` times the chord through it (1 at the centre)."""
    cx, cy = centre
    if radius <= 0:
        return None
    box = _box(shape, cx, cy, radius + 1, radius + 1)
    if box is None:
        return None
    (r0, r1), (c0, c1) = box
    yy, xx = np.ogrid[r0:r1, c0:c1]
    rho2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / radius**2
    return _patch(box, amplitude * np.sqrt(np.clip(1.0 - rho2, 0.0, None)))


def half_ellipsoid(
    shape: tuple[int, int],
    opening: Point,
    angle: float,
    length: float,
    half_width: float,
    amplitude: float,
) -> Patch | None:
    """A cavity hanging from ``opening`` along ``angle``: half an ellipsoid (a keyhole)."""
    if length <= 0 or half_width <= 0:
        return None
    ux, uy = math.cos(angle), math.sin(angle)
    ox, oy = opening
    tip = (ox + ux * length, oy + uy * length)
    reach = half_width + 1
    half_w = abs(tip[0] - ox) / 2 + reach
    half_h = abs(tip[1] - oy) / 2 + reach
    box = _box(shape, (ox + tip[0]) / 2, (oy + tip[1]) / 2, half_w, half_h)
    if box is None:
        return None
    (r0, r1), (c0, c1) = box
    yy, xx = np.ogrid[r0:r1, c0:c1]
    along = (xx - ox) * ux + (yy - oy) * uy
    across = -(xx - ox) * uy + (yy - oy) * ux
    rho2 = (across / half_width) ** 2 + (along / length) ** 2
    chord = np.sqrt(np.clip(1.0 - rho2, 0.0, None)) * (along >= 0)
    return _patch(box, amplitude * chord)


def polyline(
    shape: tuple[int, int], points: tuple[Point, ...], half_width: float, amplitude: float
) -> Patch | None:
    """A thin tube along ``points`` (a crack): the chord of the nearest segment."""
    if len(points) < 2 or half_width <= 0:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    reach = half_width + 1
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    box = _box(shape, cx, cy, (max(xs) - min(xs)) / 2 + reach, (max(ys) - min(ys)) / 2 + reach)
    if box is None:
        return None
    (r0, r1), (c0, c1) = box
    yy, xx = np.ogrid[r0:r1, c0:c1]
    dist2 = np.full((r1 - r0, c1 - c0), np.inf)
    for (ax, ay), (bx, by) in zip(points[:-1], points[1:]):
        dx, dy = bx - ax, by - ay
        seg2 = max(dx * dx + dy * dy, 1e-12)
        s = np.clip(((xx - ax) * dx + (yy - ay) * dy) / seg2, 0.0, 1.0)
        dist2 = np.minimum(dist2, (xx - ax - s * dx) ** 2 + (yy - ay - s * dy) ** 2)
    return _patch(box, amplitude * np.sqrt(np.clip(1.0 - dist2 / half_width**2, 0.0, None)))


def plateau(
    shape: tuple[int, int],
    centre: Point,
    radii: tuple[float, float],
    angle: float,
    amplitude: float,
    edge: float = 1.5,
) -> Patch | None:
    """An ellipse of constant added depth with a soft rim ``edge`` px wide (a front)."""
    a, b = radii
    if min(a, b) <= 0:
        return None
    cx, cy = centre
    box = _box(shape, cx, cy, max(a, b) + edge + 1, max(a, b) + edge + 1)
    if box is None:
        return None
    (r0, r1), (c0, c1) = box
    yy, xx = np.ogrid[r0:r1, c0:c1]
    ux, uy = math.cos(angle), math.sin(angle)
    u = (xx - cx) * ux + (yy - cy) * uy
    v = -(xx - cx) * uy + (yy - cy) * ux
    # signed distance to the rim, in pixels along the mean radius
    dist = (1.0 - np.sqrt((u / a) ** 2 + (v / b) ** 2)) * min(a, b)
    return _patch(box, amplitude * np.clip(dist / edge + 0.5, 0.0, 1.0))
