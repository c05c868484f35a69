"""The spatial calibration record: what the fusion callback applies to every frame.

One versioned, validated file (JSON written, JSON or YAML read) so a fused run can
name the calibration it used by ``uid`` and a scientist can read what was measured.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import __version__
from ..core import (
    CalibrationError,
    ConfigError,
    InterCameraTransform,
    load_config,
    read_mapping,
)
from ._intensity import IntensityMatch
from ._valid_crop import valid_crop

__all__ = [
    "CalibrationRecord",
    "Crop",
    "PixelSizes",
    "ResidualPass",
    "decompose_matrix",
    "import_original",
    "load_record",
    "record_to_documents",
]

SCHEMA_VERSION: Literal[1] = 1
#: Plausible per-axis magnification of one Shimadzu HR-grid pixel in Phantom pixels
#: (``ratio`` already makes them ~1): outside it the record is from another geometry or
#: scaled absurdly, and fusing with it would mix frames that do not overlap.
PLAUSIBLE_SCALE = (0.5, 2.0)
#: Largest frame side (pixels) a record may name; both cameras are far below it.
MAX_SIDE = 1 << 16
#: How closely the stated rotation / scales / translation must agree with the matrix
#: they were derived from (the matrix is what fusion uses; a hand edit of one of them
#: would otherwise be silently ignored).
AGREEMENT = {"rotation_deg": 1e-3, "scale_col": 1e-5, "scale_row": 1e-5, "translation_px": 1e-2}


class Crop(BaseModel):
    """Valid rectangle in Phantom pixels (both cameras see all of it)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class PixelSizes(BaseModel):
    """Micrometres per pixel: Phantom pixel and Shimadzu sensor (LR) pixel."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    phantom: float = Field(gt=0)
    shimadzu: float = Field(gt=0)


class ResidualPass(BaseModel):
    """Registration residual (Phantom px) after one fitting pass."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str
    mean: float = Field(ge=0)
    std: float = Field(ge=0)
    max: float = Field(ge=0)


