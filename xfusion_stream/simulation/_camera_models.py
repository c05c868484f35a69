"""How each camera turns the scene (on the Phantom grid) into counts.

Shared by the scene engine and the grid simulator so that simulated calibration and
simulated experiments see the cameras through exactly the same optics.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import InterCameraTransform

__all__ = ["render_shimadzu", "render_phantom", "to_counts"]

_FULL_SCALE = 65535.0


def to_counts(
    image: np.ndarray,
    photons: float | None,
    rng: np.random.Generator,
    full_scale: float = 0.9,
    dark_counts: float = 0.0,
) -> np.ndarray:
    """Intensity in [0, 1] -> uint16 counts with Poisson shot noise.

    ``photons`` is the photon count b0 at intensity 1 (None: no noise). ``full_scale``
    maps intensity 1 to that fraction of the 16-bit range, leaving head-room (the
    camera's gain); ``dark_counts`` is the offset an unexposed pixel reads.
    """
    img = np.clip(image.astype(np.float64), 0.0, 1.0)
    if photons is not None:
        img = rng.poisson(img * photons) / photons
    counts = np.clip(dark_counts + img * full_scale * _FULL_SCALE, 0, _FULL_SCALE)
    return np.round(counts).astype(np.uint16)


def render_shimadzu(
    scene: np.ndarray,
    transform: InterCameraTransform,
    shimadzu_shape: tuple[int, int],
    *,
    photons: float | None,
    rng: np.random.Generator,
    full_scale: float = 0.9,
    dark_counts: float = 0.0,
) -> np.ndarray:
    """Scene on the Phantom grid -> Shimadzu uint16 frame of ``shimadzu_shape`` (rows, cols).

    Each Shimadzu HR-grid pixel q samples the scene at ``M q`` (bilinear); then
    ``ratio x ratio`` blocks are averaged (the coarse pixel integrates its area).
    ``full_scale`` and ``dark_counts`` are the camera's gain and offset (``to_counts``).
    """
    r = transform.ratio
    rows, cols = shimadzu_shape
    m = transform.matrix(shimadzu_shape, scene.shape[:2])
    hr = cv2.warpAffine(
        scene.astype(np.float32),
        m[:2],
        (cols * r, rows * r),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT101,
    )
    # INTER_AREA at an integer factor is the exact r x r block mean, ~10x faster than numpy
    lr = cv2.resize(hr, (cols, rows), interpolation=cv2.INTER_AREA)
    return to_counts(lr, photons, rng, full_scale, dark_counts)


def render_phantom(
    scene: np.ndarray, *, photons: float | None, rng: np.random.Generator
) -> np.ndarray:
    """The Phantom sees the scene on its own grid (identity), with its own shot noise."""
    return to_counts(scene, photons, rng)
