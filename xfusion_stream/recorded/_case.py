"""A recorded dual-camera experiment folder (the original's "actual" data layout).

```
<case>/
  <name>.ini                       Shimadzu INI (exactly one)
  TIFF16/<one subdir>/*.tif(f)     Shimadzu frames, uint16, RecFrame of them
  <phantom folder>/<name>.xml      Phantom XML (exactly one)
  <phantom folder>/img_{idx:06d}.tif(f)   Phantom frames in XML element order
```
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import RecordedFormatError
from ._frames import frame_header, write_frame
from ._phantom_xml import PhantomTiming, phantom_xml_text, read_phantom_xml
from ._shimadzu_ini import ShimadzuTiming, read_shimadzu_ini, shimadzu_ini_text

__all__ = ["RecordedCase", "read_case", "write_case", "DEFAULT_START"]

DEFAULT_START = _dt.datetime(2023, 10, 24, 16, 44, 12, 729496)
_PHANTOM_FILE_RE = re.compile(r"^img_(-?\d+)\.tiff?$", re.IGNORECASE)
_TRAILING_NUMBER_RE = re.compile(r"(\d+)$")
_TIFF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class RecordedCase:
    """Everything a recorded case holds, validated; frames stay on disk until read."""

    path: Path
    phantom_xml: Path
    phantom_frames: tuple[Path, ...]
    phantom: PhantomTiming
    shimadzu_ini: Path
    shimadzu_frames: tuple[Path, ...]
    shimadzu: ShimadzuTiming
    phantom_shape: tuple[int, int] = (0, 0)
    shimadzu_shape: tuple[int, int] = (0, 0)


def _visible(entries: Iterable[Path]) -> list[Path]:
    return sorted(p for p in entries if not p.name.startswith("."))


def _natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _exactly_one(found: list[Path], where: Path, field: str, what: str) -> Path:
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise RecordedFormatError(where, field, f"expected exactly one {what}, found {names}")
    return found[0]


def _shimadzu_files(case: Path) -> list[Path]:
    tiff16 = [p for p in _visible(case.iterdir()) if p.is_dir() and p.name.upper() == "TIFF16"]
    root = _exactly_one(tiff16, case, "TIFF16", "TIFF16 folder")
    sub = _exactly_one(
        [p for p in _visible(root.iterdir()) if p.is_dir()], root, "TIFF16/<subdir>", "subfolder"
    )
    files = [p for p in _visible(sub.iterdir()) if p.suffix.lower() in _TIFF_SUFFIXES]
    if not files:
        raise RecordedFormatError(sub, "TIFF16 frames", "no .tif/.tiff files")
    return sorted(files, key=_natural_key)


def _phantom_folder(case: Path) -> Path:
    others = [p for p in _visible(case.iterdir()) if p.is_dir() and p.name.upper() != "TIFF16"]
    with_xml = [d for d in others if any(f.suffix.lower() == ".xml" for f in d.iterdir())]
    return _exactly_one(with_xml, case, "Phantom folder", "folder holding a Phantom XML")


def _first_gap(numbers: Sequence[int]) -> int | None:
    """Where ascending ``numbers`` first skip or repeat a number (the index), else None."""
    steps = np.diff(np.asarray(numbers, dtype=np.int64))
    bad = np.flatnonzero(steps != 1)
    return int(bad[0]) + 1 if bad.size else None


def _check_shimadzu_numbering(files: Sequence[Path]) -> None:
    """Files numbered by their names' trailing digits count up by one: with one frame
    missing and another added past the end, the count still matches RecFrame and every
    later frame would be paired with its neighbour's time."""
    found = [_TRAILING_NUMBER_RE.search(f.stem) for f in files]
    numbers = [int(m[1]) for m in found if m is not None]
    if len(numbers) < len(files) or len(set(numbers)) < len(numbers):
        # names without a frame number last (or one shared by all, e.g. ..._cam1): their
        # order is all there is to check
        return
    gap = _first_gap(numbers)
    if gap is not None:
        raise RecordedFormatError(
            files[gap], "Shimadzu frames", f"numbering jumps from {files[gap - 1].name}"
        )


