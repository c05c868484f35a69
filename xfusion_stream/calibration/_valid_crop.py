"""The valid crop: the largest axis-aligned rectangle both cameras see.

Works on the Phantom grid. A Phantom pixel is valid when its centre maps (through
``M^-1``) inside the hull of the Shimadzu LR pixel centres, so bilinear sampling of
the Shimadzu frame there never extrapolates.
"""

from __future__ import annotations

import numpy as np

from ..core import CalibrationError

__all__ = ["valid_crop"]


def _valid_mask(
    matrix: np.ndarray, shimadzu_shape: tuple[int, int], phantom_shape: tuple[int, int], ratio: int
) -> np.ndarray:
    inverse = np.linalg.inv(matrix)
    ys, xs = np.mgrid[0 : phantom_shape[0], 0 : phantom_shape[1]].astype(np.float64)
    qx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    qy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    first = (ratio - 1) / 2.0
    last_x = ratio * (shimadzu_shape[1] - 1) + first
    last_y = ratio * (shimadzu_shape[0] - 1) + first
    return (qx >= first) & (qx <= last_x) & (qy >= first) & (qy <= last_y)


def valid_crop(
    matrix: np.ndarray,
    shimadzu_shape: tuple[int, int],
    phantom_shape: tuple[int, int],
    ratio: int,
    multiple: int = 16,
) -> dict[str, int]:
    """Largest rectangle (x, y, width, height), sizes multiples of ``multiple``, centred.

    The valid region is convex, so the widest row span over rows ``y0..y1`` is limited
    by the two end rows only; that makes an exhaustive search over row pairs cheap.
    """
    mask = _valid_mask(np.asarray(matrix, dtype=np.float64), shimadzu_shape, phantom_shape, ratio)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size < multiple:
        raise CalibrationError(
            f"the cameras overlap on fewer than {multiple} Phantom rows; no valid crop"
        )
    left = np.full(mask.shape[0], np.inf)
    right = np.full(mask.shape[0], -np.inf)
    left[rows] = mask[rows].argmax(axis=1)
    right[rows] = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    y0 = rows[:, None]
    y1 = rows[None, :]
    lo = np.maximum(left[y0], left[y1])
    hi = np.minimum(right[y0], right[y1])
    width = np.floor((hi - lo + 1) / multiple) * multiple
    height = np.floor((y1 - y0 + 1) / multiple) * multiple
    area = np.where((y1 >= y0) & (width > 0) & (height > 0), width * height, 0.0)
    if area.max() <= 0:
        raise CalibrationError("the cameras' common field is too small for a valid crop")
    a, b = np.unravel_index(np.argmax(area), area.shape)
    top, bottom = int(rows[a]), int(rows[b])
    w, h = int(width[a, b]), int(height[a, b])
    x = int(lo[a, b]) + (int(hi[a, b] - lo[a, b]) + 1 - w) // 2
    y = top + (bottom - top + 1 - h) // 2
    return {"x": x, "y": y, "width": w, "height": h}
