"""Publishing room: where raw and fused documents go (Tiled, 0MQ)."""

from ._tiled import (
    PROFILE_SCHEME,
    EmbeddedTiled,
    connect_tiled,
    make_tiled_writer,
    register_json_seq_exporter,
)

__all__ = [
    "PROFILE_SCHEME",
    "EmbeddedTiled",
    "connect_tiled",
    "make_tiled_writer",
    "register_json_seq_exporter",
]

from ._backup import BackupReport, reingest_tiled_backups  # noqa: E402
from ._curve import ClientCurve, ServerCurve, client_curve, make_curve_keys, server_curve  # noqa: E402
from ._doubled import DOUBLED_KEY, doubled_rows, mark_doubled_rows  # noqa: E402
from ._listener import DocumentCounter, ListenerProcess, RunCount, listen  # noqa: E402
from ._off_loop import OffLoopWriter  # noqa: E402
from ._serialization import (  # noqa: E402
    DOCUMENT_NAMES,
    WireFormatError,
    pack_document,
    unpack_document,
)
from ._sink_thread import (  # noqa: E402
    DEFAULT_DELIVERY_TIMEOUT,
    DeliveringSink,
    SinkThread,
    document_bytes,
)
from ._spool import (  # noqa: E402
    SPOOL_SUFFIX,
    Spool,
    SpoolStatus,
    append_to_spool,
    iter_spool,
    spool_files,
    spool_status,
    try_lock,
)
from ._tiled_sink import (  # noqa: E402
    ReingestReport,
    TiledSink,
    is_tiled_writer,
    reingest_spool,
    write_spooled_run,
)
from ._wire import DEFAULT_MAX_MESSAGE_BYTES, SafeRemoteDispatcher, parse_message  # noqa: E402
from ._zmq import (  # noqa: E402
    FUSED_PREFIX,
    RAW_PREFIX,
    RECEIVE_HWM,
    SEND_HWM,
    ProxyThread,
    check_address,
    dispatch_in_thread,
    make_publisher,
    make_remote_dispatcher,
    run_dispatcher,
    stop_dispatcher,
)

__all__ += [
    "BackupReport",
    "reingest_tiled_backups",
    "DEFAULT_DELIVERY_TIMEOUT",
    "DOUBLED_KEY",
    "DeliveringSink",
    "RECEIVE_HWM",
    "ReingestReport",
    "SEND_HWM",
    "SPOOL_SUFFIX",
    "OffLoopWriter",
    "SinkThread",
    "Spool",
    "SpoolStatus",
    "TiledSink",
    "document_bytes",
    "doubled_rows",
    "is_tiled_writer",
    "iter_spool",
    "mark_doubled_rows",
    "reingest_spool",
    "spool_files",
    "spool_status",
    "append_to_spool",
    "try_lock",
    "write_spooled_run",
    "ClientCurve",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DOCUMENT_NAMES",
    "SafeRemoteDispatcher",
    "ServerCurve",
    "client_curve",
    "make_curve_keys",
    "parse_message",
    "server_curve",
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
