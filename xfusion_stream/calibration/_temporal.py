"""Temporal calibration: which Shimadzu (LR) and Phantom (HR) frames feed each output.

The cameras share no clock. The Phantom flags with ``E`` the frames it exposed while
the Shimadzu trigger was active, so the first E frame and Shimadzu frame 1 mark the
same instant: Phantom times are taken relative to the first E frame, Shimadzu times
relative to frame 1. Two traverse modes (DESIGN.md):

* continuous: one window per Shimadzu frame ``s`` with ``e_first <= t_s < e_last``;
  LR = (s-1, s, s+1) clamped, HR = (last E frame at or before t_s, first E after it).
* double: E frames inside the Shimadzu span are matched to the Shimadzu frame within
  ``tolerance_ns``; matches must be consecutive Phantom frames; the i-th of n matches
  (1 <= i <= n-2) holds its Phantom frame out as ground truth with HR = matches i-1
  and i+1 (spacing doubled) and LR around its Shimadzu frame.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import CalibrationError
from ..recorded import PhantomTiming, ShimadzuTiming, parse_rec_speed

__all__ = [
    "Window",
    "PairingTable",
    "pairing_table",
    "frame_time_ns",
    "MODES",
]

MODES = ("continuous", "double")
_CSV_FIELDS = (
    "index",
    "traverse_mode",
    "shimadzu_index",
    "shimadzu_time_ns",
    "lr_prev",
    "lr_centre",
    "lr_next",
    "hr_before",
    "hr_after",
    "truth",
)


@dataclass(frozen=True)
class Window:
    """One fused output: LR Shimadzu positions and HR Phantom positions (0-based)."""

    index: int
    traverse_mode: str
    shimadzu_index: int
    shimadzu_time_ns: int
    lr: tuple[int, int, int]
    hr: tuple[int, int]
    truth: int | None = None

    def as_row(self) -> dict:
        return {
            "index": self.index,
            "traverse_mode": self.traverse_mode,
            "shimadzu_index": self.shimadzu_index,
            "shimadzu_time_ns": self.shimadzu_time_ns,
            "lr_prev": self.lr[0],
            "lr_centre": self.lr[1],
            "lr_next": self.lr[2],
            "hr_before": self.hr[0],
            "hr_after": self.hr[1],
            "truth": self.truth,
        }


@dataclass(frozen=True)
class PairingTable:
    """All windows of one recording in one traverse mode, in output order."""

    traverse_mode: str
    windows: tuple[Window, ...]

    def __len__(self) -> int:
        return len(self.windows)

    def as_rows(self) -> list[dict]:
        return [w.as_row() for w in self.windows]

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=_CSV_FIELDS)
            writer.writeheader()
            for row in self.as_rows():
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return path

    @classmethod
    def from_csv(cls, path: str | Path) -> PairingTable:
        with Path(path).open(newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise CalibrationError(f"{path}: pairing table has no rows")
        windows = []
        for row in rows:
            try:
                windows.append(_window_from_row(row))
            except (KeyError, TypeError, ValueError) as exc:
                raise CalibrationError(f"{path}: row {row}: {exc}") from None
        return cls(windows[0].traverse_mode, tuple(windows))


def _window_from_row(row: dict) -> Window:
    def num(key: str) -> int:
        return int(row[key])

    return Window(
        index=num("index"),
        traverse_mode=check_mode(row["traverse_mode"]),
        shimadzu_index=num("shimadzu_index"),
        shimadzu_time_ns=num("shimadzu_time_ns"),
        lr=(num("lr_prev"), num("lr_centre"), num("lr_next")),
        hr=(num("hr_before"), num("hr_after")),
        truth=num("truth") if row.get("truth") not in (None, "") else None,
    )


def check_mode(traverse_mode: str) -> str:
    if traverse_mode not in MODES:
        raise CalibrationError(f"traverse mode {traverse_mode!r} is not one of {MODES}")
    return traverse_mode


def frame_time_ns(value: int | np.integer | str) -> int:
    """Shimadzu frame time as whole ns from an int or text such as ``'200ns'``."""
    if isinstance(value, str):
        try:
            return parse_rec_speed(value)
        except ValueError as exc:
            raise CalibrationError(f"Shimadzu frame time: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise CalibrationError(
            f"Shimadzu frame time {value!r} is not a positive whole number of ns"
        )
    return int(value)


def check_gamma(gamma: float) -> None:
    if gamma != 0:
        raise CalibrationError(f"Phantom Gamma is {gamma:g}; pairing needs linear frames (Gamma 0)")


def check_tolerance(tolerance_ns: int) -> int:
    if isinstance(tolerance_ns, bool) or not isinstance(tolerance_ns, (int, np.integer)):
        raise CalibrationError(f"tolerance_ns {tolerance_ns!r} is not an integer")
    if tolerance_ns < 0:
        raise CalibrationError(f"tolerance_ns {tolerance_ns} is negative")
    return int(tolerance_ns)


def check_rates(shimadzu_step_ns: float, phantom_step_ns: float, what: str) -> None:
    """The method assumes several Shimadzu frames per Phantom frame."""
    if shimadzu_step_ns >= phantom_step_ns:
        raise CalibrationError(
            f"Shimadzu is not faster than the Phantom ({what}: Shimadzu frame "
            f"{shimadzu_step_ns:g} ns >= Phantom frame {phantom_step_ns:g} ns)"
        )


def check_matching_tolerance(tolerance_ns: int, shimadzu_step_ns: float) -> None:
    if 2 * tolerance_ns >= shimadzu_step_ns:
        raise CalibrationError(
            f"tolerance_ns {tolerance_ns} is at least half the Shimadzu frame "
            f"({shimadzu_step_ns:g} ns): a Phantom frame could match two Shimadzu frames"
        )


def clamped_lr(s: int, n: int) -> tuple[int, int, int]:
    return (max(s - 1, 0), s, min(s + 1, n - 1))


def non_consecutive_error(previous: int, position: int) -> CalibrationError:
    return CalibrationError(
        f"double mode: matched Phantom frames are not consecutive (position {previous} "
        f"then {position}); E frames in between found no Shimadzu frame within tolerance"
    )


def too_few_matches_error(n: int) -> CalibrationError:
    return CalibrationError(
        f"double mode: {n} Phantom frame(s) matched a Shimadzu frame; need at least 3"
    )


def no_e_frames_error() -> CalibrationError:
    return CalibrationError("no E-flagged Phantom frame: the Shimadzu trigger was never seen")


def no_windows_error() -> CalibrationError:
    return CalibrationError(
        "continuous mode: no Shimadzu frame lies between the first and last E-flagged "
        "Phantom frames"
    )


def _checked_inputs(
    phantom: PhantomTiming, shimadzu: ShimadzuTiming, tolerance_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    check_gamma(phantom.gamma)
    frame_ns = frame_time_ns(shimadzu.frame_ns)
    p_times = np.asarray(phantom.times_ns, dtype=np.int64)
    flags = np.asarray(phantom.e_flags, dtype=bool)
    s_times = np.asarray(shimadzu.times_ns, dtype=np.int64)
    if p_times.shape != flags.shape or np.any(np.diff(p_times) <= 0):
        raise CalibrationError("Phantom times must be strictly increasing, one per E flag")
    if s_times.size == 0 or np.any(np.diff(s_times) <= 0):
        raise CalibrationError("Shimadzu times must be strictly increasing and not empty")
    e_pos = np.flatnonzero(flags)
    if e_pos.size == 0:
        raise no_e_frames_error()
    if not phantom.frame_rate_hz > 0:
        raise CalibrationError(f"Phantom frame rate {phantom.frame_rate_hz!r} is not > 0")
    check_rates(frame_ns, 1e9 / phantom.frame_rate_hz, "declared")
    e_times = p_times[e_pos] - p_times[e_pos[0]]
    s_times = s_times - s_times[0]
    if s_times.size > 1 and e_times.size > 1:
        check_rates(float(s_times[1]), float(e_times[1]), "observed")
    return e_pos, e_times, s_times


def pairing_table(
    phantom: PhantomTiming,
    shimadzu: ShimadzuTiming,
    traverse_mode: str,
    tolerance_ns: int = 10,
) -> PairingTable:
    """The pairing table of a whole recording (file path; see :class:`StreamingPairer`)."""
    check_mode(traverse_mode)
    tolerance_ns = check_tolerance(tolerance_ns)
    e_pos, e_times, s_times = _checked_inputs(phantom, shimadzu, tolerance_ns)
    if traverse_mode == "continuous":
        windows = _continuous(e_pos, e_times, s_times)
    else:
        check_matching_tolerance(tolerance_ns, shimadzu.frame_ns)
        if s_times.size > 1:
            check_matching_tolerance(tolerance_ns, float(s_times[1]))
        windows = _double(e_pos, e_times, s_times, tolerance_ns)
    return PairingTable(traverse_mode, tuple(windows))


def _continuous(e_pos: np.ndarray, e_times: np.ndarray, s_times: np.ndarray) -> list[Window]:
    n = int(s_times.size)
    windows: list[Window] = []
    for s in range(n):
        t = int(s_times[s])
        if t < e_times[0] or t >= e_times[-1]:
            continue
        after = int(np.searchsorted(e_times, t, side="right"))
        hr = (int(e_pos[after - 1]), int(e_pos[after]))
        windows.append(Window(len(windows), "continuous", s, t, clamped_lr(s, n), hr))
    if not windows:
        raise no_windows_error()
    return windows


def _double(
    e_pos: np.ndarray, e_times: np.ndarray, s_times: np.ndarray, tolerance_ns: int
) -> list[Window]:
    n = int(s_times.size)
    lo, hi = s_times[0] - tolerance_ns, s_times[-1] + tolerance_ns
    matches: list[tuple[int, int]] = []  # (Phantom position, Shimadzu position)
    for p, e in zip(e_pos, e_times):
        if e < lo or e > hi:
            continue
        s = int(np.argmin(np.abs(s_times - e)))
        if abs(int(s_times[s]) - int(e)) > tolerance_ns:
            continue
        if matches and int(p) != matches[-1][0] + 1:
            raise non_consecutive_error(matches[-1][0], int(p))
        matches.append((int(p), s))
    if len(matches) < 3:
        raise too_few_matches_error(len(matches))
    return [double_window(i, matches, s_times, n) for i in range(1, len(matches) - 1)]


def double_window(
    i: int, matches: list[tuple[int, int]], s_times: np.ndarray | list[int], n: int
) -> Window:
    """Window of the i-th match (1 <= i <= len(matches) - 2)."""
    p, s = matches[i]
    return Window(
        index=i - 1,
        traverse_mode="double",
        shimadzu_index=s,
        shimadzu_time_ns=int(s_times[s]),
        lr=clamped_lr(s, n),
        hr=(matches[i - 1][0], matches[i + 1][0]),
        truth=p,
    )
