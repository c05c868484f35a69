"""Faults on demand for tests and soak runs: a TCP port that can go dead and come back.

Why: "Tiled is down" has to be real for the spool to be tested honestly, a refused
connection on the port the client uses, while the embedded server itself stays up for
the rest of the test session. :class:`TcpForwarder` listens on a port of its own and
forwards to the server; ``down()`` closes the listening socket and cuts every open
connection (clients see connection refused/reset), ``up()`` listens again on the
same port. A server that is there but misbehaves is a mode: ``hang`` accepts and reads
every connection and never answers, ``slow`` hands each chunk a client sends on
``delay`` s late. ``lose_answers(marker, n)`` forwards the next ``n`` requests that
begin with ``marker`` (e.g. ``b"PATCH /api/v1/table/"``), lets the server do them, and
cuts the connection instead of handing back the answer: a request done whose answer
was lost, which a client must not simply send again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TcpForwarder", "flaky_tiled_client"]


def flaky_tiled_client(uri: str) -> tuple[Any, TcpForwarder]:
    """A Tiled client of the server at ``uri`` (with its API key) that reaches it through
    a :class:`TcpForwarder`: ``forwarder.down()`` is "Tiled is down" for this client only."""
    from tiled.client import from_uri

    parts = urlsplit(uri)
    forwarder = TcpForwarder(parts.hostname or "127.0.0.1", parts.port or 80)
    via = parts._replace(netloc=f"127.0.0.1:{forwarder.port}")
    return from_uri(urlunsplit(via)), forwarder


MODES = ("forward", "hang", "slow")


class TcpForwarder:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port`` until ``down()``.

    ``mode`` (``set_mode``): ``forward``, ``hang`` or ``slow`` (see the module); it
    applies to connections made after it is set, and setting it cuts the open ones (what
    a restarted or unstuck server looks like to a client). ``connections`` counts the
    connections accepted.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        port: int = 0,
        *,
        mode: str = "forward",
        delay: float = 0.0,
    ) -> None:
        self.target = (target_host, int(target_port))
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = port
        self.mode, self.delay = "forward", 0.0
        self.connections = 0
        self._lose: tuple[bytes, int] = (b"", 0)  # (request marker, answers left to lose)
        #: how many answers were lost so far
        self.answers_lost = 0
        self.set_mode(mode, delay)
        self.up()

    def set_mode(self, mode: str, delay: float | None = None) -> None:
        """``forward``, ``hang`` or ``slow`` from now on; open connections are cut."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        with self._lock:
            self.mode = mode
            self.delay = self.delay if delay is None else float(delay)
            conns, self._conns = self._conns, []
        _cut(conns)

    def lose_answers(self, marker: bytes, n: int = 1) -> None:
        """Lose the answers to the next ``n`` requests that begin with ``marker``."""
        with self._lock:
            self._lose = (bytes(marker), int(n))

    def _losing(self, data: bytes) -> bool:
        """Whether the answer to the request starting in ``data`` is to be lost."""
        with self._lock:
            marker, left = self._lose
            if left <= 0 or not data.startswith(marker):
                return False
            self._lose = (marker, left - 1)
            return True

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> None:
        """Listen (again) on ``port`` and forward new connections."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        _cut(conns)

    close = down

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                mode, delay = self.mode, self.delay
                self.connections += 1
            if mode == "hang":
                with self._lock:
                    self._conns.append(client)
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    client.close()
                    server.close()
                    return
                self._conns += [client, server]
            lag = delay if mode == "slow" else 0.0
            lose = threading.Event()  # set: the answer now coming back is to be lost
            for a, b, wait, ask in ((client, server, lag, True), (server, client, 0.0, False)):
                threading.Thread(
                    target=self._pipe, args=(a, b, wait, lose, ask), daemon=True
                ).start()

    @staticmethod
    def _swallow(conn: socket.socket) -> None:
        """Read whatever comes and never answer."""
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass

    def _pipe(
        self,
        source: socket.socket,
        sink: socket.socket,
        lag: float,
        lose: threading.Event,
        asking: bool,
    ) -> None:
        """Copy ``source`` to ``sink``. ``asking``: this is the client's side, whose
        requests may arm ``lose``; otherwise the server's, which cuts both sockets
        instead of handing on an answer to be lost."""
        try:
            while data := source.recv(65536):
                if lag:
                    time.sleep(lag)
                if asking and self._losing(data):
                    lose.set()
                elif not asking and lose.is_set():
                    with self._lock:
                        self.answers_lost += 1
                    return  # the finally cuts both: the client never sees the answer
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> TcpForwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def _cut(conns: list[socket.socket]) -> None:
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()
