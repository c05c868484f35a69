"""The pairing table built live, frame by frame, as the two cameras' events arrive.

Each window is emitted the moment its last needed input has arrived, so the fusion
worker can start on it while acquisition goes on. Concatenated and sorted by index,
the emitted windows equal :func:`pairing_table` on the same data, whatever the
interleaving of the two cameras (each camera's frames in time order).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from ..core import CalibrationError
from ._temporal import (
    PairingTable,
    Window,
    check_gamma,
    check_matching_tolerance,
    check_mode,
    check_rates,
    check_tolerance,
    clamped_lr,
    double_window,
    frame_time_ns,
    no_e_frames_error,
    no_windows_error,
    non_consecutive_error,
    too_few_matches_error,
)

__all__ = ["StreamingPairer"]


class StreamingPairer:
    """Incremental pairing: feed frames with ``add_phantom``/``add_shimadzu``, then ``finish``.

    Phantom times may be absolute (any clock); they are taken relative to the first
    E frame. Shimadzu times are taken relative to Shimadzu position 0. Optional
    descriptor values (``shimadzu_frame_ns``, ``phantom_frame_rate_hz``,
    ``phantom_gamma``) are checked up front, as the file path checks them.
    """

    def __init__(
        self,
        traverse_mode: str,
        *,
        tolerance_ns: int = 10,
        n_shimadzu: int | None = None,
        shimadzu_frame_ns: int | str | None = None,
        phantom_frame_rate_hz: float | None = None,
        phantom_gamma: float = 0.0,
    ) -> None:
        self.traverse_mode = check_mode(traverse_mode)
        self.tolerance_ns = check_tolerance(tolerance_ns)
        if n_shimadzu is not None and n_shimadzu < 1:
            raise CalibrationError(f"n_shimadzu {n_shimadzu} is not >= 1")
        self.n_shimadzu = n_shimadzu
        check_gamma(phantom_gamma)
        frame_ns = None if shimadzu_frame_ns is None else frame_time_ns(shimadzu_frame_ns)
        if frame_ns is not None and phantom_frame_rate_hz is not None:
            check_rates(frame_ns, 1e9 / phantom_frame_rate_hz, "declared")
        if frame_ns is not None and traverse_mode == "double":
            check_matching_tolerance(self.tolerance_ns, frame_ns)
        self._p_last: tuple[int, int] | None = None  # (position, absolute time)
        self._e_origin: int | None = None
        self._e_pos: list[int] = []
        self._e_times: list[int] = []
        self._s_origin: int | None = None
        self._s_times: list[int] = []
        self._finished = False
        self._rates_checked = False
        self._emitted: list[Window] = []
        self._next_s = 0  # continuous: next Shimadzu frame to consider
        self._next_e = 0  # double: next E frame whose match is not yet final
        self._matches: list[tuple[int, int]] = []
        self._next_i = 1  # double: next match index to emit a window for

    # -- inputs -------------------------------------------------------------------
    def add_phantom(
        self, position: int, frame_number: int, time_ns: int, e_flag: bool
    ) -> list[Window]:
        """One Phantom frame (positions and times increasing); returns new windows."""
        self._check_open()
        position, time_ns = int(position), int(time_ns)
        if self._p_last is not None:
            last_pos, last_time = self._p_last
            if position <= last_pos:
                raise CalibrationError(
                    f"Phantom frame {frame_number}: position {position} after {last_pos}"
                )
            if time_ns <= last_time:
                raise CalibrationError(
                    f"Phantom frame {frame_number} (position {position}): time {time_ns} ns "
                    f"is not after the previous frame ({last_time} ns)"
                )
        self._p_last = (position, time_ns)
        if bool(e_flag):
            if self._e_origin is None:
                self._e_origin = time_ns
            self._e_pos.append(position)
            self._e_times.append(time_ns - self._e_origin)
        self._check_observed()
        return self._advance()

    def add_shimadzu(self, position: int, time_ns: int) -> list[Window]:
        """One Shimadzu frame (positions 0, 1, 2, ... in order); returns new windows."""
        self._check_open()
        position, time_ns = int(position), int(time_ns)
        if position != len(self._s_times):
            raise CalibrationError(
                f"Shimadzu frame position {position} arrived; expected {len(self._s_times)}"
            )
        if self.n_shimadzu is not None and position >= self.n_shimadzu:
            raise CalibrationError(
                f"Shimadzu frame position {position} beyond the {self.n_shimadzu} announced"
            )
        if self._s_origin is None:
            self._s_origin = time_ns
        relative = time_ns - self._s_origin
        if self._s_times and relative <= self._s_times[-1]:
            raise CalibrationError(
                f"Shimadzu frame {position}: time {time_ns} ns is not after the previous frame"
            )
        self._s_times.append(relative)
        if self.traverse_mode == "double" and len(self._s_times) == 2:
            check_matching_tolerance(self.tolerance_ns, self._s_times[1])
        self._check_observed()
        return self._advance()

    def finish(self) -> list[Window]:
        """The stream ended: emit the windows that waited for the end, then validate."""
        self._check_open()
        self._finished = True
        if self.n_shimadzu is not None and len(self._s_times) != self.n_shimadzu:
            raise CalibrationError(
                f"stream ended after {len(self._s_times)} of {self.n_shimadzu} Shimadzu frames"
            )
        if not self._e_times:
            raise no_e_frames_error()
        if not self._s_times:
            raise CalibrationError("stream ended without a Shimadzu frame")
        out = self._advance()
        if self.traverse_mode == "continuous" and not self._emitted:
            raise no_windows_error()
        if self.traverse_mode == "double" and len(self._matches) < 3:
            raise too_few_matches_error(len(self._matches))
        return out

    # -- results ------------------------------------------------------------------
    @property
    def windows(self) -> tuple[Window, ...]:
        """Every window emitted so far, by index."""
        return tuple(sorted(self._emitted, key=lambda w: w.index))

    def table(self) -> PairingTable:
        return PairingTable(self.traverse_mode, self.windows)

    # -- logic --------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._finished:
            raise CalibrationError("the stream has already finished")

    def _check_observed(self) -> None:
        if self._rates_checked or len(self._s_times) < 2 or len(self._e_times) < 2:
            return
        self._rates_checked = True
        check_rates(float(self._s_times[1]), float(self._e_times[1]), "observed")

    def _shimadzu_complete(self) -> bool:
        return self._finished or (
            self.n_shimadzu is not None and len(self._s_times) == self.n_shimadzu
        )

    def _lr_ready(self, s: int) -> bool:
        return s + 1 < len(self._s_times) or (
            self._shimadzu_complete() and s == len(self._s_times) - 1
        )

    def _advance(self) -> list[Window]:
        out = (
            self._advance_continuous()
            if self.traverse_mode == "continuous"
            else self._advance_double()
        )
        self._emitted.extend(out)
        return out

    def _advance_continuous(self) -> list[Window]:
        out: list[Window] = []
        e_times = self._e_times
        while self._next_s < len(self._s_times) and e_times:
            s = self._next_s
            t = self._s_times[s]
            if t < e_times[0]:  # before the first E frame: no HR before it
                self._next_s += 1
                continue
            if e_times[-1] <= t or not self._lr_ready(s):
                break  # waiting for the E frame after t, or for LR frame s+1
            after = bisect_right(e_times, t)
            hr = (self._e_pos[after - 1], self._e_pos[after])
            index = len(self._emitted) + len(out)
            n = len(self._s_times)
            out.append(Window(index, "continuous", s, t, clamped_lr(s, n), hr))
            self._next_s += 1
        return out

    def _resolve_matches(self) -> None:
        """Settle the match of each E frame once no later Shimadzu frame can change it."""
        tol, s_times = self.tolerance_ns, self._s_times
        while self._next_e < len(self._e_times) and s_times:
            e = self._e_times[self._next_e]
            position = self._e_pos[self._next_e]
            complete = self._shimadzu_complete()
            if not complete and s_times[-1] <= e + tol:
                break
            self._next_e += 1
            if e < s_times[0] - tol or e > s_times[-1] + tol:
                continue  # outside the Shimadzu span
            lo, hi = bisect_left(s_times, e - tol), bisect_right(s_times, e + tol)
            if lo == hi:
                continue
            s = min(range(lo, hi), key=lambda k: (abs(s_times[k] - e), k))
            if self._matches and position != self._matches[-1][0] + 1:
                raise non_consecutive_error(self._matches[-1][0], position)
            self._matches.append((position, s))

    def _advance_double(self) -> list[Window]:
        self._resolve_matches()
        out: list[Window] = []
        while self._next_i + 1 < len(self._matches):
            s = self._matches[self._next_i][1]
            if not self._lr_ready(s):
                break
            out.append(
                double_window(self._next_i, self._matches, self._s_times, len(self._s_times))
            )
            self._next_i += 1
        return out
