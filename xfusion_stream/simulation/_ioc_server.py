"""Serve the soft cameras' PVs over Channel Access, on one interface only (loopback).

Why its own module: the server is the one piece here that opens sockets; ``xfusion
ioc`` calls it, the camera behaviour (``_ioc``) never does. Beacons go to the same
interface, to a CA repeater started in a daemon thread when none listens on
``EPICS_CA_REPEATER_PORT`` (clients register with it; beacons then have a home).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["serve_pvdb"]


def _bound(interface: str, port: int) -> bool:
    """Whether a UDP socket already listens on ``interface:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((interface, port))
        except OSError:
            return True
    return False


def _start_repeater(interface: str, port: int, timeout: float = 2.0) -> None:
    """A CA repeater in a daemon thread, unless one listens already; returns once bound
    (the first beacon goes out at once)."""
    from caproto.sync.repeater import run

    if _bound(interface, port):
        return
    thread = threading.Thread(target=run, args=(interface,), name="ca-repeater", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not _bound(interface, port) and time.monotonic() < deadline:
        time.sleep(0.01)


async def serve_pvdb(
    pvdb: dict[str, Any],
    *,
    interface: str = "127.0.0.1",
    on_ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``pvdb`` on ``interface`` until ``stop`` is set (or the task is cancelled).

    ``on_ready(port)`` is called once the TCP and UDP sockets are bound. The CA server
    port is ``EPICS_CA_SERVER_PORT`` (default 5064) when free.
    """
    os.environ["EPICS_CAS_INTF_ADDR_LIST"] = interface
    os.environ["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] = "NO"
    os.environ["EPICS_CAS_BEACON_ADDR_LIST"] = interface
    repeater_port = os.environ.setdefault("EPICS_CA_REPEATER_PORT", "5065")
    os.environ["EPICS_CAS_BEACON_PORT"] = repeater_port
    from caproto.asyncio.server import Context

    _start_repeater(interface, int(repeater_port))
    context = Context(pvdb, [interface])

    async def ready(async_lib: Any) -> None:
        if on_ready is not None:
            on_ready(int(context.port))

    server = asyncio.ensure_future(context.run(startup_hook=ready))
    if stop is None:
        await server
        return
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({server, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (server, waiter):
            task.cancel()
        await asyncio.gather(server, waiter, return_exceptions=True)
