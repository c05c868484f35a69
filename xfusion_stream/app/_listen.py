"""Watch fused runs arrive over 0MQ: what ``xfusion listen`` prints.

Why: the third process of the three-process recipe (proxy, ``xfusion serve``, this).
A person sees each fused run start, its frames arrive and how it ended (frames, gaps,
mean residual against the Shimadzu frames) without opening Tiled, from a subscriber
that shares nothing with the publisher but the wire. Built from the same pieces as
``publishing.listen`` (the safe RemoteDispatcher, ``DocumentCounter``), plus a printer.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from ._progress import FusionProgress

__all__ = ["FusedRunPrinter", "RunSummary", "listen_fused", "stdout_lines"]

#: the per-frame residual a fused event carries (``fusion.FUSED_FRAME``)
_RESIDUAL = "shimadzu_residual_rms"


@dataclass
class RunSummary:
    """One fused run as it arrived: the numbers its stop line prints."""

    uid: str
    raw_uid: str | None = None
    traverse_mode: str | None = None
    frames: int = 0
    gaps: int = 0
    exit_status: str | None = None
    reason: str = ""
    shimadzu_residual: float | None = None
    seconds: float = 0.0
    _residuals: list[float] = field(default_factory=list, repr=False)
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def public(self) -> dict[str, Any]:
        """The fields a stop line and ``--json`` report (not the running sums)."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def _short(uid: str | None) -> str:
    return (uid or "?")[:8]


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


class FusedRunPrinter:
    """Document callback: a line per fused run start and stop (``every`` > 0: also a
    line per ``every`` frames), or with ``as_json`` one JSON line per document summary;
    and a progress bar per run on stderr unless ``progress`` is False."""

    def __init__(
        self,
        emit: Callable[[str], None],
        *,
        as_json: bool = False,
        every: int = 0,
        progress: bool = True,
        file: IO[str] | None = None,
    ) -> None:
        self.emit = emit
        self.as_json = as_json
        self.every = every
        self.bars = FusionProgress(enabled=progress, file=file)
        self.open: dict[str, RunSummary] = {}
        self.finished: list[RunSummary] = []
        self._streams: dict[str, tuple[str, str]] = {}  # descriptor -> (run, stream name)

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        self.bars(name, doc)
        if name == "start":
            self._start(doc)
        elif name == "descriptor":
            self._streams[doc["uid"]] = (doc["run_start"], doc.get("name", "primary"))
        elif name == "event":
            self._event(doc["descriptor"], doc.get("seq_num"), doc.get("data", {}))
        elif name == "event_page":
            data = doc.get("data", {})
            for i, seq in enumerate(doc.get("seq_num", [])):
                row = {k: v[i] for k, v in data.items() if k != "fused_image"}
                self._event(doc["descriptor"], seq, row)
        elif name == "stop":
            self._stop(doc)

    def _line(self, text: str, record: dict[str, Any]) -> None:
        self.emit(json.dumps(record, default=str) if self.as_json else text)

    def _start(self, doc: dict[str, Any]) -> None:
        run = RunSummary(doc["uid"], doc.get("raw_uid"), doc.get("traverse_mode"))
        self.open[run.uid] = run
        model = (doc.get("model") or {}).get("name")
        text = f"start {_short(run.uid)}: fused run of raw run {_short(run.raw_uid)}"
        text += f", {run.traverse_mode or '?'} mode" + (f", model {model}" if model else "")
        record = {"document": "start", "uid": run.uid, "raw_uid": run.raw_uid}
        record.update(traverse_mode=run.traverse_mode, model=model)
        self._line(text, record)

    def _event(self, descriptor: str, seq: Any, data: dict[str, Any]) -> None:
        run_uid, stream = self._streams.get(descriptor, ("", ""))
        run = self.open.get(run_uid)
        if run is None:
            return  # a run that started before we joined: nothing trustworthy to add
        index = data.get("shimadzu_index")
        if stream == "gaps":
            run.gaps += 1
            record = {"document": "gap", "run": run.uid, "shimadzu_index": index}
            self._line(f"  {_short(run.uid)}: gap at Shimadzu frame {index}", record)
            return
        run.frames += 1
        residual = _number(data.get(_RESIDUAL))
        if residual is not None:
            run._residuals.append(residual)
        if self.as_json:
            record = {"document": "event", "run": run.uid, "seq_num": seq}
            record.update(shimadzu_index=index, window_index=data.get("window_index"))
            self.emit(json.dumps({**record, _RESIDUAL: residual}, default=str))
        elif self.every and run.frames % self.every == 0:
            mean = sum(run._residuals) / len(run._residuals) if run._residuals else math.nan
            text = f"  {_short(run.uid)}: {run.frames} frames (Shimadzu frame {index})"
            self.emit(f"{text}, shimadzu_residual {mean:.3f}")

    def _stop(self, doc: dict[str, Any]) -> None:
        run = self.open.pop(doc["run_start"], None)
        if run is None:
            return
        run.exit_status = doc.get("exit_status")
        run.reason = str(doc.get("reason") or "")
        if run._residuals:
            run.shimadzu_residual = round(sum(run._residuals) / len(run._residuals), 3)
        run.seconds = round(time.monotonic() - run._t0, 3)
        self.finished.append(run)
        residual = "n/a" if run.shimadzu_residual is None else f"{run.shimadzu_residual:.3f}"
        text = f"stop  {_short(run.uid)}: {run.exit_status}, {run.frames} frames, "
        text += f"{run.gaps} gaps, shimadzu_residual {residual}, {run.seconds:.1f} s"
        if run.reason:
            text += f" ({run.reason})"
        self._line(text, {"document": "stop", **run.public()})

    def close(self) -> None:
        """Close the bars of runs whose stop never came (listening ended first)."""
        self.bars.close()


