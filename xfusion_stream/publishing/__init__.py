"""Publishing room: where raw and fused documents go (Tiled, 0MQ)."""

from ._tiled import EmbeddedTiled, make_tiled_writer, register_json_seq_exporter

__all__ = ["EmbeddedTiled", "make_tiled_writer", "register_json_seq_exporter"]

from ._listener import DocumentCounter, ListenerProcess, RunCount, listen  # noqa: E402
from ._serialization import WireFormatError, pack_document, unpack_document  # noqa: E402
from ._zmq import (  # noqa: E402
    FUSED_PREFIX,
    RAW_PREFIX,
    ProxyThread,
    check_address,
    dispatch_in_thread,
    make_publisher,
    make_remote_dispatcher,
    run_dispatcher,
    stop_dispatcher,
)

__all__ += [
    "FUSED_PREFIX",
    "RAW_PREFIX",
    "ProxyThread",
    "WireFormatError",
    "dispatch_in_thread",
    "make_publisher",
    "make_remote_dispatcher",
    "pack_document",
    "unpack_document",
    "run_dispatcher",
    "stop_dispatcher",
    "check_address",
    "DocumentCounter",
    "ListenerProcess",
    "RunCount",
    "listen",
]
