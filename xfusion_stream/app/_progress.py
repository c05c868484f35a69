"""Progress bars on stderr for the long parts of a beamline: acquisition and fusion.

Why here: a burst acquired through a RunEngine, or fused on a worker thread, otherwise
shows nothing for minutes and looks hung. Both bars are plain document callbacks, so
the same two classes serve ``build_beamline``/``attach_fusion`` (IPython), the demo,
``replay`` and ``serve``: ``AcquisitionProgress`` subscribes to the RunEngine (frames
acquired / total), ``FusionProgress`` is a fused-run sink (frames fused / total, fused
frames/s and an ETA from tqdm). Both are silent with ``enabled=False``.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any

__all__ = ["AcquisitionProgress", "FusionProgress", "expected_fused_frames"]

logger = logging.getLogger(__name__)

#: a tqdm bar, typed loosely (tqdm ships no stubs that mypy checks here)
Bar = Any


def _bar(total: int | None, desc: str, file: IO[str] | None, enabled: bool) -> Bar:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="frame",
        file=file if file is not None else sys.stderr,
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
    n_shimadzu = (raw_start.get("n_frames") or {}).get("shimadzu")
    if not n_shimadzu:
        return None
    if traverse_mode == "continuous":
        return int(n_shimadzu)
    every = int(raw_start.get("phantom_every") or 0)
    if every < 1:
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