class CalibrationRecord(BaseModel):
    """Shimadzu HR grid -> Phantom geometry, in the convention of ``xfusion_stream.core`` (optics)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_version: Literal[1] = SCHEMA_VERSION
    uid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    software_version: str = __version__
    source: str
    ratio: int = Field(gt=0)
    mirror: bool
    shimadzu_shape: tuple[int, int]
    phantom_shape: tuple[int, int]
    matrix: list[list[float]]
    rotation_deg: float
    scale_row: float = Field(gt=0)
    scale_col: float = Field(gt=0)
    translation_px: tuple[float, float]
    pixel_size_um: PixelSizes | None = None
    crop: Crop
    residuals: list[ResidualPass] = Field(default_factory=list)
    n_pairs: int = Field(ge=0, default=0)
    #: Shimadzu counts -> Phantom counts, from the same grid run; None (records from
    #: before it existed, imported original calibrations): the cameras share a scale.
    intensity: IntensityMatch | None = None

    @field_validator("shimadzu_shape", "phantom_shape")
    @classmethod
    def _positive_shape(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError(f"shape must be positive (rows, cols), got {v}")
        if max(v) > MAX_SIDE:
            raise ValueError(f"shape {v} exceeds {MAX_SIDE} pixels a side")
        return v

    @field_validator("matrix")
    @classmethod
    def _affine_3x3(cls, v: list[list[float]]) -> list[list[float]]:
        m = np.asarray(v, dtype=np.float64)
        if m.shape != (3, 3):
            raise ValueError(f"matrix must be 3x3, got shape {m.shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError("matrix has non-finite entries")
        if not np.allclose(m[2], [0.0, 0.0, 1.0], atol=1e-9):
            raise ValueError(f"matrix last row must be [0, 0, 1], got {m[2].tolist()}")
        if abs(np.linalg.det(m[:2, :2])) < 1e-6:
            raise ValueError("matrix is singular")
        return m.tolist()

    @field_validator("intensity")
    @classmethod
    def _finite_intensity(cls, v: IntensityMatch | None) -> IntensityMatch | None:
        for name, value in (v.model_dump() if v is not None else {}).items():
            if isinstance(value, float) and not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number (got {value})")
        return v

    @model_validator(mode="after")
    def _plausible(self) -> CalibrationRecord:
        low, high = PLAUSIBLE_SCALE
        for name in ("scale_col", "scale_row"):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(
                    f"{name}: implausible scale {value:g} (Phantom px per Shimadzu HR-grid "
                    f"px; expected {low:g}..{high:g} with ratio {self.ratio})"
                )
        linear = self.matrix_array()[:2, :2]
        implied = np.linalg.norm(linear, axis=0)  # per axis (col, row)
        if not np.all((implied >= low) & (implied <= high)):
            cols, rows = (float(x) * self.ratio for x in implied)
            raise ValueError(
                f"matrix: implausible scale: it maps one Shimadzu pixel onto {cols:.3g} x "
                f"{rows:.3g} Phantom pixels, the record's ratio is {self.ratio}"
            )
        self._crop_inside()
        self._fields_agree_with_matrix()
        return self

    def _crop_inside(self) -> None:
        rows, cols = self.phantom_shape
        c = self.crop
        if c.x + c.width > cols or c.y + c.height > rows:
            raise ValueError(
                f"crop: the rectangle x {c.x}..{c.x + c.width}, y {c.y}..{c.y + c.height} "
                f"leaves the Phantom frame ({rows} rows x {cols} columns)"
            )

    def _fields_agree_with_matrix(self) -> None:
        linear = self.matrix_array()[:2, :2]
        if (np.linalg.det(linear) < 0) != self.mirror:
            raise ValueError(
                f"mirror: {self.mirror} contradicts the matrix (its determinant is "
                f"{'negative' if not self.mirror else 'positive'})"
            )
        implied = decompose_matrix(
            self.matrix_array(), self.shimadzu_shape, self.phantom_shape, self.ratio, self.mirror
        )
        for name, tolerance in AGREEMENT.items():
            stated = np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))
            derived = np.atleast_1d(np.asarray(getattr(implied, name), dtype=np.float64))
            off = np.abs(stated - derived)
            if name == "rotation_deg":
                off = np.minimum(off, 360.0 - off)
            if np.any(off > tolerance):
                raise ValueError(
                    f"{name}: {_shown(stated)} contradicts the matrix, which implies "
                    f"{_shown(derived)} (the matrix is what fusion uses)"
                )

    def matrix_array(self) -> np.ndarray:
        return np.asarray(self.matrix, dtype=np.float64)

    def transform(self) -> InterCameraTransform:
        return InterCameraTransform(
            rotation_deg=self.rotation_deg,
            translation_px=(self.translation_px[0], self.translation_px[1]),
            scale_col=self.scale_col,
            scale_row=self.scale_row,
            mirror=self.mirror,
            ratio=self.ratio,
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def from_transform(
        cls,
        transform: InterCameraTransform,
        shimadzu_shape: tuple[int, int],
        phantom_shape: tuple[int, int],
        source: str = "truth",
        pixel_size_um: PixelSizes | None = None,
    ) -> CalibrationRecord:
        """The ideal record of a known transform (simulation truth, demos, tests)."""
        m = transform.matrix(shimadzu_shape, phantom_shape)
        return cls(
            source=source,
            ratio=transform.ratio,
            mirror=transform.mirror,
            shimadzu_shape=(int(shimadzu_shape[0]), int(shimadzu_shape[1])),
            phantom_shape=(int(phantom_shape[0]), int(phantom_shape[1])),
            matrix=m.tolist(),
            rotation_deg=transform.rotation_deg,
            scale_row=transform.scale_row,
            scale_col=transform.scale_col,
            translation_px=(transform.translation_px[0], transform.translation_px[1]),
            pixel_size_um=pixel_size_um,
            crop=Crop(**valid_crop(m, shimadzu_shape, phantom_shape, transform.ratio)),
        )


def _shown(values: np.ndarray) -> str:
    text = ", ".join(f"{v:.6g}" for v in values)
    return text if values.size == 1 else f"({text})"


def load_record(path: str | Path) -> CalibrationRecord:
    """Read a record (JSON or YAML); errors name the file and the offending field."""
    path = Path(path)
    data = read_mapping(path, what="calibration record")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{path}: schema_version: expected {SCHEMA_VERSION}, got {version!r}")
    return load_config(CalibrationRecord, data, source=path)


def decompose_matrix(
    matrix: np.ndarray,
    shimadzu_shape: tuple[int, int],
    phantom_shape: tuple[int, int],
    ratio: int,
    mirror: bool,
) -> InterCameraTransform:
    """Rotation, per-axis scale and translation of ``matrix`` in the optics convention.

    Any shear is dropped (the matrix itself stays authoritative in a record).
    """
    m = np.asarray(matrix, dtype=np.float64)
    linear = m[:2, :2] @ np.diag([-1.0 if mirror else 1.0, 1.0])  # = R @ S
    scale_col = float(np.linalg.norm(linear[:, 0]))
    scale_row = float(np.linalg.norm(linear[:, 1]))
    rotation = float(np.degrees(np.arctan2(linear[1, 0], linear[0, 0])))
    hs, ws = shimadzu_shape[0] * ratio, shimadzu_shape[1] * ratio
    cs = np.array([(ws - 1) / 2.0, (hs - 1) / 2.0, 1.0])
    cp = np.array([(phantom_shape[1] - 1) / 2.0, (phantom_shape[0] - 1) / 2.0])
    t = m[:2] @ cs - cp
    return InterCameraTransform(
        rotation_deg=rotation,
        translation_px=(float(t[0]), float(t[1])),
        scale_col=scale_col,
        scale_row=scale_row,
        mirror=mirror,
        ratio=ratio,
    )


def import_original(
    tfm_npy: str | Path,
    scale_npy: str | Path,
    shimadzu_shape: tuple[int, int],
    phantom_shape: tuple[int, int],
    *,
    ratio: int = 4,
    mirror: bool = True,
) -> CalibrationRecord:
    """Record from the original's ``tfm_*.npy`` + ``scale_factor_*.npy``.

    Assumed layout (the original applied: flip the upsampled Shimadzu left-right,
    resize it by the per-axis scale, then warp it onto the Phantom grid):
    ``tfm`` is a 2x3 or 3x3 forward affine (cv2.warpAffine order) from the resized
    Shimadzu image to Phantom pixels; ``scale`` holds two factors (fx, fy) = (columns,
    rows) as passed to cv2.resize. The resize is folded into one matrix using cv2's
    pixel-centre rule ``x' = (x + 0.5) * f - 0.5``.
    """
    tfm = np.load(tfm_npy, allow_pickle=False).astype(np.float64)
    scale = np.load(scale_npy, allow_pickle=False).astype(np.float64).ravel()
    if tfm.shape == (2, 3):
        tfm = np.vstack([tfm, [0.0, 0.0, 1.0]])
    if tfm.shape != (3, 3):
        raise CalibrationError(f"{tfm_npy}: expected a 2x3 or 3x3 matrix, got {tfm.shape}")
    if scale.size == 1:
        scale = np.repeat(scale, 2)
    if scale.size != 2 or np.any(scale <= 0):
        raise CalibrationError(f"{scale_npy}: expected 2 positive scale factors, got {scale}")
    fx, fy = scale
    resize = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
    flip = np.eye(3)
    if mirror:
        flip[0, 0], flip[0, 2] = -1.0, shimadzu_shape[1] * ratio - 1.0
    m = tfm @ resize @ flip
    t = decompose_matrix(m, shimadzu_shape, phantom_shape, ratio, mirror)
    return CalibrationRecord(
        source=f"original:{Path(tfm_npy).name}+{Path(scale_npy).name}",
        ratio=ratio,
        mirror=mirror,
        shimadzu_shape=(int(shimadzu_shape[0]), int(shimadzu_shape[1])),
        phantom_shape=(int(phantom_shape[0]), int(phantom_shape[1])),
        matrix=m.tolist(),
        rotation_deg=t.rotation_deg,
        scale_row=t.scale_row,
        scale_col=t.scale_col,
        translation_px=t.translation_px,
        crop=Crop(**valid_crop(m, shimadzu_shape, phantom_shape, ratio)),
    )


def record_to_documents(record: CalibrationRecord) -> list[tuple[str, dict]]:
    """A tiny bluesky run (start + stop) whose start carries the record; run uid = record uid.

    Stored in Tiled like any run, so a fused run can point at it with ``calibration_uid``.
    """
    from event_model import compose_run

    bundle = compose_run(
        uid=record.uid,
        metadata={
            "plan_name": "spatial_calibration_record",
            "calibration": record.model_dump(mode="json"),
            "calibration_uid": record.uid,
            "calibration_source": record.source,
        },
    )
    stop = bundle.compose_stop(exit_status="success")
    return [("start", dict(bundle.start_doc)), ("stop", dict(stop))]
