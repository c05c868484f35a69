"""Progress bars on stderr for the long parts of a beamline: acquisition and fusion.

Why here: a burst acquired through a RunEngine, or fused on a worker thread, otherwise
shows nothing for minutes and looks hung. Both bars are plain document callbacks, so
the same two classes serve ``build_beamline``/``attach_fusion`` (IPython), the demo,
``replay`` and ``serve``: ``AcquisitionProgress`` subscribes to the RunEngine (frames
acquired / total), ``FusionProgress`` is a fused-run sink (frames fused / total, fused
frames/s and an ETA from tqdm). Both are silent with ``enabled=False``.

A bar redraws itself in place with carriage returns (and, several bars at once, ANSI
cursor moves): right on a terminal, garbage in a log file. Where the stream is not a
TTY (a file, a pipe) the bars draw through :class:`PlainLines`, which turns them into
plain newline-terminated lines, a bar's state at most every 10 s (its first and
last state always; ``XFUSION_PROGRESS_EVERY`` sets the seconds); the CLI puts it in
front of stderr for every bar of a command, whichever library draws it.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from ..documents import announced_frames

__all__ = [
    "AcquisitionProgress",
    "FusionProgress",
    "PlainLines",
    "expected_fused_frames",
    "plain_unless_tty",
]

logger = logging.getLogger(__name__)

#: a tqdm bar, typed loosely (tqdm ships no stubs that mypy checks here)
Bar = Any


def plain_every() -> float:
    """Seconds between two lines of one bar where progress is plain: 10, or
    ``XFUSION_PROGRESS_EVERY``."""
    try:
        return max(0.0, float(os.environ.get("XFUSION_PROGRESS_EVERY", "10")))
    except ValueError:
        return 10.0


# CSI sequences (cursor moves, colours, erase) and the two-character escapes
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_SEPARATORS = re.compile(r"(\r|\n)")
_COUNT = re.compile(r"\b(\d+)/(\d+)\b")  # tqdm's "n/total"


class PlainLines:
    """A text stream in front of ``stream`` that never writes a carriage return or an
    ANSI escape: what progress bars look like in a log file or a pipe.

    Text ending in a newline passes as it is (blank lines are dropped: a bar's cursor
    moves). A line redrawn in place (``\\r`` then the text, flushed: how tqdm draws)
    is a bar's state, told apart by the text before its first ``:``; it is written as
    a line of its own when the bar is new, when ``every`` s have passed since that
    bar's last line, and when it reads ``n/n`` (done); ``close`` writes the states held
    back. Thread-safe; ``isatty()`` is False.
    """

    def __init__(self, stream: IO[str], every: float | None = None) -> None:
        self.stream = stream
        self.every = plain_every() if every is None else float(every)
        self._lock = threading.RLock()
        self._line = ""  # text since the last \r or \n
        self._redrawn = False  # the line began with \r: a bar's state
        self._shown: dict[str, float] = {}  # bar -> when its last line was written
        self._done: dict[str, str] = {}  # bar -> the "n/n" of the done state written
        self._held: dict[str, str] = {}  # bar -> its latest state not written

    # ---- the parts of a text stream tqdm and logging use ------------------------------
    def write(self, text: str) -> int:
        with self._lock:
            plain = _ANSI.sub("", str(text)).replace("\x1b", "")
            for part in _SEPARATORS.split(plain):
                if part == "\r":
                    self._end_state()
                    self._line, self._redrawn = "", True
                elif part == "\n":
                    if self._redrawn:
                        self._end_state()
                    elif self._line.strip():
                        self.stream.write(self._line.rstrip() + "\n")
                    self._line = ""
                else:
                    self._line += part
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._end_state()
            self.stream.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return "ascii"  # tqdm draws ASCII bars (#) for a stream that is not UTF-8

    def close(self) -> None:
        """Write what is pending: states held back, an unterminated line."""
        with self._lock:
            self._end_state()
            for state in self._held.values():
                self.stream.write(state + "\n")
            self._held.clear()
            if self._line.strip():
                self.stream.write(self._line.rstrip() + "\n")
            self._line = ""
            self.stream.flush()

    def _end_state(self) -> None:
        """The redrawn line is complete (a flush, the next \\r or \\n): a bar's state."""
        if not self._redrawn:
            return
        state = self._line.strip()
        self._line, self._redrawn = "", False
        if not state:  # a bar cleared (leave=False, tqdm.write)
            return
        bar = state.split(":", 1)[0] if ":" in state[:80] else ""
        now = time.monotonic()
        count = _COUNT.search(state)
        if count is not None and count.group(1) == count.group(2):  # done: n/n
            if self._done.get(bar) != count.group(0):
                self._write_state(bar, state, now)
                self._done[bar] = count.group(0)
            self._held.pop(bar, None)
            return
        self._done.pop(bar, None)
        last = self._shown.get(bar)
        if last is None or now - last >= self.every:
            self._write_state(bar, state, now)
        else:
            self._held[bar] = state

    def _write_state(self, bar: str, state: str, now: float) -> None:
        self.stream.write(state + "\n")
        self._shown[bar] = now
        self._held.pop(bar, None)


def plain_unless_tty(stream: IO[str]) -> IO[str]:
    """``stream`` itself on a terminal, else ``PlainLines`` in front of it."""
    if isinstance(stream, PlainLines):
        return stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        tty = False
    return stream if tty else PlainLines(stream)  # type: ignore[return-value]


def _bar(total: int | None, desc: str, file: IO[str] | None, enabled: bool) -> Bar:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="frame",
        file=plain_unless_tty(file if file is not None else sys.stderr),
        disable=not enabled,
        dynamic_ncols=True,
    )


