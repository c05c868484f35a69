"""Phantom TMX7510 XML header: frame rate, gamma and the per-frame time block.

Real exports differ in small ways (``Frame``/``frame`` attributes, namespaces, extra
elements, BOMs, CRLF, negative pre-trigger frame numbers); the reader accepts all of
that and rejects only what would make the frame times wrong.
"""

from __future__ import annotations

import datetime as _dt
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from ..core import RecordedFormatError
from ._shimadzu_ini import first_step_off

__all__ = [
    "PhantomTiming",
    "read_phantom_xml",
    "parse_phantom_time",
    "parse_phantom_date",
    "format_phantom_time",
    "format_phantom_date",
    "phantom_xml_text",
]

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})\.(\d{3})\s+(\d{3})\.(\d{2})(?:\s+(E))?$")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE_RE = re.compile(r"^([A-Za-z]{3})\s+([A-Za-z]{3})\s+(\d{1,2})\s+(\d{4})$")
_NS_PER_DAY = 86_400 * 10**9
#: Frame rates a high-speed camera can declare (Hz); outside them a frame time is
#: nonsense (0.5 Hz) or not a number the arithmetic can hold (1e-300 Hz: infinite ns).
FRAME_RATE_RANGE = (1.0, 1e9)
#: Cine frame numbers are 32-bit; beyond that a number is corrupt, not a frame.
_FRAME_NUMBER_MAX = 2**31 - 1


@dataclass(frozen=True)
class PhantomTiming:
    """Per-frame times of one Phantom recording, in XML element (= file) order.

    ``times_ns`` is relative to the first E-flagged frame (the first frame the Phantom
    exposed while the Shimadzu trigger was active), so pre-trigger frames are negative.
    """

    frame_numbers: np.ndarray
    times_ns: np.ndarray
    e_flags: np.ndarray
    frame_rate_hz: float
    gamma: float
    dates: tuple[str, ...] | None = None

    @property
    def n_frames(self) -> int:
        return int(self.times_ns.shape[0])

    @property
    def period_ns(self) -> float:
        return 1e9 / self.frame_rate_hz


def parse_phantom_time(text: str) -> tuple[int, bool]:
    """``'16:44:12.729 496.56 E'`` -> (ns since midnight, E flag).

    The fractional digits ``729`` + ``49656`` concatenated are units of 10 ns.
    Raises ``ValueError`` on anything else.
    """
    m = _TIME_RE.match(text.strip())
    if m is None:
        raise ValueError(f"time text {text!r} is not 'HH:MM:SS.mmm uuu.uu[ E]'")
    hh, mm, ss = int(m[1]), int(m[2]), int(m[3])
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError(f"time text {text!r} has an out-of-range hour/minute/second")
    tens_of_ns = int(m[4] + m[5] + m[6])
    return (hh * 3600 + mm * 60 + ss) * 10**9 + tens_of_ns * 10, m[7] is not None


def format_phantom_time(ns_of_day: int, e_flag: bool) -> str:
    """Inverse of :func:`parse_phantom_time` (``ns_of_day`` must be a multiple of 10)."""
    if ns_of_day % 10 or not 0 <= ns_of_day < _NS_PER_DAY:
        raise ValueError(f"time of day {ns_of_day} ns is not a multiple of 10 ns within a day")
    seconds, rest = divmod(ns_of_day, 10**9)
    hh, rem = divmod(seconds, 3600)
    mm, ss = divmod(rem, 60)
    frac = f"{rest // 10:08d}"
    text = f"{hh:02d}:{mm:02d}:{ss:02d}.{frac[:3]} {frac[3:6]}.{frac[6:]}"
    return text + " E" if e_flag else text


def parse_phantom_date(text: str) -> _dt.date:
    """``'Tue Oct 24 2023'`` -> date (locale independent). Raises ``ValueError``."""
    m = _DATE_RE.match(text.strip())
    if m is None:
        raise ValueError(f"date text {text!r} is not 'Www Mon DD YYYY'")
    weekday, month = m[1].capitalize(), m[2].capitalize()
    if weekday not in _WEEKDAYS or month not in _MONTHS:
        raise ValueError(f"date text {text!r} has an unknown weekday or month name")
    return _dt.date(int(m[4]), _MONTHS.index(month) + 1, int(m[3]))