def stdout_lines(text: str) -> None:
    """Print one line to stdout now (scripts read it as it comes), around any bars."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


def listen_fused(
    address: str,
    printer: FusedRunPrinter,
    *,
    prefix: bytes = b"fused",
    max_runs: int | None = None,
    timeout: float | None = None,
    ready_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Subscribe at ``address`` (a proxy's OUT side) and hand every document to
    ``printer`` until ``max_runs`` fused runs stopped, ``timeout`` s, or SIGINT/SIGTERM."""
    from ..publishing import (
        DocumentCounter,
        check_address,
        make_remote_dispatcher,
        run_dispatcher,
        stop_dispatcher,
    )

    counter = DocumentCounter(max_runs)
    dispatcher = make_remote_dispatcher(check_address(address, "--address"), prefix=prefix)
    dispatcher.subscribe(counter)
    dispatcher.subscribe(printer)
    state: dict[str, Any] = {"timed_out": False, "signal": None}

    def on_doc(name: str, doc: dict) -> None:
        if counter.done.is_set():
            stop_dispatcher(dispatcher)

    def on_timeout() -> None:
        state["timed_out"] = True
        stop_dispatcher(dispatcher)

    def on_signal(name: str) -> None:
        state["signal"] = name
        stop_dispatcher(dispatcher)

    dispatcher.subscribe(on_doc)
    if timeout is not None:
        dispatcher.loop.call_later(float(timeout), on_timeout)
    t0 = time.monotonic()
    try:
        run_dispatcher(dispatcher, ready_file=ready_file, on_signal=on_signal)
    finally:
        printer.close()
    runs = [run.public() for run in printer.finished]
    return {
        "address": address,
        "prefix": prefix.decode(),
        "runs": runs,
        "unfinished_runs": len(printer.open),
        "n_documents": counter.n_documents,
        "timed_out": state["timed_out"],
        "signal": state["signal"],
        "seconds": round(time.monotonic() - t0, 3),
    }
