"""An independent 0MQ listener: a stock RemoteDispatcher that counts what arrives.

Why a separate process: "fused frames reach a subscriber" only means something if the
subscriber shares nothing with the publisher but the wire. The listener counts
documents per run (no arrays kept), writes a JSON summary after N stop documents or a
timeout, and exits. Tests and ``xfusion demo`` run it as
``python -m xfusion_stream.publishing.listen``; :class:`ListenerProcess` does that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core import ConfigError
from ._curve import ClientCurve
from ._zmq import (
    FUSED_PREFIX,
    check_address,
    make_remote_dispatcher,
    run_dispatcher,
    stop_dispatcher,
)

__all__ = ["RunCount", "DocumentCounter", "listen", "ListenerProcess"]


@dataclass
class RunCount:
    """What one run sent: enough to check it against a pairing table."""

    start_uid: str
    raw_uid: str | None = None
    purpose: str | None = None
    events: dict[str, int] = field(default_factory=dict)
    first_fused_shape: list[int] | None = None
    exit_status: str | None = None
    reason: str | None = None
    documents: int = 0


class DocumentCounter:
    """Document callback that counts per run; ``done`` is set after ``runs`` stops."""

    def __init__(self, runs: int | None = 1) -> None:
        self.runs: dict[str, RunCount] = {}
        self._streams: dict[str, tuple[str, str]] = {}  # descriptor uid -> (run uid, name)
        self.n_stops = 0
        self.n_documents = 0
        self.expected_runs = runs
        self.done = threading.Event()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        self.n_documents += 1
        handler = getattr(self, "_" + name, None)
        run = handler(doc) if handler is not None else None
        if run is not None:
            run.documents += 1

    def _start(self, doc: dict) -> RunCount:
        run = RunCount(start_uid=doc["uid"], raw_uid=doc.get("raw_uid"), purpose=doc.get("purpose"))
        self.runs[doc["uid"]] = run
        return run

    def _descriptor(self, doc: dict) -> RunCount | None:
        self._streams[doc["uid"]] = (doc["run_start"], doc.get("name", "primary"))
        run = self.runs.get(doc["run_start"])
        key = (doc.get("data_keys") or {}).get("fused_image")
        if run is not None and isinstance(key, dict) and key.get("external"):
            # frames stored as HDF5: events carry none, the descriptor has their shape
            run.first_fused_shape = [int(v) for v in key.get("shape") or []] or None
        return run

    def _count(self, descriptor: str, n: int, data: dict) -> RunCount | None:
        run_uid, stream = self._streams.get(descriptor, (None, ""))
        run = self.runs.get(run_uid) if run_uid else None
        if run is None:
            return None  # joined after this run's start: nothing trustworthy to count
        run.events[stream] = run.events.get(stream, 0) + n
        image = data.get("fused_image")
        if run.first_fused_shape is None and image is not None:
            shape = getattr(image, "shape", None)
            if shape is None and isinstance(image, list):  # an event_page column
                shape = getattr(image[0], "shape", None) if image else None
            run.first_fused_shape = [int(v) for v in shape] if shape is not None else None
        return run

    def _event(self, doc: dict) -> RunCount | None:
        return self._count(doc["descriptor"], 1, doc.get("data", {}))

    def _event_page(self, doc: dict) -> RunCount | None:
        return self._count(doc["descriptor"], len(doc.get("seq_num", [])), doc.get("data", {}))

    def _stop(self, doc: dict) -> RunCount | None:
        run = self.runs.get(doc["run_start"])
        if run is not None:
            run.exit_status = doc.get("exit_status")
            run.reason = doc.get("reason", "")
        self.n_stops += 1
        if self.expected_runs is not None and self.n_stops >= self.expected_runs:
            self.done.set()
        return run

    def summary(self) -> dict[str, Any]:
        return {
            "n_documents": self.n_documents,
            "n_stops": self.n_stops,
            "runs": [asdict(r) for r in self.runs.values()],
        }


def listen(
    address: str,
    prefix: bytes = FUSED_PREFIX,
    *,
    runs: int | None = 1,
    timeout: float | None = None,
    ready_file: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    curve: ClientCurve | None = None,
) -> dict[str, Any]:
    """Subscribe at ``address`` until ``runs`` stop documents arrived or ``timeout`` s passed.

    Blocks the calling thread. ``ready_file`` is written once the SUB socket is
    connected and subscribed (a publisher should still allow ~0.5 s for the
    subscription to reach the proxy). ``out`` receives the JSON summary. ``curve``
    (``client_curve(key_dir)``) authenticates to a CURVE proxy; malformed messages are
    logged (stderr) and dropped, never counted.
    """
    counter = DocumentCounter(runs)
    dispatcher = make_remote_dispatcher(check_address(address), prefix=prefix, curve=curve)
    dispatcher.subscribe(counter)
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
    run_dispatcher(dispatcher, ready_file=ready_file, on_signal=on_signal)
    result = {
        "address": address,
        "prefix": prefix.decode(),
        "timed_out": state["timed_out"],
        "signal": state["signal"],
        "seconds": round(time.monotonic() - t0, 3),
        **counter.summary(),
    }
    if out is not None:
        tmp = Path(str(out) + ".partial")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, out)  # readers never see half a summary
    return result


class ListenerProcess:
    """``python -m xfusion_stream.publishing.listen`` as a child process.

    ``wait_ready()`` returns once the child is subscribed; ``result()`` waits for it
    to exit and returns its summary. Use as a context manager so it never outlives you.
    """

    def __init__(
        self,
        address: str,
        workdir: str | os.PathLike,
        *,
        prefix: bytes = FUSED_PREFIX,
        runs: int = 1,
        timeout: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        tag = f"listener-{prefix.decode()}-{os.getpid()}-{id(self)}"
        self.ready_file = workdir / f"{tag}.ready"
        self.out = workdir / f"{tag}.json"
        self.log = workdir / f"{tag}.log"
        cmd = [
            sys.executable,
            "-m",
            "xfusion_stream.publishing.listen",
            "--address",
            address,
            "--prefix",
            prefix.decode(),
            "--out",
            str(self.out),
            "--runs",
            str(runs),
            "--timeout",
            str(timeout),
            "--ready-file",
            str(self.ready_file),
        ]
        self._log_fh = open(self.log, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            cmd, stdout=self._log_fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def wait_ready(self, timeout: float = 60.0, settle: float = 0.5) -> None:
        """Block until the child is subscribed, then ``settle`` s for the proxy to learn it."""
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise ConfigError(f"listener exited with {self.process.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise ConfigError(f"listener not ready after {timeout} s: {self.tail()}")
            time.sleep(0.05)
        time.sleep(settle)

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        self.process.wait(timeout)
        if not self.out.exists():
            raise ConfigError(
                f"listener exited with {self.process.returncode} without a summary: {self.tail()}"
            )
        return json.loads(self.out.read_text())

    def tail(self, n: int = 2000) -> str:
        self._log_fh.flush()
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log_fh.close()

    def __enter__(self) -> ListenerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