def _check_phantom_numbering(files: Sequence[Path], timing: PhantomTiming, xml: Path) -> None:
    """img_NNNNNN numbers are the XML elements' order (from 0 or 1) or their Frame
    numbers; anything else means a frame is missing or out of place."""
    numbers = [int(m[1]) for f in files if (m := _PHANTOM_FILE_RE.match(f.name)) is not None]
    n = len(numbers)
    frames = [int(v) for v in timing.frame_numbers]
    if numbers in (list(range(n)), list(range(1, n + 1)), frames):
        return
    gap = _first_gap(numbers)
    where = files[gap] if gap is not None else files[0]
    raise RecordedFormatError(
        where,
        "Phantom frames",
        f"img_ numbers {numbers[0]}..{numbers[-1]} are neither 0..{n - 1} nor the Frame "
        f"numbers {frames[0]}..{frames[-1]} of {xml.name}"
        + (f" (numbering jumps from {files[gap - 1].name})" if gap is not None else ""),
    )


def _phantom_files(folder: Path) -> list[Path]:
    indexed: dict[int, Path] = {}
    for p in _visible(folder.iterdir()):
        m = _PHANTOM_FILE_RE.match(p.name)
        if m is None:
            continue
        idx = int(m[1])
        if idx in indexed:
            raise RecordedFormatError(p, "Phantom frames", f"duplicates {indexed[idx].name}")
        indexed[idx] = p
    return [indexed[k] for k in sorted(indexed)]


def _check_frames(files: Sequence[Path], camera: str) -> tuple[int, int]:
    """All frames uint16 and the same shape (TIFF headers only)."""
    first_shape: tuple[int, int] | None = None
    for f in files:
        shape, dtype = frame_header(f)
        if dtype != np.uint16:
            raise RecordedFormatError(f, f"{camera} image", f"dtype {dtype} is not uint16")
        if first_shape is None:
            first_shape = shape
        elif shape != first_shape:
            raise RecordedFormatError(
                f, f"{camera} image", f"shape {shape} differs from {files[0].name} {first_shape}"
            )
    if first_shape is None:
        raise RecordedFormatError("(none)", f"{camera} image", "no frames")
    return first_shape


def read_case(case_dir: str | Path) -> RecordedCase:
    """Find, read and cross-check both cameras' files of one recorded case."""
    case = Path(case_dir)
    if not case.is_dir():
        raise RecordedFormatError(case, "case folder", "does not exist or is not a folder")
    ini = _exactly_one(
        [p for p in _visible(case.iterdir()) if p.is_file() and p.suffix.lower() == ".ini"],
        case,
        "Shimadzu INI",
        ".ini file",
    )
    shimadzu = read_shimadzu_ini(ini)
    shimadzu_files = _shimadzu_files(case)
    if len(shimadzu_files) != shimadzu.n_frames:
        raise RecordedFormatError(
            ini,
            "REC_INFO/RecFrame",
            f"is {shimadzu.n_frames} but {shimadzu_files[0].parent} holds "
            f"{len(shimadzu_files)} TIFF frames",
        )
    _check_shimadzu_numbering(shimadzu_files)
    folder = _phantom_folder(case)
    xml = _exactly_one(
        [p for p in _visible(folder.iterdir()) if p.suffix.lower() == ".xml"],
        folder,
        "Phantom XML",
        ".xml file",
    )
    phantom = read_phantom_xml(xml)
    phantom_files = _phantom_files(folder)
    if len(phantom_files) != phantom.n_frames:
        raise RecordedFormatError(
            xml,
            "TIMEBLOCK/Time",
            f"{phantom.n_frames} Time entries but {folder} holds "
            f"{len(phantom_files)} img_NNNNNN.tif frames",
        )
    _check_phantom_numbering(phantom_files, phantom, xml)
    return RecordedCase(
        path=case,
        phantom_xml=xml,
        phantom_frames=tuple(phantom_files),
        phantom=phantom,
        shimadzu_ini=ini,
        shimadzu_frames=tuple(shimadzu_files),
        shimadzu=shimadzu,
        phantom_shape=_check_frames(phantom_files, "Phantom"),
        shimadzu_shape=_check_frames(shimadzu_files, "Shimadzu"),
    )


