"""REDS-layout clip folders: ``<root>/<clip>/<frame:08d>.png`` plus a meta-info file.

The meta-info file has one line per clip, ``folder nframes (H,W,C)``, as in the
original (and BasicSR's REDS lists). Frames may be 8-bit or 16-bit gray PNG; both read
back as float32 in [0, 1].
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ClipEntry",
    "read_meta_info",
    "write_meta_info",
    "frame_paths",
    "read_frame",
    "write_frame",
    "FRAME_PATTERN",
]

FRAME_PATTERN = "{:08d}.png"
_META_LINE = re.compile(r"^(\S+)\s+(\d+)\s+\((\d+),\s*(\d+),\s*(\d+)\)\s*$")
_IMAGE_SUFFIXES = {".png", ".tif", ".tiff"}


@dataclass(frozen=True)
class ClipEntry:
    """One meta-info line: clip folder name, frame count and frame shape (H, W, C)."""

    folder: str
    nframes: int
    shape: tuple[int, int, int]

    def line(self) -> str:
        h, w, c = self.shape
        return f"{self.folder} {self.nframes} ({h},{w},{c})"


def read_meta_info(path: str | Path) -> list[ClipEntry]:
    """Parse a meta-info file; a malformed line raises naming file and line number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: meta-info file not found")
    entries = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        if not raw.strip():
            continue
        match = _META_LINE.match(raw.strip())
        if match is None:
            raise ValueError(
                f"{path}: line {number}: expected 'folder nframes (H,W,C)', got {raw!r}"
            )
        folder, n, h, w, c = match.groups()
        entries.append(ClipEntry(folder, int(n), (int(h), int(w), int(c))))
    if not entries:
        raise ValueError(f"{path}: meta-info file lists no clips")
    return entries


def write_meta_info(path: str | Path, entries: list[ClipEntry]) -> None:
    Path(path).write_text("".join(e.line() + "\n" for e in entries))


def frame_paths(clip_dir: str | Path) -> list[Path]:
    """Frame files of one clip folder in name order (zero-padded names sort by time)."""
    clip_dir = Path(clip_dir)
    if not clip_dir.is_dir():
        raise FileNotFoundError(f"{clip_dir}: clip folder not found")
    files = sorted(p for p in clip_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{clip_dir}: clip folder holds no PNG/TIFF frames")
    return files


def read_frame(path: str | Path) -> np.ndarray:
    """Gray frame as float32 in [0, 1]; 8-bit and 16-bit files are both accepted."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    if image.ndim == 3:
        raise ValueError(f"{path}: expected a gray frame, got {image.shape[2]} channels")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    raise ValueError(f"{path}: unsupported pixel type {image.dtype}")


def write_frame(path: str | Path, image: np.ndarray, *, bits: int = 16) -> None:
    """Write a float [0, 1] gray frame as an 8- or 16-bit PNG."""
    import cv2

    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    peak, dtype = (255.0, np.uint8) if bits == 8 else (65535.0, np.uint16)
    data = np.round(np.clip(image, 0.0, 1.0) * peak).astype(dtype)
    if not cv2.imwrite(str(path), data):
        raise OSError(f"{path}: could not write frame")
