"""Shimadzu HPV-X2 INI: frame time (``RecSpeed``), frame count and per-frame times."""

from __future__ import annotations

import configparser
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import RecordedFormatError

__all__ = ["ShimadzuTiming", "read_shimadzu_ini", "shimadzu_ini_text", "parse_rec_speed"]

_SPEED_RE = re.compile(r"^([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)$")
_RELATIVE_RE = re.compile(r"^(-?[0-9]+(?:\.[0-9]*)?)\s*(ns)?$", re.IGNORECASE)
_IMAGE_SECTION_RE = re.compile(r"^IMAGE_INFO_(\d+)$")
#: The longest frame time an ultra-high-speed camera declares (1 s, in ns); the HPV-X2's
#: is at most milliseconds, and 1e400 is not a number the arithmetic can hold.
REC_SPEED_MAX_NS = 10**9
#: Frame times further than this from frame 1 (1000 s, in ns) are corrupt: a burst of
#: 256 frames lasts well under a second.
_RELATIVE_MAX_NS = 10**12


@dataclass(frozen=True)
class ShimadzuTiming:
    """Frame time and per-frame times (ns relative to frame 1) of one Shimadzu burst."""

    frame_ns: int
    n_frames: int
    times_ns: np.ndarray


def parse_rec_speed(text: str) -> int:
    """``'200ns'`` -> 200. Any unit other than ns raises ``ValueError``."""
    m = _SPEED_RE.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a number followed by a unit, e.g. '200ns'")
    unit = m[2].lower()
    if unit != "ns":
        raise ValueError(f"{text!r}: unit {m[2] or '(none)'!r} is not ns")
    value = float(m[1])
    if not 0 < value <= REC_SPEED_MAX_NS or value != int(value):
        raise ValueError(
            f"{text.strip()[:40]!r} is not a whole number of ns in 1-{REC_SPEED_MAX_NS}"
        )
    return int(value)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp932", errors="replace")  # Shimadzu software is Japanese


def _load(path: Path) -> configparser.ConfigParser:
    if not path.is_file():  # a FIFO named *.ini would block the reader for ever
        raise RecordedFormatError(path, "file", "not a regular file")
    try:
        text = "\n".join(_decode(path.read_bytes()).splitlines())
    except OSError as exc:
        raise RecordedFormatError(path, "file", f"cannot read: {exc}") from None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise RecordedFormatError(path, "INI", f"not a valid INI file: {first}") from None
    return parser


def _get(parser: configparser.ConfigParser, path: Path, section: str, key: str) -> str:
    if not parser.has_section(section):
        raise RecordedFormatError(path, f"[{section}]", "section missing")
    if not parser.has_option(section, key):
        raise RecordedFormatError(path, f"{section}/{key}", "key missing")
    return parser.get(section, key).strip()


def _image_relative(parser: configparser.ConfigParser, path: Path, n: int) -> np.ndarray:
    numbers = sorted(
        int(m[1]) for s in parser.sections() if (m := _IMAGE_SECTION_RE.match(s)) is not None
    )
    if numbers and numbers[0] < 1:
        raise RecordedFormatError(
            path, f"IMAGE_INFO_{numbers[0]}", "unexpected section (frames count from 1)"
        )
    if numbers != list(range(1, len(numbers) + 1)):
        # the first gap, looked for among as many numbers as there are sections (a
        # section numbered 10**12 must not make a set of 10**12 numbers)
        present = set(numbers)
        first = next(i for i in range(1, len(numbers) + 2) if i not in present)
        raise RecordedFormatError(path, f"IMAGE_INFO_{first}", "section missing or duplicated")
    if len(numbers) != n:
        raise RecordedFormatError(
            path, "REC_INFO/RecFrame", f"is {n} but there are {len(numbers)} IMAGE_INFO sections"
        )
    times = []
    for i in numbers:
        field = f"IMAGE_INFO_{i}/ImageRelative"
        text = _get(parser, path, f"IMAGE_INFO_{i}", "ImageRelative")
        m = _RELATIVE_RE.match(text)
        if m is None or not np.isfinite(float(m[1])) or float(m[1]) != int(float(m[1])):
            raise RecordedFormatError(path, field, f"{text[:40]!r} is not a whole number of ns")
        if abs(float(m[1])) > _RELATIVE_MAX_NS:
            raise RecordedFormatError(
                path, field, f"{text[:40]!r} ns is more than 1e12 ns from frame 1"
            )
        times.append(int(float(m[1])))
    out = np.asarray(times, dtype=np.int64)
    if out.size:
        out = out - out[0]
    bad = np.flatnonzero(np.diff(out) <= 0)
    if bad.size:
        raise RecordedFormatError(
            path, f"IMAGE_INFO_{bad[0] + 2}/ImageRelative", "time is not after the previous frame"
        )
    return out


def read_shimadzu_ini(path: str | Path) -> ShimadzuTiming:
    """Read and validate a Shimadzu INI; ``RecSpeed`` must be in ns."""
    path = Path(path)
    parser = _load(path)
    speed = _get(parser, path, "REC_INFO", "RecSpeed")
    try:
        frame_ns = parse_rec_speed(speed)
    except ValueError as exc:
        raise RecordedFormatError(path, "REC_INFO/RecSpeed", str(exc)) from None
    count_text = _get(parser, path, "REC_INFO", "RecFrame")
    try:
        n = int(count_text)
    except ValueError:
        raise RecordedFormatError(
            path, "REC_INFO/RecFrame", f"{count_text!r} is not an integer"
        ) from None
    if n < 1:
        raise RecordedFormatError(path, "REC_INFO/RecFrame", f"{n} frames; need at least 1")
    times = _image_relative(parser, path, n)
    _check_steps(times, frame_ns, path)
    return ShimadzuTiming(frame_ns, n, times)


#: How far one frame-to-frame step may stray from the declared frame time (a factor):
#: a camera's clock does not; a corrupt field or a frame time in other units does.
STEP_TOLERANCE = (0.5, 1.5)


def first_step_off(steps: np.ndarray, period_ns: float) -> int | None:
    """The index of the first frame-to-frame step outside STEP_TOLERANCE of the declared
    frame time, else None (the Shimadzu's and the Phantom's checks share the rule)."""
    low, high = STEP_TOLERANCE
    bad = np.flatnonzero((steps < low * period_ns) | (steps > high * period_ns))
    return int(bad[0]) if bad.size else None


def _check_steps(times: np.ndarray, frame_ns: int, path: Path) -> None:
    steps = np.diff(times)
    k = first_step_off(steps, frame_ns)
    if k is not None:
        raise RecordedFormatError(
            path,
            f"IMAGE_INFO_{k + 2}/ImageRelative",  # sections count from 1
            f"{int(steps[k])} ns after the previous frame, but RecSpeed says {frame_ns} ns",
        )


def shimadzu_ini_text(times_ns: Sequence[int] | np.ndarray, frame_ns: int) -> str:
    """The INI a Shimadzu export would hold (CRLF line ends, as Windows writes them)."""
    lines = [
        "[REC_INFO]",
        "CameraName=HPV-X2",
        f"RecSpeed={int(frame_ns)}ns",
        f"RecFrame={len(times_ns)}",
        "",
    ]
    origin = int(times_ns[0]) if len(times_ns) else 0
    for i, t in enumerate(times_ns, start=1):
        lines += [f"[IMAGE_INFO_{i}]", f"ImageRelative={int(t) - origin}", ""]
    return "\r\n".join(lines)
