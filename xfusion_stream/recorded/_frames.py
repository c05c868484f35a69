"""One camera frame per TIFF file, uint16, 2-D: read, write, and header checks.

tifffile decodes uncompressed, deflate and PackBits frames itself; LZW, which camera
software and ImageJ offer as "compressed TIFF", needs the optional ``imagecodecs``
package. Without it such a frame is decoded by OpenCV's libtiff instead (OpenCV is a
dependency already), after tifffile has read the header and found one 2-D page.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import cv2
import numpy as np
import tifffile

from ..core import RecordedFormatError

__all__ = ["read_frame", "read_tiff", "write_frame", "frame_header"]

#: What tifffile raises on a damaged file (a 4-byte header: struct.error; a bad IFD
#: offset: IndexError; ...): each becomes a RecordedFormatError naming the file.
_TIFF_ERRORS = (
    OSError,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    EOFError,
    struct.error,
    tifffile.TiffFileError,
)


# tifffile logs what it finds wrong (bad page offsets, ...) as it reads; each such file
# is refused here by name, so the log line would be a second message for one problem.
# A handler keeps Python's last-resort printing off; records still reach the root logger.
logging.getLogger("tifffile").addHandler(logging.NullHandler())


def _regular_file(path: Path) -> None:
    """A frame is a regular file: a FIFO named like one would block its reader for ever,
    and a device such as /dev/zero would be read without end."""
    if not path.is_file():
        what = "a directory" if path.is_dir() else "missing" if not path.exists() else "special"
        raise RecordedFormatError(path, "image", f"not a regular file ({what})")


def _squeeze_2d(shape: tuple[int, ...]) -> tuple[int, int] | None:
    dims = tuple(d for d in shape if d != 1) if len(shape) > 2 else shape
    if len(shape) > 2 and len(dims) < 2:  # a 1xN image keeps its singleton axis
        dims = shape[-2:]
    return (int(dims[0]), int(dims[1])) if len(dims) == 2 else None


def frame_header(path: str | Path) -> tuple[tuple[int, int], np.dtype]:
    """Shape and dtype of a frame from its TIFF header, without reading the pixels."""
    path = Path(path)
    _regular_file(path)
    try:
        with tifffile.TiffFile(path) as tif:
            _one_page(tif, path)
            series = tif.series[0]
            shape, dtype = tuple(series.shape), np.dtype(series.dtype)
    except RecordedFormatError:
        raise  # already names the file (it is a ValueError too)
    except _TIFF_ERRORS as exc:
        raise RecordedFormatError(path, "image", f"not a readable TIFF: {exc}") from None
    flat = _squeeze_2d(shape)
    if flat is None:
        raise RecordedFormatError(path, "image", f"shape {shape} is not one 2-D frame")
    return flat, dtype


def _one_page(tif: tifffile.TiffFile, path: Path) -> None:
    """One frame per file: of a stack, tifffile and OpenCV would read the first series
    or page and say nothing (pages of another shape are another series)."""
    pages = len(tif.pages)
    if pages != 1:
        raise RecordedFormatError(path, "image", f"{pages} pages; one frame per file expected")


def _decoded_by_opencv(path: Path, shape: tuple[int, ...], codec_error: ValueError) -> np.ndarray:
    """The pixels of a one-page TIFF whose compression tifffile cannot decode here."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or _squeeze_2d(image.shape) != _squeeze_2d(shape):
        raise codec_error
    return image


def read_tiff(path: str | Path) -> np.ndarray:
    """The pixels of a TIFF file as stored; a file that cannot be decoded is a
    ``RecordedFormatError`` naming it."""
    path = Path(path)
    _regular_file(path)
    try:
        with tifffile.TiffFile(path) as tif:
            _one_page(tif, path)
            shape = tuple(tif.series[0].shape)
            try:
                return tif.asarray()
            except ValueError as exc:
                if "imagecodecs" not in str(exc):
                    raise
                codec_error = exc
        return _decoded_by_opencv(path, shape, codec_error)
    except RecordedFormatError:
        raise  # already names the file (it is a ValueError too)
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
