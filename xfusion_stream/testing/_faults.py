"""Faults on demand for tests and soak runs: a TCP port that can go dead and come back.

Why: "Tiled is down" has to be real for the spool to be tested honestly, a refused
connection on the port the client uses, while the embedded server itself stays up for
the rest of the test session. :class:`TcpForwarder` listens on a port of its own and
forwards to the server; ``down()`` closes the listening socket and cuts every open
connection (clients see connection refused/reset), ``up()`` listens again on the
same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
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


class TcpForwarder:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port`` until ``down()``."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, int(target_port))
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = port
        self.up()

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
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    close = down

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
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
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
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
