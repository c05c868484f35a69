"""A RemoteDispatcher whose loop survives any byte sequence on the wire.

Why: bluesky's ``RemoteDispatcher._poll`` prints what it drops on stdout (breaking
``xfusion serve --json``), raises KeyError on an unknown document name, and lets a
callback's exception end the loop: one malformed message stopped the service.
:class:`SafeRemoteDispatcher` handles each message in :meth:`~SafeRemoteDispatcher.handle`:
size limit, split, name, msgpack (never pickle), then the callbacks, and turns every
failure into one log line (logging goes to stderr) and a count.
"""

from __future__ import annotations

import logging
from typing import Any

from bluesky.callbacks.zmq import ClientCurve, RemoteDispatcher
from bluesky.run_engine import DocumentNames

from ._serialization import DOCUMENT_NAMES, WireFormatError, unpack_document

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "RECEIVE_HWM",
    "SEND_HWM",
    "SafeRemoteDispatcher",
    "parse_message",
    "set_hwm",
]

logger = logging.getLogger(__name__)

# a 2048 x 2048 float64 frame is 32 MiB; a burst's event_page of a few such frames fits
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024

# High-water marks, in messages, of our PUB (send) and SUB (receive) sockets and of the
# in-process proxy. 0MQ's default, 1000, is less than one dual-camera burst (2 x 256
# frames and their asset documents: ~1,200 messages), so a burst published faster than
# it was read lost its tail silently. 10,000 queue about eight bursts per socket: with
# frames in files (StreamDatum, ~1 KB a message) ~10 MB, with inline 200 KB frames up
# to ~2 GB. Beyond it 0MQ drops, and the RunGuard reports the seq_num gap.
SEND_HWM = 10_000
RECEIVE_HWM = 10_000


def set_hwm(socket: Any, option: int, value: int, address: str | None = None) -> None:
    """Set a high-water mark; 0MQ applies it to connections made afterwards, so a
    socket already connected to ``address`` is reconnected (nothing was sent yet)."""
    socket.setsockopt(option, int(value))
    if address is not None:
        socket.disconnect(address)
        socket.connect(address)


def parse_message(message: bytes, prefix: bytes) -> tuple[str, dict[str, Any]] | None:
    """``(name, document)`` of one ``b"prefix name payload"`` message.

    None for a message under another prefix (not for us, not an error); any other
    message that is not a document raises ``WireFormatError`` saying why.
    """
    parts = message.split(b" ", 2)
    if len(parts) != 3:
        raise WireFormatError("not three space-separated parts (prefix, name, payload)")
    their_prefix, raw_name, payload = parts
    if prefix and their_prefix != prefix:
        return None
    try:
        name = raw_name.decode("ascii")
    except UnicodeDecodeError:
        raise WireFormatError(f"document name {raw_name[:40]!r} is not ASCII") from None
    if name not in DOCUMENT_NAMES:
        raise WireFormatError(f"unknown document name {name[:40]!r}")
    return name, unpack_document(payload)


class SafeRemoteDispatcher(RemoteDispatcher):
    """bluesky's RemoteDispatcher with the safe format, a size limit and per-message guard.

    ``max_message_bytes``: longer messages are dropped (after 0MQ has received them:
    the limit bounds what is decoded and dispatched, not the socket's buffer).
    ``curve``: connect as an authenticated CURVE client (the proxy is the server).
    ``accepted``/``rejected`` count documents dispatched and messages dropped.
    """

    def __init__(
        self,
        address: str,
        *,
        prefix: bytes = b"",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        curve: ClientCurve | None = None,
    ) -> None:
        super().__init__(address, prefix=prefix, deserializer=unpack_document, curve_config=curve)
        self.receive_hwm: int = RECEIVE_HWM
        setup = self._RemoteDispatcher__factory  # type: ignore[has-type]

        def setup_with_hwm() -> None:
            import zmq

            setup()
            set_hwm(self._socket, zmq.RCVHWM, self.receive_hwm, self.address)

        self._RemoteDispatcher__factory = setup_with_hwm  # bluesky's socket setup, wrapped
        if int(max_message_bytes) < 1:
            raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
        self.max_message_bytes = int(max_message_bytes)
        self.accepted = 0
        self.rejected = 0

    async def _poll(self) -> None:
        socket = self._socket  # made by start(), before this task runs
        assert socket is not None
        while True:
            message = await socket.recv()
            self.handle(message)

    def handle(self, message: bytes) -> bool:
        """Dispatch one raw 0MQ message; True if a document reached the callbacks.

        Never raises (but for BaseException such as task cancellation).
        """
        try:
            if len(message) > self.max_message_bytes:
                raise WireFormatError(f"over the {self.max_message_bytes}-byte limit")
            parsed = parse_message(message, self._prefix)
        except WireFormatError as exc:
            self._reject(len(message), str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - any byte sequence; never end the loop
            self._reject(len(message), repr(exc))
            return False
        if parsed is None:
            return False
        name, doc = parsed
        try:
            self.process(DocumentNames[name], doc)
        except Exception as exc:  # noqa: BLE001 - a callback's failure ends one message
            uid = doc.get("uid")
            self._reject(len(message), f"{name} {str(uid)[:40]}: callback failed: {exc!r}")
            return False
        self.accepted += 1
        return True

    def _reject(self, size: int, why: str) -> None:
        self.rejected += 1
        logger.warning("dropped a 0MQ message of %d bytes: %s", size, why[:300])
