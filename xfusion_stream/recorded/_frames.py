"""One camera frame per TIFF file, uint16, 2-D: read, write, and header checks.

tifffile decodes uncompressed, deflate and PackBits frames itself; LZW, which camera
software and ImageJ offer as "compressed TIFF", needs the optional ``imagecodecs``
package. Without it such a frame is decoded by OpenCV's libtiff instead (OpenCV is a
dependency already), after tifffile has read the header and found one 2-D page.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile

from ..core import RecordedFormatError

__all__ = ["read_frame", "read_tiff", "write_frame", "frame_header"]

_TIFF_ERRORS = (OSError, ValueError, IndexError, tifffile.TiffFileError)


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
    except _TIFF_ERRORS as exc:
        raise RecordedFormatError(path, "image", f"not a readable TIFF: {exc}") from None
    flat = _squeeze_2d(shape)
    if flat is None:
        raise RecordedFormatError(path, "image", f"shape {shape} is not one 2-D frame")
    return flat, dtype


def _decoded_by_opencv(path: Path, codec_error: ValueError) -> np.ndarray:
    """The pixels of a one-page TIFF whose compression tifffile cannot decode here."""
    with tifffile.TiffFile(path) as tif:
        pages, shape = len(tif.pages), tuple(tif.series[0].shape)
    if pages != 1:  # OpenCV would read the first page of a stack and say nothing
        raise codec_error
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or _squeeze_2d(image.shape) != _squeeze_2d(shape):
        raise codec_error
    return image


def read_tiff(path: str | Path) -> np.ndarray:
    """The pixels of a TIFF file as stored; a file that cannot be decoded is a
    ``RecordedFormatError`` naming it."""
    path = Path(path)
    try:
        try:
            return tifffile.imread(path)
        except ValueError as exc:
            if "imagecodecs" not in str(exc):
                raise
            return _decoded_by_opencv(path, exc)
    except _TIFF_ERRORS as exc:
        raise RecordedFormatError(path, "image", f"not a readable TIFF: {exc}") from None


def read_frame(path: str | Path) -> np.ndarray:
    """A frame as a 2-D uint16 array; anything else is a format error."""
    path = Path(path)
    data = read_tiff(path)
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