def format_phantom_date(day: _dt.date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {_MONTHS[day.month - 1]} {day.day:02d} {day.year}"


def _local(tag: object) -> str:
    """Element name without an XML namespace."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _frame_attr(elem: ET.Element) -> str | None:
    for key, value in elem.attrib.items():
        if _local(key).lower() == "frame":
            return value
    return None


def _find_one(root: ET.Element, name: str, path: Path) -> ET.Element:
    found = [e for e in root.iter() if _local(e.tag) == name]
    if not found:
        raise RecordedFormatError(path, name, "element missing")
    if len(found) > 1:
        raise RecordedFormatError(path, name, f"{len(found)} elements, expected one")
    return found[0]


def _setup_float(setup: ET.Element, name: str, path: Path) -> float:
    # a direct child wins over a same-named element nested in a sub-block
    values = [e for e in setup if _local(e.tag) == name]
    values += [e for e in setup.iter() if _local(e.tag) == name and e not in values]
    if not values:
        raise RecordedFormatError(path, f"CameraSetup/{name}", "element missing")
    text = (values[0].text or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise RecordedFormatError(
            path, f"CameraSetup/{name}", f"{text!r} is not a number"
        ) from None
    if not np.isfinite(value):
        raise RecordedFormatError(path, f"CameraSetup/{name}", f"{text!r} is not finite")
    return value


class _EntityDeclared(Exception):
    pass


def _refuse_entity(*_: object) -> None:
    raise _EntityDeclared


def _refuse_entities(data: bytes) -> None:
    """A first pass of expat that stops at the first entity declaration, before any use
    of it (malformed XML passes here and is reported by the real parse)."""
    parser = expat.ParserCreate()
    parser.EntityDeclHandler = _refuse_entity
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        pass


def _parse_root(path: Path) -> ET.Element:
    if not path.is_file():  # a FIFO named *.xml would block the reader for ever
        raise RecordedFormatError(path, "file", "not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordedFormatError(path, "file", f"cannot read: {exc}") from None
    try:
        _refuse_entities(data)  # in any encoding (UTF-16 hides the bytes b"<!ENTITY")
        return ET.fromstring(data)
    except _EntityDeclared:
        raise RecordedFormatError(
            path, "DOCTYPE", "XML entity declarations are not accepted"
        ) from None
    except ET.ParseError as exc:
        raise RecordedFormatError(path, "XML", f"not well-formed: {exc}") from None
    except (LookupError, ValueError) as exc:  # an encoding Python does not know, ...
        raise RecordedFormatError(path, "XML", f"cannot be decoded: {exc}") from None


def _time_block(root: ET.Element, path: Path) -> tuple[list[ET.Element], list[ET.Element]]:
    """Time and Date elements under every TIMEBLOCK, at any depth, in document order."""
    blocks = [e for e in root.iter() if _local(e.tag) == "TIMEBLOCK"]
    if not blocks:
        raise RecordedFormatError(path, "TIMEBLOCK", "element missing")
    times: list[ET.Element] = []
    dates: list[ET.Element] = []
    for block in blocks:
        for e in block.iter():
            name = _local(e.tag)
            if name == "Time":
                times.append(e)
            elif name == "Date":
                dates.append(e)
    if not times:
        raise RecordedFormatError(path, "TIMEBLOCK/Time", "no Time elements")
    return times, dates


def _frame_number(elem: ET.Element, field: str, path: Path) -> int:
    raw = _frame_attr(elem)
    if raw is None:
        raise RecordedFormatError(path, field, "Frame attribute missing")
    try:
        number = int(raw.strip())
    except ValueError:
        raise RecordedFormatError(
            path, field, f"Frame attribute {raw!r} is not an integer"
        ) from None
    if abs(number) > _FRAME_NUMBER_MAX:
        raise RecordedFormatError(
            path, field, f"Frame attribute {raw.strip()[:40]!r} is out of a cine's range"
        )
    return number


def _dates_by_frame(dates: list[ET.Element], path: Path) -> dict[int, tuple[str, _dt.date]]:
    out: dict[int, tuple[str, _dt.date]] = {}
    for e in dates:
        number = _frame_number(e, "TIMEBLOCK/Date", path)
        text = (e.text or "").strip()
        try:
            out[number] = (text, parse_phantom_date(text))
        except ValueError as exc:
            raise RecordedFormatError(path, f"TIMEBLOCK/Date[Frame={number}]", str(exc)) from None
    return out


def _first_day(date_map: dict[int, tuple[str, _dt.date]], path: Path) -> int:
    """The ordinal of the earliest date; the dates may span midnight once, no more (a
    cine lasts seconds to minutes; years apart overflow the nanosecond clock)."""
    days = {number: day.toordinal() for number, (_, day) in date_map.items()}
    if days and max(days.values()) - min(days.values()) > 1:
        late = max(days, key=days.__getitem__)
        raise RecordedFormatError(
            path,
            f"TIMEBLOCK/Date[Frame={late}]",
            f"dates span {max(days.values()) - min(days.values())} days; one recording "
            "spans at most one midnight",
        )
    return min(days.values(), default=0)


def read_phantom_xml(path: str | Path) -> PhantomTiming:
    """Read and validate a Phantom XML header; times relative to the first E frame."""
    path = Path(path)
    root = _parse_root(path)
    setup = _find_one(root, "CameraSetup", path)
    rate = _setup_float(setup, "FrameRateDouble", path)
    if rate <= 0:
        raise RecordedFormatError(path, "CameraSetup/FrameRateDouble", f"{rate} is not > 0")
    if not FRAME_RATE_RANGE[0] <= rate <= FRAME_RATE_RANGE[1]:
        low, high = FRAME_RATE_RANGE
        raise RecordedFormatError(
            path, "CameraSetup/FrameRateDouble", f"{rate:g} Hz is outside {low:g}-{high:g} Hz"
        )
    gamma = _setup_float(setup, "Gamma", path)
    if gamma != 0:
        raise RecordedFormatError(
            path, "CameraSetup/Gamma", f"is {gamma:g}; must be 0 (linear intensities)"
        )
    time_elems, date_elems = _time_block(root, path)
    date_map = _dates_by_frame(date_elems, path)
    first_day = _first_day(date_map, path)
    numbers, abs_ns, flags, date_texts = [], [], [], []
    for e in time_elems:
        number = _frame_number(e, "TIMEBLOCK/Time", path)
        field = f"TIMEBLOCK/Time[Frame={number}]"
        try:
            ns_of_day, flag = parse_phantom_time(e.text or "")
        except ValueError as exc:
            raise RecordedFormatError(path, field, str(exc)) from None
        if date_map:
            if number not in date_map:
                raise RecordedFormatError(path, f"TIMEBLOCK/Date[Frame={number}]", "missing")
            text, day = date_map[number]
            ns_of_day += (day.toordinal() - first_day) * _NS_PER_DAY
            date_texts.append(text)
        numbers.append(number)
        abs_ns.append(ns_of_day)
        flags.append(flag)
    return _timing_from_absolute(
        path, numbers, abs_ns, flags, rate, gamma, tuple(date_texts) if date_map else None
    )


def _check_e_steps(
    path: Path, numbers: list[int], times: np.ndarray, flagged: np.ndarray, rate: float
) -> None:
    """Consecutive E frames lie one declared frame time apart (``first_step_off``):
    a rate written in other units, or a date that jumps a day, would otherwise pair
    Shimadzu frames with the wrong Phantom frames, silently."""
    period = 1e9 / rate
    steps = np.diff(times[flagged])
    j = first_step_off(steps, period)
    if j is not None:
        raise RecordedFormatError(
            path,
            f"TIMEBLOCK/Time[Frame={numbers[int(flagged[j + 1])]}]",
            f"{int(steps[j])} ns after the previous E frame, but FrameRateDouble "
            f"{rate:g} Hz says {period:.0f} ns",
        )


def _timing_from_absolute(
    path: Path,
    numbers: list[int],
    abs_ns: list[int],
    flags: list[bool],
    rate: float,
    gamma: float,
    dates: tuple[str, ...] | None,
) -> PhantomTiming:
    frame_numbers = np.asarray(numbers, dtype=np.int64)
    if np.any(np.diff(frame_numbers) <= 0):
        k = int(np.argmax(np.diff(frame_numbers) <= 0)) + 1
        raise RecordedFormatError(
            path, f"TIMEBLOCK/Time[Frame={numbers[k]}]", "frame numbers are not increasing"
        )
    times = np.asarray(abs_ns, dtype=np.int64)
    if dates is None:  # no dates: a step back of over 12 h is a midnight rollover
        times = times + np.cumsum(np.r_[0, np.diff(times) < -_NS_PER_DAY // 2]) * _NS_PER_DAY
    if np.any(np.diff(times) <= 0):
        k = int(np.argmax(np.diff(times) <= 0)) + 1
        raise RecordedFormatError(
            path, f"TIMEBLOCK/Time[Frame={numbers[k]}]", "time is not after the previous frame"
        )
    e_flags = np.asarray(flags, dtype=bool)
    if not e_flags.any():
        raise RecordedFormatError(
            path, "TIMEBLOCK/Time", "no frame is E-flagged (the Shimadzu trigger was never seen)"
        )
    flagged = np.flatnonzero(e_flags)
    if flagged[-1] - flagged[0] + 1 != flagged.size:  # the trigger is seen once, in one run
        k = int(flagged[np.flatnonzero(np.diff(flagged) != 1)[0] + 1])
        raise RecordedFormatError(
            path,
            f"TIMEBLOCK/Time[Frame={numbers[k]}]",
            "E-flagged frames are not one unbroken run: time zero (the first E frame) "
            "would be ambiguous",
        )
    _check_e_steps(path, numbers, times, flagged, rate)
    times = times - times[int(flagged[0])]
    return PhantomTiming(frame_numbers, times, e_flags, float(rate), float(gamma), dates)


def phantom_xml_text(
    frame_numbers: Sequence[int] | np.ndarray,
    times_ns: Sequence[int] | np.ndarray,
    e_flags: Sequence[bool] | np.ndarray,
    frame_rate_hz: float,
    start: _dt.datetime,
    *,
    image_shape: tuple[int, int] = (0, 0),
) -> str:
    """The XML a Phantom export would hold; times are ``start`` + ``times_ns`` (10 ns)."""
    origin = (start.toordinal() * 86_400 + start.hour * 3600 + start.minute * 60) * 10**9
    origin += start.second * 10**9 + start.microsecond * 1000
    n = len(frame_numbers)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<chd>",
        "  <CineFileHeader>",
        f"    <FirstImageNo>{int(frame_numbers[0]) if n else 0}</FirstImageNo>",
        f"    <ImageCount>{n}</ImageCount>",
        "  </CineFileHeader>",
        "  <BitmapInfoHeader>",
        f"    <biWidth>{image_shape[1]}</biWidth>",
        f"    <biHeight>{image_shape[0]}</biHeight>",
        "    <biBitCount>16</biBitCount>",
        "  </BitmapInfoHeader>",
        "  <CameraSetup>",
        f"    <FrameRate>{int(round(frame_rate_hz))}</FrameRate>",
        f"    <FrameRateDouble>{float(frame_rate_hz)!r}</FrameRateDouble>",
        "    <Gamma>0</Gamma>",
        f"    <CameraModel>{escape('Phantom TMX 7510')}</CameraModel>",
        "  </CameraSetup>",
        "  <TIMEBLOCK>",
    ]
    for number, t, flag in zip(frame_numbers, times_ns, e_flags):
        absolute = origin + (int(t) + 5) // 10 * 10
        day, ns_of_day = divmod(absolute, _NS_PER_DAY)
        date = format_phantom_date(_dt.date.fromordinal(day))
        lines.append(f'    <Date frame="{int(number)}">{date}</Date>')
        time = format_phantom_time(ns_of_day, bool(flag))
        lines.append(f'    <Time frame="{int(number)}">{time}</Time>')
    lines += ["  </TIMEBLOCK>", "</chd>", ""]
    return "\n".join(lines)