def _finish(bar: Bar) -> None:
    """Close ``bar`` at the count it reached (a total that was only an estimate)."""
    if bar.total is not None and bar.n != bar.total:
        bar.total = bar.n
        bar.refresh()
    bar.close()


def expected_fused_frames(raw_start: Mapping[str, Any], traverse_mode: str) -> int | None:
    """How many fused frames a raw burst should give, from its start document alone.

    Continuous mode fuses every Shimadzu frame; double mode every Phantom frame that
    matched a Shimadzu frame except the first and last. An estimate for a progress bar:
    the bar is closed at the real count.
    """
    n_shimadzu = announced_frames(raw_start, "shimadzu")
    if not n_shimadzu:
        return None
    if traverse_mode == "continuous":
        return int(n_shimadzu)
    every = raw_start.get("phantom_every")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        return None
    return max(0, math.ceil(int(n_shimadzu) / every) - 2)


#: raw start documents an ``AcquisitionProgress`` keeps for ``FusionProgress`` totals
_STARTS_KEPT = 16


class AcquisitionProgress:
    """RunEngine callback: one bar per run, frames acquired / total (``num_points``).

    Subscribe it with ``RE.subscribe``. ``raw_start(uid)`` hands the latest runs' start
    documents to a ``FusionProgress``, which sizes its bar from them.
    """

    def __init__(self, *, enabled: bool = True, file: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.file = file
        self._starts: dict[str, dict[str, Any]] = {}
        self._bars: dict[str, Bar] = {}
        self._runs: dict[str, str] = {}  # descriptor uid -> run uid

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        try:
            self._document(name, doc)
        except Exception:  # noqa: BLE001 - a progress bar must never stop the RunEngine
            logger.debug("acquisition progress: %s document not shown", name, exc_info=True)

    def _document(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self._start(doc)
        elif name == "descriptor":
            self._runs[doc["uid"]] = doc["run_start"]
        elif name in ("event", "event_page"):
            bar = self._bars.get(self._runs.get(doc["descriptor"], ""))
            if bar is not None:
                bar.update(1 if name == "event" else len(doc.get("seq_num", ())))
        elif name == "stop":
            bar = self._bars.pop(doc["run_start"], None)
            if bar is not None:
                _finish(bar)

    def raw_start(self, uid: str) -> dict[str, Any] | None:
        """The start document of raw run ``uid``, if it is one of the latest."""
        return self._starts.get(uid)

    def _start(self, doc: dict[str, Any]) -> None:
        self._starts[doc["uid"]] = doc
        while len(self._starts) > _STARTS_KEPT:
            self._starts.pop(next(iter(self._starts)))
        total = doc.get("num_points")
        label = doc.get("plan_name") or "run"
        bar = _bar(int(total) if total else None, f"acquired ({label})", self.file, self.enabled)
        self._bars[doc["uid"]] = bar

    def close(self) -> None:
        """Close bars of runs that never stopped."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


class FusionProgress:
    """Fused-run sink: one bar per fused run, frames fused / total, frames/s, ETA.

    ``raw_start(raw_uid)`` gives the raw run's start document (e.g.
    ``AcquisitionProgress.raw_start``), from which the total is estimated
    (``expected_fused_frames``); without it the fused start's ``expected_frames`` is
    used when present, else the bar counts without a total. The postfix is the
    running mean of ``shimadzu_residual_rms`` (noise units, ~1 is good).
    """

    def __init__(
        self,
        raw_start: Callable[[str], Mapping[str, Any] | None] | None = None,
        *,
        enabled: bool = True,
        file: IO[str] | None = None,
    ) -> None:
        self.enabled = enabled
        self.file = file
        self._raw_start = raw_start
        self._lock = threading.Lock()
        self._bars: dict[str, Bar] = {}
        self._runs: dict[str, str] = {}  # descriptor uid of a fused stream -> run uid
        self._residual: dict[str, list[float]] = {}

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        try:
            with self._lock:
                self._document(name, doc)
        except Exception:  # noqa: BLE001 - a sink that raises would fail the fused run
            logger.debug("fusion progress: %s document not shown", name, exc_info=True)

    def _document(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self._start(doc)
        elif name == "descriptor" and doc.get("name") != "gaps":
            self._runs[doc["uid"]] = doc["run_start"]
        elif name == "event":
            self._event(doc)
        elif name == "stop":
            bar = self._bars.pop(doc["run_start"], None)
            self._residual.pop(doc["run_start"], None)
            if bar is not None:
                _finish(bar)

    def _start(self, doc: dict[str, Any]) -> None:
        raw = self._raw_start(str(doc.get("raw_uid"))) if self._raw_start else None
        mode = str(doc.get("traverse_mode", "continuous"))
        total = expected_fused_frames(raw, mode) if raw is not None else None
        if total is None and doc.get("expected_frames"):
            total = int(doc["expected_frames"])
        self._bars[doc["uid"]] = _bar(total or None, "fused", self.file, self.enabled)
        self._residual[doc["uid"]] = []

    def _event(self, doc: dict[str, Any]) -> None:
        run = self._runs.get(doc["descriptor"])
        bar = self._bars.get(run or "")
        if run is None or bar is None:
            return
        value = doc.get("data", {}).get("shimadzu_residual_rms")
        residuals = self._residual[run]
        if isinstance(value, int | float) and math.isfinite(value):
            residuals.append(float(value))
            mean = sum(residuals) / len(residuals)
            bar.set_postfix(residual=f"{mean:.2f}", refresh=False)
        bar.update(1)

    def close(self) -> None:
        """Close bars of fused runs that never stopped."""
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
