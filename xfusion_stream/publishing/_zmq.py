"""0MQ publishing the xpdAn way: raw documents in under one prefix, fused out under another.

Thin wrappers over bluesky's own Publisher / Proxy / RemoteDispatcher that always use
the safe msgpack wire format and loopback addresses unless told otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ._serialization import pack_document, unpack_document

__all__ = [
    "RAW_PREFIX",
    "FUSED_PREFIX",
    "make_publisher",
    "make_remote_dispatcher",
    "ProxyThread",
    "dispatch_in_thread",
]

RAW_PREFIX = b"raw"
FUSED_PREFIX = b"fused"


def make_publisher(address: str, prefix: bytes = FUSED_PREFIX):
    """A bluesky ``Publisher`` (connects to a proxy's in-address) with the safe format."""
    from bluesky.callbacks.zmq import Publisher

    return Publisher(address, prefix=prefix, serializer=pack_document)


def make_remote_dispatcher(address: str, prefix: bytes = FUSED_PREFIX):
    """A bluesky ``RemoteDispatcher`` (connects to a proxy's out-address) with the safe format."""
    from bluesky.callbacks.zmq import RemoteDispatcher

    return RemoteDispatcher(address, prefix=prefix, deserializer=unpack_document)


class ProxyThread:
    """bluesky's 0MQ ``Proxy`` on loopback, running in a daemon thread (in-process demo).

    ``in_address``/``out_address`` are ``tcp://127.0.0.1:PORT`` strings; port 0 picks
    free ports.
    """

    def __init__(self, in_port: int = 0, out_port: int = 0, host: str = "127.0.0.1") -> None:
        from bluesky.callbacks.zmq import Proxy

        # An address without a port makes bluesky bind a random free one; the
        # attributes in_port/out_port then hold the full bound addresses.
        self._proxy = Proxy(
            in_address=f"tcp://{host}:{in_port}" if in_port else f"tcp://{host}",
            out_address=f"tcp://{host}:{out_port}" if out_port else f"tcp://{host}",
        )
        self.in_address = str(self._proxy.in_port)
        self.out_address = str(self._proxy.out_port)
        self._thread = threading.Thread(target=self._run, name="xfusion-0mq-proxy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import zmq

        try:
            self._proxy.start()
        except zmq.ZMQError:  # close() destroys the context, which ends the device
            pass

    def close(self) -> None:
        self._proxy._context.destroy(linger=0)
        self._thread.join(timeout=5)


def dispatch_in_thread(dispatcher, callback: Callable[[str, dict], None]) -> threading.Thread:
    """Subscribe ``callback`` and run ``dispatcher`` in a daemon thread."""
    dispatcher.subscribe(callback)
    thread = threading.Thread(target=dispatcher.start, name="xfusion-0mq-dispatch", daemon=True)
    thread.start()
    return thread
