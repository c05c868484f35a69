"""The G400 copper grid used for spatial calibration, as the x-ray beam sees it.

Copper bars absorb, the square holes transmit: bright squares on a dark lattice. The
lattice is defined about the image centre, so a symmetric crop of a larger image is
the same grid; that lets the scene render on a padded canvas and still agree with a
grid image drawn at the Phantom's own size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["g400_grid_image", "G400_PITCH_UM"]

G400_PITCH_UM = 62.0


def g400_grid_image(
    shape: tuple[int, int],
    pitch_px: float,
    bar_fraction: float = 0.25,
    angle_deg: float = 0.0,
    offset_px: tuple[float, float] = (0.0, 0.0),
    *,
    bar_transmission: float = 0.3,
) -> np.ndarray:
    """Transmission of a square grid, float32 in [0, 1], shape ``(rows, cols)``.

    ``pitch_px`` is the lattice period in pixels, ``bar_fraction`` the bar width as a
    fraction of the pitch, ``angle_deg`` the lattice rotation (counter-clockwise in the
    image as in ``optics``), ``offset_px`` = (x, y) shift of a bar crossing from the image
    centre. Bar edges are anti-aliased by the pixel's box footprint (area coverage).
    """
    if pitch_px <= 2:
        raise ValueError(f"g400_grid_image: pitch_px must be > 2 pixels, got {pitch_px}")
    if not 0 < bar_fraction < 1:
        raise ValueError(f"g400_grid_image: bar_fraction must be in (0, 1), got {bar_fraction}")
    rows, cols = shape
    theta = np.deg2rad(angle_deg)
    c, s = np.cos(theta), np.sin(theta)
    x = np.arange(cols, dtype=np.float64)[None, :] - (cols - 1) / 2.0 - offset_px[0]
    y = np.arange(rows, dtype=np.float64)[:, None] - (rows - 1) / 2.0 - offset_px[1]
    # lattice coordinates: rotate the image axes by -theta
    u = c * x + s * y
    v = -s * x + c * y
    half_bar = bar_fraction * pitch_px / 2.0
    # a pixel's footprint along a slanted axis is about |cos| + |sin| wide
    footprint_u = abs(c) + abs(s)
    bar_u = _bar_coverage(u, pitch_px, half_bar, footprint_u)
    bar_v = _bar_coverage(v, pitch_px, half_bar, footprint_u)
    copper = 1.0 - (1.0 - bar_u) * (1.0 - bar_v)
    image = 1.0 - (1.0 - bar_transmission) * copper
    return image.astype(np.float32)


def _bar_coverage(coord: np.ndarray, pitch: float, half_bar: float, footprint: float) -> np.ndarray:
    """Fraction of a pixel covered by the bars centred at multiples of ``pitch``."""
    distance = np.abs(coord - pitch * np.round(coord / pitch))
    return np.clip((half_bar - distance) / footprint + 0.5, 0.0, 1.0)
