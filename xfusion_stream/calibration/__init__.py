"""calibration room."""

# temporal calibration (pairing tables, file and live paths)
from ._temporal import MODES, PairingTable, Window, frame_time_ns, pairing_table
from ._temporal_stream import StreamingPairer

__all__ = [
    "MODES",
    "PairingTable",
    "StreamingPairer",
    "Window",
    "frame_time_ns",
    "pairing_table",
]

