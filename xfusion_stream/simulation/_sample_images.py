"""Sample thickness maps and beam flat fields built from real images.

Radiographs of a sample look like a smooth beam profile times ``exp(-optical depth)``,
where the depth has slow variations (thickness) and fine texture (microstructure). Real
photographs shipped with scikit-image supply both scales so the texture has natural
statistics; a seeded choice, crop, flip and tiling makes every seed a different sample.

Two disjoint sets of photographs: ``training`` (every scene the shipped weights were
trained and tuned on) and ``held_out`` (never seen by training), so a quality figure can
say how the model does on textures it has not met, as a beamline's samples will be.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import cv2
import numpy as np

__all__ = ["TEXTURE_SETS", "Textures", "flat_field", "sample_depth"]

Textures = Literal["training", "held_out"]

#: set -> (coarse, fine): coarse images give structure (cropped and resized), fine ones
#: are tiled near native scale. Only images bundled with scikit-image (no download).
TEXTURE_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "training": (("moon", "camera", "coins", "text", "page"), ("gravel", "brick", "grass")),
    "held_out": (
        ("astronaut", "coffee", "rocket", "retina", "clock", "cell", "shepp_logan_phantom"),
        ("immunohistochemistry", "hubble_deep_field", "microaneurysms", "checkerboard"),
    ),
}


@lru_cache(maxsize=16)
def _load_gray(name: str) -> np.ndarray:
    """Normalised gray version of a scikit-image sample, cached read-only (many scenes)."""
    from skimage import data

    image = np.asarray(getattr(data, name)(), dtype=np.float32)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=2)
    lo, hi = np.percentile(image, [1, 99])
    gray = np.clip((image - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    gray.flags.writeable = False
    return gray


def _crop_resized(
    image: np.ndarray, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """A random crop with the aspect of ``shape`` (50-90 % of the source), resized to it."""
    rows, cols = shape
    src_rows, src_cols = image.shape
    aspect = cols / rows
    frac = rng.uniform(0.5, 0.9)
    crop_rows = int(min(src_rows, src_cols / aspect) * frac)
    crop_cols = max(int(crop_rows * aspect), 1)
    crop_rows = max(crop_rows, 1)
    r0 = int(rng.integers(0, src_rows - crop_rows + 1))
    c0 = int(rng.integers(0, src_cols - crop_cols + 1))
    crop = image[r0 : r0 + crop_rows, c0 : c0 + crop_cols]
    crop = _random_flip(crop, rng)
    return cv2.resize(crop, (cols, rows), interpolation=cv2.INTER_CUBIC)


def _tiled(image: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Mirror-tile ``image`` at 1-1.6x its native scale to cover ``shape``."""
    scale = rng.uniform(1.0, 1.6)
    scaled = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    scaled = _random_flip(scaled, rng)
    reps = (-(-shape[0] // scaled.shape[0]) + 1, -(-shape[1] // scaled.shape[1]) + 1)
    tile = np.block(
        [
            [scaled[:: (-1 if i % 2 else 1), :: (-1 if j % 2 else 1)] for j in range(reps[1])]
            for i in range(reps[0])
        ]
    )
    r0 = int(rng.integers(0, tile.shape[0] - shape[0] + 1))
    c0 = int(rng.integers(0, tile.shape[1] - shape[1] + 1))
    return np.ascontiguousarray(tile[r0 : r0 + shape[0], c0 : c0 + shape[1]])


def _random_flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.integers(2):
        image = image[:, ::-1]
    if rng.integers(2):
        image = image[::-1, :]
    return np.ascontiguousarray(image)


def _low_pass(image: np.ndarray, factor: int) -> np.ndarray:
    """Cheap wide blur: shrink by ``factor``, blur a little, grow back."""
    rows, cols = image.shape
    small = cv2.resize(
        image, (max(cols // factor, 2), max(rows // factor, 2)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    return cv2.resize(small, (cols, rows), interpolation=cv2.INTER_CUBIC)


def _standardise(image: np.ndarray) -> np.ndarray:
    return (image - image.mean()) / max(float(image.std()), 1e-6)


def sample_depth(
    shape: tuple[int, int], rng: np.random.Generator, textures: Textures = "training"
) -> np.ndarray:
    """Optical depth of the sample on a canvas of ``shape``, float32, roughly in [0.2, 1.6],
    from the photographs of the set ``textures``."""
    coarse_set, fine_set = TEXTURE_SETS[textures]
    coarse_name = coarse_set[int(rng.integers(len(coarse_set)))]
    fine_name = fine_set[int(rng.integers(len(fine_set)))]
    slow_name = coarse_set[int(rng.integers(len(coarse_set)))]
    coarse = _crop_resized(_load_gray(coarse_name), shape, rng)
    coarse = cv2.GaussianBlur(coarse, (0, 0), 1.2)
    fine = _tiled(_load_gray(fine_name), shape, rng)
    slow = _low_pass(_crop_resized(_load_gray(slow_name), shape, rng), 24)
    depth = 0.55 * _standardise(slow) + 0.35 * _standardise(coarse) + 0.25 * _standardise(fine)
    lo, hi = np.percentile(depth, [0.5, 99.5])
    depth = np.clip((depth - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return (0.2 + 1.4 * depth).astype(np.float32)


def flat_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Beam intensity without a sample: a wide Gaussian, brighter in the middle, <= 0.92."""
    rows, cols = shape
    y = (np.arange(rows, dtype=np.float32)[:, None] - rows / 2) / rows
    x = (np.arange(cols, dtype=np.float32)[None, :] - cols / 2) / cols
    cy = rng.uniform(-0.08, 0.08)
    sigma_y = rng.uniform(0.6, 0.9)
    sigma_x = rng.uniform(1.0, 1.6)
    beam = np.exp(-(((y - cy) / sigma_y) ** 2) - (x / sigma_x) ** 2)
    return (0.92 * beam / beam.max()).astype(np.float32)
