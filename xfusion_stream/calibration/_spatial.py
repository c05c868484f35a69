"""Spatial calibration from G400 grid images (Phantom and Shimadzu).

Squares are paired across the cameras by integer lattice coordinates; the lattice
offset between the two cameras comes from phase correlation of the whole images.
The fit runs in the parameters of ``InterCameraTransform`` (rotation, per-axis scale,
translation; left-right mirror known), so the record and the simulator agree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from pydantic import ValidationError

from ..core import CalibrationError, InterCameraTransform
from ._grid_segmentation import GridSquares, find_squares
from ._intensity import match_intensity
from ._lattice import Lattice, fit_lattice
from ._record import CalibrationRecord, Crop, PixelSizes, ResidualPass
from ._registration import Registration
from ._valid_crop import valid_crop

__all__ = ["CalibrationResult", "calibrate_grid"]

logger = logging.getLogger(__name__)


@dataclass
class CalibrationResult:
    """The record plus what a person needs to judge it (pairs, residual vectors)."""

    record: CalibrationRecord
    phantom_points: np.ndarray  # (N, 2) Phantom square centres of the pairs
    shimadzu_points: np.ndarray  # (N, 2) Shimadzu HR-grid square centres of the pairs
    residual_vectors: np.ndarray  # (N, 2) Phantom px, measured - mapped
    phantom_mean: np.ndarray = field(repr=False)
    shimadzu_mean: np.ndarray = field(repr=False)
    translation_ambiguous: bool = False
    #: Why the record has no intensity match (the geometry is kept either way).
    intensity_problem: str | None = None

    def report(self) -> dict:
        r = self.record
        final = r.residuals[-1]
        return {
            "rotation_deg": r.rotation_deg,
            "scale_row": r.scale_row,
            "scale_col": r.scale_col,
            "translation_px": list(r.translation_px),
            "residual_mean_px": final.mean,
            "residual_std_px": final.std,
            "residual_max_px": final.max,
            "residuals": [p.model_dump() for p in r.residuals],
            "n_pairs": r.n_pairs,
            "pixel_size_um": r.pixel_size_um.model_dump() if r.pixel_size_um else None,
            "crop": r.crop.model_dump(),
            "translation_ambiguous": self.translation_ambiguous,
            "intensity": r.intensity.model_dump() if r.intensity else None,
            "intensity_problem": self.intensity_problem,
        }


def _mean_frame(frames: Sequence[np.ndarray] | np.ndarray, camera: str) -> np.ndarray:
    stack = [np.asarray(f, dtype=np.float64) for f in frames]
    if not stack:
        raise CalibrationError(f"{camera}: no calibration frames")
    shapes = {f.shape for f in stack}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise CalibrationError(f"{camera}: frames must be 2-D and of one shape, got {shapes}")
    return np.mean(stack, axis=0)


def _procrustes(u: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
    """Rotation angle and translation minimising |v - (R u + t)|^2."""
    uc, vc = u - u.mean(axis=0), v - v.mean(axis=0)
    dot = np.sum(uc * vc)
    cross = np.sum(uc[:, 0] * vc[:, 1] - uc[:, 1] * vc[:, 0])
    theta = float(np.arctan2(cross, dot))
    return theta, v.mean(axis=0) - _rotation(theta) @ u.mean(axis=0)


def _rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _residual_pass(name: str, errors: np.ndarray) -> ResidualPass:
    d = np.linalg.norm(errors, axis=1)
    return ResidualPass(name=name, mean=float(d.mean()), std=float(d.std()), max=float(d.max()))


def _fit(u: np.ndarray, v: np.ndarray, s0: float) -> tuple[dict, list[ResidualPass], np.ndarray]:
    """Euclidean fit at the pitch scale, then per-axis scale from the residuals, refit.

    ``u``: mirrored, centred Shimadzu HR coordinates; ``v``: centred Phantom coordinates.
    """
    theta, t = _procrustes(s0 * u, v)
    err = v - (s0 * u @ _rotation(theta).T + t)
    passes = [_residual_pass("euclidean", err)]
    scale = np.array([s0, s0])
    for _ in range(10):
        # Residual in the Shimadzu axes is linear in x and y: slope = scale correction.
        w = (v - t) @ _rotation(theta)
        for axis in (0, 1):
            design = np.column_stack([u[:, axis], np.ones(len(u))])
            (slope, _), *_ = np.linalg.lstsq(design, w[:, axis], rcond=None)
            scale[axis] = slope
        theta, t = _procrustes(u * scale, v)
    err = v - ((u * scale) @ _rotation(theta).T + t)
    passes.append(_residual_pass("per_axis_scale", err))
    params = {"theta": theta, "t": t, "scale_col": scale[0], "scale_row": scale[1]}
    return params, passes, err


def _unit_range(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [1, 99])
    return ((img - lo) / max(hi - lo, 1e-9)).astype(np.float32)


def _affine(linear: np.ndarray, t: np.ndarray, cs: np.ndarray, cp: np.ndarray) -> np.ndarray:
    """2x3 forward matrix: Shimadzu HR (x, y) -> Phantom (x, y)."""
    affine = np.zeros((2, 3))
    affine[:, :2] = linear
    affine[:, 2] = cp + t - linear @ cs
    return affine


def _phase_translation(
    phantom: np.ndarray, shimadzu_hr: np.ndarray, linear: np.ndarray, cs: np.ndarray, cp: np.ndarray
) -> np.ndarray:
    """Translation (Phantom px) by phase correlation; known only modulo the grid pitch."""
    size = (phantom.shape[1], phantom.shape[0])
    b = _unit_range(shimadzu_hr)
    b = cv2.warpAffine(b, _affine(linear, np.zeros(2), cs, cp), size, borderValue=float(b.mean()))
    window = cv2.createHanningWindow(size, cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(b, _unit_range(phantom), window)
    return np.array([dx, dy])


def _lattice_translation(
    phantom: np.ndarray,
    shimadzu_hr: np.ndarray,
    linear: np.ndarray,
    t_phase: np.ndarray,
    basis: np.ndarray,
    cs: np.ndarray,
    cp: np.ndarray,
    reach: int = 2,
) -> tuple[np.ndarray, bool]:
    """Pick which lattice-equivalent translation is right from non-periodic content.

    Blurring by one pitch removes the grid and keeps beam profile, vignetting and
    defects; each candidate ``t_phase + basis @ k`` is scored by normalised cross
    correlation of the blurred images over the overlap. Without such content every
    candidate scores alike, and the smallest translation is taken (``ambiguous``).
    """
    pitch = float(np.mean(np.linalg.norm(basis, axis=0)))
    step = max(1, int(pitch // 8))
    small = (phantom.shape[1] // step, phantom.shape[0] // step)
    down = np.diag([1.0 / step, 1.0 / step])
    low_p = cv2.resize(cv2.GaussianBlur(_unit_range(phantom), (0, 0), pitch), small)
    low_s = cv2.GaussianBlur(_unit_range(shimadzu_hr), (0, 0), pitch)
    ones = np.ones_like(low_s)
    # Start from the lattice-equivalent of the phase-correlation shift nearest zero.
    t_phase = t_phase - basis @ np.round(np.linalg.solve(basis, t_phase))
    reach = max(reach, int(np.ceil(0.25 * min(phantom.shape) / pitch)))
    margin = int(np.ceil(2.0 * pitch / step))
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    inner = np.zeros(low_p.shape, dtype=bool)
    inner[margin:-margin, margin:-margin] = True
    candidates, scores = [], []
    shift = (step - 1) / (2.0 * step)  # pixel-centre rule of an area resize by ``step``
    for i in range(-reach, reach + 1):
        for j in range(-reach, reach + 1):
            t = t_phase + basis @ np.array([i, j])
            affine = down @ _affine(linear, t, cs, cp)
            affine[:, 2] -= shift
            warped = cv2.warpAffine(low_s, affine, small)
            # Away from both fields' edges, where blurring saw beyond the frame.
            mask = cv2.warpAffine(ones, affine, small) > 0.999
            mask = cv2.erode(mask.astype(np.uint8), kernel).astype(bool) & inner
            if mask.mean() < 0.2:
                continue
            a, b = low_p[mask], warped[mask]
            a, b = a - a.mean(), b - b.mean()
            scores.append(float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b) + 1e-12)))
            candidates.append(t)
    if not candidates:
        return t_phase, True
    # 1 - ncc^2 is the unexplained variance after a gain/offset fit: the right shift
    # must explain clearly more than the runner-up.
    unexplained = 1.0 - np.clip(np.array(scores), -1.0, 1.0) ** 2
    order = np.argsort(unexplained)
    best = int(order[0])
    runner_up = unexplained[order[1]] if len(order) > 1 else 1.0
    if scores[best] > 0.5 and unexplained[best] < 0.6 * runner_up:
        return candidates[best], False
    norms = [np.linalg.norm(t) for t in candidates]
    return candidates[int(np.argmin(norms))], True


def _pairs(
    lat_p: Lattice, lat_s: Lattice, linear: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of paired (Phantom, Shimadzu) squares by integer lattice coordinates.

    Both lattices live in centred coordinates (the Shimadzu one also mirrored).
    """
    predicted = t + linear @ lat_s.origin
    shift = np.round(np.linalg.solve(lat_p.basis, predicted - lat_p.origin)).astype(int)
    table = lat_p.lookup()
    ip, is_ = [], []
    for k, (i, j) in enumerate(lat_s.coords):
        key = (int(i) + shift[0], int(j) + shift[1])
        if key in table:
            ip.append(table[key])
            is_.append(k)
    return np.array(ip, dtype=int), np.array(is_, dtype=int)


