"""Inter-camera geometry shared by the simulator and the spatial calibration.

Convention (one for the whole project, see docs/adr/0001-inter-camera-geometry.md):

* Pixel coordinates are ``(x, y)`` = (column, row) of pixel centres, origin at the
  centre of the top-left pixel, as OpenCV uses them.
* The *Shimadzu HR grid* is the Shimadzu sensor upsampled by ``ratio`` (4): LR pixel
  ``(j, i)`` covers HR pixels ``[ratio*j, ratio*j + ratio)`` in x, so its centre sits at
  HR coordinate ``ratio*j + (ratio - 1)/2``.
* ``InterCameraTransform.matrix()`` is the 3x3 matrix ``M`` that maps a point on the
  Shimadzu HR grid to the Phantom pixel that sees the same point of the sample:
  ``p_phantom = M @ [x_s, y_s, 1]``.
  ``M = T(phantom_centre + translation) @ R(rotation) @ S(scale_col, scale_row)
        @ F(mirror) @ T(-shimadzu_hr_centre)``
  where ``F`` flips x (the Phantom is mirrored left-right relative to the Shimadzu).
* A camera renders the scene (defined on the Phantom grid) as
  ``shimadzu_hr(q) = scene(M q)`` followed by ``ratio x ratio`` area averaging.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["InterCameraTransform"]


@dataclass(frozen=True)
class InterCameraTransform:
    """Where the Shimadzu looks on the Phantom's image plane.

    ``rotation_deg`` is counter-clockwise in the image (x right, y down means a
    positive angle turns +x towards +y). ``translation_px`` is ``(tx, ty)`` in Phantom
    pixels. ``scale_col``/``scale_row`` are the per-axis magnification of one Shimadzu
    HR-grid pixel in Phantom pixels (nonuniform scale, close to 1).
    """

    rotation_deg: float = 0.0
    translation_px: tuple[float, float] = (0.0, 0.0)
    scale_col: float = 1.0
    scale_row: float = 1.0
    mirror: bool = True
    ratio: int = 4

    def matrix(self, shimadzu_shape: tuple[int, int], phantom_shape: tuple[int, int]) -> np.ndarray:
        """3x3 matrix mapping Shimadzu HR-grid (x, y) to Phantom (x, y).

        ``shimadzu_shape`` is the LR sensor shape (rows, cols); ``phantom_shape`` the
        Phantom frame shape (rows, cols).
        """
        hs, ws = shimadzu_shape[0] * self.ratio, shimadzu_shape[1] * self.ratio
        cs = np.array([(ws - 1) / 2.0, (hs - 1) / 2.0])
        cp = np.array([(phantom_shape[1] - 1) / 2.0, (phantom_shape[0] - 1) / 2.0])
        to_centre = _translation(-cs[0], -cs[1])
        flip = np.diag([-1.0 if self.mirror else 1.0, 1.0, 1.0])
        scale = np.diag([self.scale_col, self.scale_row, 1.0])
        theta = np.deg2rad(self.rotation_deg)
        c, s = np.cos(theta), np.sin(theta)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        back = _translation(cp[0] + self.translation_px[0], cp[1] + self.translation_px[1])
        return back @ rot @ scale @ flip @ to_centre

    def to_dict(self) -> dict:
        d = asdict(self)
        d["translation_px"] = list(self.translation_px)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> InterCameraTransform:
        d = dict(d)
        d["translation_px"] = tuple(float(v) for v in d.get("translation_px", (0.0, 0.0)))
        return cls(**d)


def _translation(tx: float, ty: float) -> np.ndarray:
    m = np.eye(3)
    m[0, 2] = tx
    m[1, 2] = ty
    return m
