"""Smooth nonrigid motion of the sample, evaluated at any time.

The displacement field is a uniform drift plus a few long-wavelength cosine modes whose
amplitudes oscillate slowly in time. It is evaluated on a coarse grid and upsampled, so
one full-resolution field costs a resize rather than a per-pixel trigonometric sum.
Time is measured in Phantom frame periods (``tau``) so that the configured speed reads
directly as "Phantom pixels moved between two consecutive Phantom frames".
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["NonrigidMotion"]

_COARSE_STEP = 16


class NonrigidMotion:
    """Displacement field ``d(x, y, tau)`` on a canvas of ``shape`` (rows, cols).

    ``speed_px`` is the typical local speed in pixels per Phantom period: a uniform
    drift of 0.6x plus ``n_modes`` standing waves each peaking at 0.6x, with independent
    slow time courses (measured over seeds: median ~0.75x, maximum ~1.5-2.3x).
    """

    def __init__(
        self,
        shape: tuple[int, int],
        rng: np.random.Generator,
        speed_px: float,
        n_modes: int = 4,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        rows, cols = self.shape
        self._coarse_shape = (rows // _COARSE_STEP + 2, cols // _COARSE_STEP + 2)
        cy = (np.arange(self._coarse_shape[0]) * _COARSE_STEP).astype(np.float64)
        cx = (np.arange(self._coarse_shape[1]) * _COARSE_STEP).astype(np.float64)
        gx, gy = np.meshgrid(cx, cy)
        size = float(max(rows, cols))

        drift_angle = rng.uniform(0, 2 * np.pi)
        self._drift = 0.6 * speed_px * np.array([np.cos(drift_angle), np.sin(drift_angle)])

        share = 0.6 * speed_px
        self._omega = rng.uniform(0.12, 0.35, n_modes)
        self._psi = rng.uniform(0, 2 * np.pi, n_modes)
        self._amplitude = share / self._omega
        modes = []
        for _ in range(n_modes):
            wavelength = rng.uniform(0.6, 1.5) * size
            k_angle = rng.uniform(0, 2 * np.pi)
            kx, ky = 2 * np.pi / wavelength * np.array([np.cos(k_angle), np.sin(k_angle)])
            phase = rng.uniform(0, 2 * np.pi)
            e_angle = rng.uniform(0, 2 * np.pi)
            spatial = np.cos(kx * gx + ky * gy + phase)
            modes.append((np.cos(e_angle) * spatial, np.sin(e_angle) * spatial))
        self._modes_x = np.stack([m[0] for m in modes]) if modes else np.zeros((0, *gx.shape))
        self._modes_y = np.stack([m[1] for m in modes]) if modes else np.zeros((0, *gx.shape))
        # cv2.resize needs the coarse grid to span the canvas exactly
        self._grid_x, self._grid_y = np.meshgrid(
            np.arange(cols, dtype=np.float32), np.arange(rows, dtype=np.float32)
        )

    def coarse_displacement(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) on the coarse grid (16-pixel spacing), in pixels."""
        weights = self._amplitude * (np.sin(self._omega * tau + self._psi) - np.sin(self._psi))
        dx = self._drift[0] * tau + np.tensordot(weights, self._modes_x, axes=1)
        dy = self._drift[1] * tau + np.tensordot(weights, self._modes_y, axes=1)
        return dx, dy

    def displacement(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) at every canvas pixel, float32."""
        rows, cols = self.shape
        dx, dy = self.coarse_displacement(tau)
        # the coarse grid covers (coarse - 1) * step >= canvas; crop after upsampling
        up = (self._coarse_shape[1] - 1) * _COARSE_STEP + 1
        vp = (self._coarse_shape[0] - 1) * _COARSE_STEP + 1
        full_x = cv2.resize(dx.astype(np.float32), (up, vp), interpolation=cv2.INTER_LINEAR)
        full_y = cv2.resize(dy.astype(np.float32), (up, vp), interpolation=cv2.INTER_LINEAR)
        return full_x[:rows, :cols], full_y[:rows, :cols]

    def maps(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap`` tables: the sample point that sits at each pixel at ``tau``."""
        dx, dy = self.displacement(tau)
        return self._grid_x - dx, self._grid_y - dy
