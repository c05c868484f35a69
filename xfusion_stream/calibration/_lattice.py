"""Integer lattice coordinates for grid squares.

The basis comes from the square nearest the image centre and its four neighbours
(as the original method does), then is refined by least squares over every square
whose lattice coordinate is unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import CalibrationError

__all__ = ["Lattice", "fit_lattice"]


@dataclass(frozen=True)
class Lattice:
    """``centres[k] ~= origin + basis @ coords[k]``; basis columns are a1 (~+x), a2 (~+y)."""

    origin: np.ndarray
    basis: np.ndarray
    coords: np.ndarray
    centres: np.ndarray

    @property
    def pitch_px(self) -> float:
        return float(np.mean(np.linalg.norm(self.basis, axis=0)))

    def lookup(self) -> dict[tuple[int, int], int]:
        return {(int(i), int(j)): k for k, (i, j) in enumerate(self.coords)}


def _centre_basis(centres: np.ndarray, centre: np.ndarray, camera: str) -> tuple[int, np.ndarray]:
    d_centre = np.linalg.norm(centres - centre, axis=1)
    origin_index = int(np.argmin(d_centre))
    offsets = centres - centres[origin_index]
    dist = np.linalg.norm(offsets, axis=1)
    dist[origin_index] = np.inf
    nearest = np.argsort(dist)[:4]
    if len(nearest) < 4 or not np.all(np.isfinite(dist[nearest])):
        raise CalibrationError(f"{camera}: the centre grid square has fewer than 4 neighbours")
    d4 = dist[nearest]
    if d4.max() > 1.3 * d4.min():
        raise CalibrationError(
            f"{camera}: the 4 neighbours of the centre square are not at one pitch "
            f"({d4.min():.1f}..{d4.max():.1f} px); squares missing near the centre?"
        )
    vectors = offsets[nearest]
    a1 = vectors[np.argmax(vectors[:, 0])]
    a2 = vectors[np.argmax(vectors[:, 1])]
    basis = np.column_stack([a1, a2])
    if abs(np.linalg.det(basis)) < 0.5 * d4.min() ** 2:
        raise CalibrationError(f"{camera}: neighbour vectors of the centre square are not a basis")
    return origin_index, basis


def fit_lattice(centres: np.ndarray, centre: np.ndarray, camera: str = "grid") -> Lattice:
    """Assign integer (i, j) lattice coordinates to ``centres`` (N, 2) around ``centre``."""
    origin_index, basis = _centre_basis(centres, np.asarray(centre, dtype=np.float64), camera)
    origin = centres[origin_index].copy()
    keep = np.ones(len(centres), dtype=bool)
    for _ in range(3):
        frac = np.linalg.solve(basis, (centres - origin).T).T
        coords = np.round(frac)
        keep = np.all(np.abs(frac - coords) < 0.25, axis=1)
        design = np.column_stack([np.ones(keep.sum()), coords[keep]])
        solution, *_ = np.linalg.lstsq(design, centres[keep], rcond=None)
        origin, basis = solution[0], solution[1:].T
    # Two squares claiming one lattice site: keep the one nearer its ideal position.
    coords = coords.astype(int)
    error = np.linalg.norm(centres - (origin + coords @ basis.T), axis=1)
    best: dict[tuple[int, int], int] = {}
    for k in np.flatnonzero(keep):
        key = (int(coords[k, 0]), int(coords[k, 1]))
        if key not in best or error[k] < error[best[key]]:
            best[key] = int(k)
    chosen = np.array(sorted(best.values()), dtype=int)
    return Lattice(origin=origin, basis=basis, coords=coords[chosen], centres=centres[chosen])