def _pair_squares(
    phantom: np.ndarray,
    shimadzu_hr: np.ndarray,
    flip: np.ndarray,
    cs: np.ndarray,
    cp: np.ndarray,
) -> tuple[Lattice, Lattice, bool, np.ndarray, np.ndarray]:
    """Both lattices, the mirrored linear map and the indices of squares paired across them."""
    sq_p: GridSquares = _squares_of(phantom, "phantom")
    sq_s: GridSquares = _squares_of(shimadzu_hr, "shimadzu")
    lat_p = fit_lattice(sq_p.centres - cp, np.zeros(2), "phantom")
    lat_s = fit_lattice((sq_s.centres - cs) * flip, np.zeros(2), "shimadzu")
    linear = lat_p.basis @ np.linalg.inv(lat_s.basis)  # mirrored Shimadzu -> Phantom
    unmirrored = linear @ np.diag(flip)
    t_phase = _phase_translation(phantom, shimadzu_hr, unmirrored, cs, cp)
    t0, ambiguous = _lattice_translation(
        phantom, shimadzu_hr, unmirrored, t_phase, lat_p.basis, cs, cp
    )
    ip, is_ = _pairs(lat_p, lat_s, linear, t0)
    if len(ip) < 6:
        raise CalibrationError(f"only {len(ip)} grid squares paired across the cameras")
    return lat_p, lat_s, ambiguous, ip, is_


