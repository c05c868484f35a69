"""Start and stop a RunEngine's event loop through public asyncio and bluesky API only.

A RunEngine runs its loop forever in a daemon thread of its own. Whoever made one
(the fusion session, the beamline, the tests, the benchmarks) ends it here: halt a
plan left paused, stop the loop from its own thread, wait for that thread, close the
loop. Nothing reaches into the RunEngine's private attributes.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ..core import XFusionError

__all__ = ["close_run_engine", "new_run_engine"]


def new_run_engine(md: dict[str, Any] | None = None) -> Any:
    """A RunEngine on an event loop of its own (end it with ``close_run_engine``)."""
    from bluesky import RunEngine

    return RunEngine(dict(md or {}), call_returns_result=False, loop=asyncio.new_event_loop())


def close_run_engine(RE: Any, timeout: float = 10.0) -> None:  # noqa: N803 - bluesky's name
    """Stop ``RE``'s loop, wait for its thread to end, close the loop; idempotent."""
    from bluesky.utils import TransitionError

    loop = RE.loop
    if loop.is_closed():
        return
    if RE.state not in ("idle", "panicked"):
        try:
            RE.halt()
        except TransitionError:
            pass
    running = loop.is_running()
    loop_threads: list[threading.Thread] = []
    stopped = threading.Event()

    def stop() -> None:  # on the loop's own thread
        loop_threads.append(threading.current_thread())
        loop.stop()
        stopped.set()

    loop.call_soon_threadsafe(stop)
    # a loop that is not running yet starts within moments of the RunEngine's birth;
    # one that was stopped by someone else never runs ``stop`` at all
    if stopped.wait(timeout if running else min(timeout, 1.0)):
        loop_threads[0].join(timeout)
    if loop.is_running():
        raise XFusionError(f"the RunEngine's event loop did not stop within {timeout} s")
    loop.close()