def _check_times(name: str, times: np.ndarray, n: int) -> None:
    if times.shape != (n,):
        raise ValueError(f"{name} has {times.shape[0]} entries for {n} frames")
    if np.any(np.diff(times) <= 0):
        raise ValueError(f"{name} must be strictly increasing")


def _write_frames(frames: Iterable[np.ndarray], paths: Sequence[Path], camera: str) -> None:
    shape = None
    count = 0
    for count, frame in enumerate(frames, start=1):
        if count > len(paths):
            break
        frame = np.asarray(frame)
        shape = shape or frame.shape
        if frame.shape != shape:
            raise ValueError(f"{camera} frame {count - 1} has shape {frame.shape}, not {shape}")
        write_frame(paths[count - 1], frame)
    if count != len(paths):
        raise ValueError(f"got {count} {camera} frames for {len(paths)} times")


def write_case(
    case_dir: str | Path,
    *,
    phantom_frames: Iterable[np.ndarray],
    phantom_frame_numbers: Sequence[int] | np.ndarray,
    phantom_times_ns: Sequence[int] | np.ndarray,
    phantom_e_flags: Sequence[bool] | np.ndarray,
    phantom_frame_rate_hz: float,
    shimadzu_frames: Iterable[np.ndarray],
    shimadzu_times_ns: Sequence[int] | np.ndarray,
    shimadzu_frame_ns: int,
    start: _dt.datetime = DEFAULT_START,
    tiff_suffix: str = ".tif",
) -> Path:
    """Write a case in the exact layout :func:`read_case` reads (frames uint16 2-D).

    Phantom times are written as ``start`` + ``phantom_times_ns`` rounded to the 10 ns
    the XML text holds; the reader returns them relative to the first E frame, so times
    that are multiples of 10 with the first E frame at 0 round-trip exactly.
    """
    case = Path(case_dir)
    if case.exists() and any(case.iterdir()):
        raise FileExistsError(f"{case} exists and is not empty")
    if tiff_suffix.lower() not in _TIFF_SUFFIXES:
        raise ValueError(f"tiff_suffix must be .tif or .tiff, not {tiff_suffix!r}")
    numbers = np.asarray(phantom_frame_numbers, dtype=np.int64)
    p_times = np.asarray(phantom_times_ns, dtype=np.int64)
    flags = np.asarray(phantom_e_flags, dtype=bool)
    s_times = np.asarray(shimadzu_times_ns, dtype=np.int64)
    _check_times("phantom_times_ns", p_times, numbers.shape[0])
    _check_times("phantom_frame_numbers", numbers, numbers.shape[0])
    _check_times("shimadzu_times_ns", s_times, s_times.shape[0])
    if flags.shape != numbers.shape or not flags.any():
        raise ValueError("phantom_e_flags must have one flag per frame and at least one True")
    name = case.name or "case"
    phantom_dir = case / "phantom"
    shimadzu_dir = case / "TIFF16" / name
    phantom_dir.mkdir(parents=True, exist_ok=True)
    shimadzu_dir.mkdir(parents=True)
    phantom_paths = [phantom_dir / f"img_{i:06d}{tiff_suffix}" for i in range(numbers.shape[0])]
    shimadzu_paths = [
        shimadzu_dir / f"{name}_{i:06d}{tiff_suffix}" for i in range(1, s_times.shape[0] + 1)
    ]
    _write_frames(phantom_frames, phantom_paths, "Phantom")
    _write_frames(shimadzu_frames, shimadzu_paths, "Shimadzu")
    shape = frame_header(phantom_paths[0])[0]
    xml = phantom_xml_text(numbers, p_times, flags, phantom_frame_rate_hz, start, image_shape=shape)
    (phantom_dir / f"{name}.xml").write_bytes(xml.encode("utf-8"))
    (case / f"{name}.ini").write_bytes(shimadzu_ini_text(s_times, shimadzu_frame_ns).encode())
    return case
