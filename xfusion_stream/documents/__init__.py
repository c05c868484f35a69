"""The one camera-document reader: which camera a stream is, and its frames.

Fusion and live calibration both recognise cameras by the camera model a descriptor
declares and fill frames the same way (inline, StreamResource/StreamDatum,
Resource/Datum, or a Tiled run), so a new detector or asset scheme is taught here once.
"""

from ._filler import ArraySource, FrameFiller
from ._streams import (
    PHANTOM_MODELS,
    SHIMADZU_MODELS,
    CameraStream,
    camera_of,
    camera_stream,
    declares_camera,
)

__all__ = [
    "ArraySource",
    "CameraStream",
    "FrameFiller",
    "PHANTOM_MODELS",
    "SHIMADZU_MODELS",
    "camera_of",
    "camera_stream",
    "declares_camera",
]
