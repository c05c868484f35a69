"""One camera frame per TIFF file, uint16, 2-D: read, write, and header checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from ..core import RecordedFormatError

__all__ = ["read_frame", "write_frame", "frame_header"]


def _squeeze_2d(shape: tuple[int, ...]) -> tuple[int, int] | None:
    dims = tuple(d for d in shape if d != 1) if len(shape) > 2 else shape
    if len(shape) > 2 and len(dims) < 2:  # a 1xN image keeps its singleton axis
        dims = shape[-2:]
    return (int(dims[0]), int(dims[1])) if len(dims) == 2 else None


def frame_header(path: str | Path) -> tuple[tuple[int, int], np.dtype]:
    """Shape and dtype of a frame from its TIFF header, without reading the pixels."""
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype = tuple(series.shape), np.dtype(series.dtype)
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as exc:
        raise RecordedFormatError(path, "image", f"not a readable TIFF: {exc}") from None
    flat = _squeeze_2d(shape)
    if flat is None:
        raise RecordedFormatError(path, "image", f"shape {shape} is not one 2-D frame")
    return flat, dtype


def read_frame(path: str | Path) -> np.ndarray:
    """A frame as a 2-D uint16 array; anything else is a format error."""
    path = Path(path)
    try:
        data = tifffile.imread(path)
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as exc:
        raise RecordedFormatError(path, "image", f"not a readable TIFF: {exc}") from None
    flat = _squeeze_2d(tuple(data.shape))
    if flat is None:
        raise RecordedFormatError(path, "image", f"shape {data.shape} is not one 2-D frame")
    if data.dtype != np.uint16:
        raise RecordedFormatError(path, "image", f"dtype {data.dtype} is not uint16")
    return data.reshape(flat)


def write_frame(path: str | Path, frame: np.ndarray) -> None:
    """Write one uint16 2-D frame as an uncompressed TIFF (what camera exports write)."""
    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.dtype != np.uint16:
        raise ValueError(f"frame must be 2-D uint16, got {frame.shape} {frame.dtype}")
    tifffile.imwrite(path, frame, photometric="minisblack")