def _robust_fit(
    u: np.ndarray, v: np.ndarray, lat_p: Lattice, lat_s: Lattice
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], list[ResidualPass], np.ndarray]:
    """Fit, then drop squares cut by a field edge or a defect (they centre badly) and refit."""
    s0 = lat_p.pitch_px / lat_s.pitch_px
    params, passes, err = _fit(u, v, s0)
    for _ in range(3):
        d = np.linalg.norm(err, axis=1)
        keep = d <= max(1.0, 5.0 * np.median(d))
        if keep.all() or keep.sum() < 6:
            break
        u, v = u[keep], v[keep]
        params, passes, err = _fit(u, v, s0)
    return u, v, params, passes, err


def _geometry_record(
    params: dict[str, Any],
    passes: list[ResidualPass],
    phantom_pitch_px: float,
    pitch_um: float,
    n_pairs: int,
    lr_shape: tuple[int, int],
    phantom_shape: tuple[int, ...],
    ratio: int,
    mirror: bool,
    source: str,
) -> CalibrationRecord:
    transform = InterCameraTransform(
        rotation_deg=float(np.degrees(params["theta"])),
        translation_px=(float(params["t"][0]), float(params["t"][1])),
        scale_col=float(params["scale_col"]),
        scale_row=float(params["scale_row"]),
        mirror=mirror,
        ratio=ratio,
    )
    hr_shape = (int(phantom_shape[0]), int(phantom_shape[1]))
    m = transform.matrix(lr_shape, hr_shape)
    phantom_um = pitch_um / phantom_pitch_px
    shimadzu_um = phantom_um * float(np.sqrt(params["scale_col"] * params["scale_row"])) * ratio
    try:
        return CalibrationRecord(
            source=source,
            ratio=ratio,
            mirror=mirror,
            shimadzu_shape=lr_shape,
            phantom_shape=hr_shape,
            matrix=m.tolist(),
            rotation_deg=transform.rotation_deg,
            scale_row=transform.scale_row,
            scale_col=transform.scale_col,
            translation_px=transform.translation_px,
            pixel_size_um=PixelSizes(phantom=phantom_um, shimadzu=shimadzu_um),
            crop=Crop(**valid_crop(m, lr_shape, hr_shape, ratio)),
            residuals=passes,
            n_pairs=n_pairs,
        )
    except ValidationError as exc:  # an absurd fit is a failed calibration, said so
        raise CalibrationError(
            f"{source}: the grid fit is not a plausible calibration: {exc}"
        ) from None


