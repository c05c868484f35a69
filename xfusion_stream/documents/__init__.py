"""The one camera-document reader: which camera a stream is, and its frames.

Fusion and live calibration both recognise cameras by the camera model a descriptor
declares, with the key names the profile gives (``CameraRecognition``), and fill frames the same way (inline, StreamResource/StreamDatum,
Resource/Datum, or a Tiled run), so a new detector or asset scheme is taught here once.
Camera streams that come as StreamDatum only (fly-scanned bursts) become the per-frame
events they imply (``StreamDatumEvents``), values read from the cameras' files; any
stream's external arrays (a fused run stored as HDF5) are read into its events for
consumers that want pixels (``FilledEvents``).
Files named by documents are opened only inside the caller's data roots, and document
sequences are checked (``RunGuard``) before any router trusts them.
"""

from ._event_filler import FilledEvents
from ._filler import ArraySource, FrameFiller
from ._paths import DataRoots, data_roots
from ._sequence import DOCUMENT_NAMES, RunGuard
from ._stream_events import StreamDatumEvents
from ._streams import (
    PHANTOM_KEYS,
    PHANTOM_MODELS,
    SHIMADZU_KEYS,
    SHIMADZU_MODELS,
    CameraKeys,
    CameraRecognition,
    CameraStream,
    announced_frames,
    camera_of,
    camera_stream,
    declares_camera,
)

__all__ = [
    "ArraySource",
    "CameraKeys",
    "CameraRecognition",
    "CameraStream",
    "DOCUMENT_NAMES",
    "DataRoots",
    "FilledEvents",
    "FrameFiller",
    "PHANTOM_KEYS",
    "PHANTOM_MODELS",
    "RunGuard",
    "SHIMADZU_KEYS",
    "SHIMADZU_MODELS",
    "StreamDatumEvents",
    "announced_frames",
    "camera_of",
    "camera_stream",
    "data_roots",
    "declares_camera",
]
