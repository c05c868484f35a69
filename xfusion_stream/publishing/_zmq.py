"""0MQ publishing the xpdAn way: raw documents in under one prefix, fused out under another.

Thin wrappers over bluesky's own Publisher / Proxy / RemoteDispatcher that always use
the safe msgpack wire format (msgpack-numpy encoding: a stock consumer reads it with
``RemoteDispatcher(address, deserializer=msgpack_numpy.unpackb)``) and loopback
addresses unless told otherwise. Dispatchers
survive any message (``SafeRemoteDispatcher``); every socket can be CURVE-authenticated
(``_curve``: keys in one directory).
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import ConfigError
from ._curve import ClientCurve, ServerCurve
from ._serialization import pack_document
from ._wire import DEFAULT_MAX_MESSAGE_BYTES, RECEIVE_HWM, SEND_HWM, SafeRemoteDispatcher, set_hwm

__all__ = [
    "RAW_PREFIX",
    "FUSED_PREFIX",
    "make_publisher",
    "make_remote_dispatcher",
    "ProxyThread",
    "dispatch_in_thread",
    "run_dispatcher",
    "stop_dispatcher",
    "check_address",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "RECEIVE_HWM",
    "SEND_HWM",
    "SafeRemoteDispatcher",
]

RAW_PREFIX = b"raw"
FUSED_PREFIX = b"fused"

_ADDRESS = re.compile(r"^(tcp://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}|ipc://\S+)$")


def check_address(address: str, what: str = "address") -> str:
    """A 0MQ address a Publisher/RemoteDispatcher can connect to, or ConfigError naming it."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ConfigError(
            f"{what} {address!r}: not a 0MQ address such as tcp://127.0.0.1:5577 or ipc:///tmp/x"
        )
    if address.startswith("tcp://") and not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ConfigError(f"{what} {address!r}: port out of range")
    return address


def make_publisher(
    address: str,
    prefix: bytes = FUSED_PREFIX,
    *,
    linger_ms: int = 2000,
    curve: ClientCurve | None = None,
    send_hwm: int = SEND_HWM,
):
    """A bluesky ``Publisher`` (connects to a proxy's in-address) with the safe format.

    ``linger_ms`` bounds how long ``close()`` waits to flush queued messages; 0MQ's
    default (forever) would hang a process whose proxy has gone away. ``curve``
    (``client_curve(key_dir)``) authenticates to a CURVE proxy. ``send_hwm``: messages
    queued before 0MQ drops (``SEND_HWM``, why that number: ``_wire``).
    """
    import zmq
    from bluesky.callbacks.zmq import Publisher

    publisher = Publisher(
        check_address(address), prefix=prefix, serializer=pack_document, curve_config=curve
    )
    publisher._socket.setsockopt(zmq.LINGER, int(linger_ms))  # bluesky offers no knob
    set_hwm(publisher._socket, zmq.SNDHWM, send_hwm, publisher.address)
    return publisher


def make_remote_dispatcher(
    address: str,
    prefix: bytes = FUSED_PREFIX,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    curve: ClientCurve | None = None,
) -> SafeRemoteDispatcher:
    """A RemoteDispatcher (connects to a proxy's out-address) with the safe format that
    logs and drops malformed messages and those over ``max_message_bytes``."""
    return SafeRemoteDispatcher(
        check_address(address), prefix=prefix, max_message_bytes=max_message_bytes, curve=curve
    )