def _with_intensity(
    record: CalibrationRecord, phantom: np.ndarray, shimadzu: np.ndarray
) -> tuple[CalibrationRecord, str | None]:
    """The record with the Shimadzu -> Phantom intensity match, or unchanged and why not:
    a good geometry is not thrown away for a failed intensity match."""
    registered = Registration(record)
    try:
        intensity = match_intensity(
            registered.phantom_hr(phantom),
            registered.shimadzu_lr(shimadzu),
            record.ratio,
            source=record.source,
        )
    except CalibrationError as exc:
        logger.warning("calibration %s: no intensity match: %s", record.uid, exc)
        return record, str(exc)
    return record.model_copy(update={"intensity": intensity}), None


def _squares_of(image: np.ndarray, camera: str) -> GridSquares:
    """The grid squares of one camera's mean frame; a failure says which camera."""
    try:
        return find_squares(image)
    except CalibrationError as exc:
        raise CalibrationError(f"{camera} frames: {exc}") from None


def calibrate_grid(
    phantom_frames: Sequence[np.ndarray] | np.ndarray,
    shimadzu_frames: Sequence[np.ndarray] | np.ndarray,
    *,
    pitch_um: float = 62.0,
    ratio: int = 4,
    mirror: bool = True,
    source: str = "unknown",
    progress: bool = False,
) -> CalibrationResult:
    """Fit the Shimadzu -> Phantom transform from frames of a static G400 grid."""
    from tqdm import tqdm

    steps = tqdm(total=4, desc="grid calibration", disable=not progress)
    phantom = _mean_frame(phantom_frames, "phantom")
    shimadzu = _mean_frame(shimadzu_frames, "shimadzu")
    lr_shape = (int(shimadzu.shape[0]), int(shimadzu.shape[1]))
    hr_size = (lr_shape[1] * ratio, lr_shape[0] * ratio)
    shimadzu_hr = cv2.resize(shimadzu, hr_size, interpolation=cv2.INTER_LINEAR)
    cs = np.array([(hr_size[0] - 1) / 2.0, (hr_size[1] - 1) / 2.0])
    cp = np.array([(phantom.shape[1] - 1) / 2.0, (phantom.shape[0] - 1) / 2.0])
    flip = np.array([-1.0 if mirror else 1.0, 1.0])
    steps.update()

    lat_p, lat_s, ambiguous, ip, is_ = _pair_squares(phantom, shimadzu_hr, flip, cs, cp)
    steps.update()
    u, v, params, passes, err = _robust_fit(lat_s.centres[is_], lat_p.centres[ip], lat_p, lat_s)
    steps.update()

    record = _geometry_record(
        params,
        passes,
        lat_p.pitch_px,
        pitch_um,
        len(u),
        lr_shape,
        phantom.shape,
        ratio,
        mirror,
        source,
    )
    record, problem = _with_intensity(record, phantom, shimadzu)
    steps.update()  # the fourth step: the intensity match
    steps.close()
    return CalibrationResult(
        record=record,
        phantom_points=v + cp,
        shimadzu_points=u * flip + cs,
        residual_vectors=err,
        phantom_mean=phantom,
        translation_ambiguous=ambiguous,
        shimadzu_mean=shimadzu,
        intensity_problem=problem,
    )