class ProxyThread:
    """An in-process 0MQ proxy on loopback (demo, tests), stoppable from any thread.

    The same forwarder as ``bluesky-0MQ-proxy`` (a bound SUB in, a bound PUB out),
    built on pyzmq's steerable proxy: bluesky's ``Proxy.start`` runs ``zmq.device``,
    which can only be ended by destroying its context from another thread, and that
    races with the device's own socket use ("Bad address"). Port 0 picks a free port;
    ``in_address``/``out_address`` are then the full bound ``tcp://`` addresses.
    ``in_curve``/``out_curve`` (``server_curve(key_dir)``) make either side accept only
    authorized CURVE clients. Both sides queue ``RECEIVE_HWM``/``SEND_HWM`` messages.
    """

    def __init__(
        self,
        in_port: int = 0,
        out_port: int = 0,
        host: str = "127.0.0.1",
        *,
        in_curve: ServerCurve | None = None,
        out_curve: ServerCurve | None = None,
    ) -> None:
        import zmq

        self._context = zmq.Context()
        self._auth: Any = None
        self._frontend = self._context.socket(zmq.SUB)
        self._frontend.setsockopt(zmq.SUBSCRIBE, b"")
        self._frontend.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
        self._backend = self._context.socket(zmq.PUB)
        self._backend.setsockopt(zmq.SNDHWM, SEND_HWM)
        for sock, curve in ((self._frontend, in_curve), (self._backend, out_curve)):
            if curve is not None:
                self._secure(sock, curve)
        self.in_address = self._bind(self._frontend, host, in_port)
        self.out_address = self._bind(self._backend, host, out_port)
        control = f"inproc://xfusion-proxy-control-{id(self)}"
        self._control_in = self._context.socket(zmq.PAIR)
        self._control_in.bind(control)
        self._control_out = self._context.socket(zmq.PAIR)
        self._control_out.connect(control)
        self._thread = threading.Thread(target=self._run, name="xfusion-0mq-proxy", daemon=True)
        self._thread.start()

    def _secure(self, socket, curve: ServerCurve) -> None:
        """CURVE server on ``socket``: its keys, and the authenticator (started once)."""
        import zmq
        import zmq.auth
        from zmq.auth.thread import ThreadAuthenticator

        if self._auth is None:
            self._auth = ThreadAuthenticator(self._context)
            self._auth.start()
            if curve.allow:
                self._auth.allow(*curve.allow)
            where = curve.client_public_keys or zmq.auth.CURVE_ALLOW_ANY
            self._auth.configure_curve(domain="*", location=str(where))
        public, secret = zmq.auth.load_certificate(curve.secret_path)
        if secret is None:
            raise ConfigError(f"{curve.secret_path}: not a CURVE secret key file")
        socket.curve_publickey = public
        socket.curve_secretkey = secret
        socket.curve_server = True

    @staticmethod
    def _bind(socket, host: str, port: int) -> str:
        if port:
            socket.bind(f"tcp://{host}:{port}")
            return f"tcp://{host}:{port}"
        return f"tcp://{host}:{socket.bind_to_random_port(f'tcp://{host}')}"

    def _run(self) -> None:
        import zmq

        try:
            zmq.proxy_steerable(self._frontend, self._backend, None, self._control_in)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (self._frontend, self._backend, self._control_in):
                sock.close(linger=0)

    def close(self) -> None:
        """Stop forwarding, release both ports; safe to call twice."""
        if self._context.closed:
            return
        self._control_out.send(b"TERMINATE")
        self._thread.join(timeout=5)
        self._control_out.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self._context.term()

    def __enter__(self) -> ProxyThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_dispatcher(
    dispatcher,
    *,
    ready_file: str | os.PathLike | None = None,
    on_signal: Callable[[str], None] | None = None,
) -> None:
    """Block in ``dispatcher.start()`` until ``stop_dispatcher`` ends it.

    ``ready_file`` is written on the loop's first turn, i.e. once the SUB socket is
    connected and subscribed. ``on_signal`` (main thread only) receives the name of a
    SIGINT/SIGTERM; it should call ``stop_dispatcher``.
    """
    import asyncio

    loop = dispatcher.loop
    if ready_file is not None:
        loop.call_soon(Path(ready_file).write_text, "ready\n")
    if on_signal is not None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, signal.Signals(sig).name)
    try:
        dispatcher.start()
    except asyncio.CancelledError:  # stop_dispatcher cancelled the poll task
        pass


def dispatch_in_thread(dispatcher, callback: Callable[[str, dict], None]) -> threading.Thread:
    """Subscribe ``callback`` and run ``dispatcher`` in a daemon thread (end: ``stop_dispatcher``)."""
    dispatcher.subscribe(callback)
    thread = threading.Thread(
        target=run_dispatcher, args=(dispatcher,), name="xfusion-0mq-dispatch", daemon=True
    )
    thread.start()
    return thread


def stop_dispatcher(
    dispatcher, thread: threading.Thread | None = None, timeout: float = 5.0
) -> None:
    """The one way to end a RemoteDispatcher that ``run_dispatcher`` is running.

    Safe from any thread, from its own loop's callbacks and before the loop starts.
    ``dispatcher.stop()`` from outside would close a loop that is still running;
    cancelling the poll task on its own loop lets ``start()`` return and clean up.
    ``thread`` (as ``dispatch_in_thread`` returns) is joined when given.
    """
    import asyncio

    loop = dispatcher.loop
    if loop.is_closed():
        return

    def cancel() -> None:
        for task in asyncio.all_tasks(loop):
            task.cancel()

    try:
        loop.call_soon_threadsafe(cancel)
    except RuntimeError:  # closed between the check and the call
        return
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)
