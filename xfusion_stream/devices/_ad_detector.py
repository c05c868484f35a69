"""What both ophyd-async burst detectors share, whichever backend records the burst.

A burst detector is an ophyd-async ``StandardDetector`` that fly-scans one burst:
``prepare(TriggerInfo(number_of_events=n))`` arms it for ``n`` frames, ``kickoff``
starts the burst, ``complete`` waits until the camera has written them, ``collect``
emits StreamResource/StreamDatum documents (one event index per frame). Beside the
frames (``<name>_image``) the file holds one dataset per frame value, written by the
camera as areaDetector NDAttributes: ``<name>_frame_number``, ``<name>_time_ns`` and,
on the Phantom, ``<name>_trigger_flag`` (the 'E' flag). The part after ``<name>_``
comes from the camera's ``CameraKeys`` (default: the names above), the same object the
document reader (``documents.camera_stream``) is given, and ``<name>-camera_model`` in
the configuration says which camera a stream is.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from bluesky.protocols import Collectable, Flyable, Preparable
from ophyd_async.core import SignalR, TriggerInfo
from ophyd_async.epics.adcore import NDAttributeDataType, NDAttributeParam

from ..documents import PHANTOM_KEYS, SHIMADZU_KEYS, CameraKeys
from ._phantom import PHANTOM_MODEL
from ._shimadzu import SHIMADZU_MODEL

__all__ = [
    "BurstDetector",
    "CAMERA_MODELS",
    "FRAME_ATTRIBUTES",
    "IMAGE_SUFFIX",
    "burst_keys",
    "burst_ndattributes",
    "burst_trigger_info",
    "frame_value_keys",
]

Camera = Literal["phantom", "shimadzu"]

#: data key of the frames: the detector's name plus this
IMAGE_SUFFIX = "_image"

#: per camera: (``CameraKeys`` field naming the value, driver parameter the camera
#: stamps, NDAttribute type)
FRAME_ATTRIBUTES: dict[str, tuple[tuple[str, str, NDAttributeDataType], ...]] = {
    "phantom": (
        ("frame_number", "FRAME_NUMBER", NDAttributeDataType.INT),
        ("time_ns", "TIME_NS", NDAttributeDataType.INT64),
        ("trigger_flag", "TRIGGER_FLAG", NDAttributeDataType.INT),
    ),
    "shimadzu": (
        ("frame_number", "FRAME_NUMBER", NDAttributeDataType.INT),
        ("time_ns", "TIME_NS", NDAttributeDataType.INT64),
    ),
}

CAMERA_MODELS: dict[str, str] = {"phantom": PHANTOM_MODEL, "shimadzu": SHIMADZU_MODEL}


def burst_keys(camera: Camera, keys: CameraKeys | None = None) -> CameraKeys:
    """``keys``, or the camera's default names; refused if it names no Phantom flag."""
    keys = keys or (PHANTOM_KEYS if camera == "phantom" else SHIMADZU_KEYS)
    if camera == "phantom" and keys.trigger_flag is None:
        raise ValueError("a Phantom burst detector needs keys.trigger_flag (the 'E' flag)")
    return keys


def frame_value_keys(name: str, camera: Camera, keys: CameraKeys) -> dict[str, str]:
    """Data key -> ``CameraKeys`` field of each per-frame value of detector ``name``."""
    return {f"{name}_{getattr(keys, field)}": field for field, _, _ in FRAME_ATTRIBUTES[camera]}


def burst_ndattributes(
    name: str, camera: Camera, keys: CameraKeys | None = None
) -> list[NDAttributeParam]:
    """The NDAttributes a burst camera stamps on each frame, named after the detector
    and ``keys`` (default: the camera's default names)."""
    keys = burst_keys(camera, keys)
    params = {field: (param, datatype) for field, param, datatype in FRAME_ATTRIBUTES[camera]}
    return [
        NDAttributeParam(
            name=key,
            param=params[field][0],
            datatype=params[field][1],
            description=f"{camera} {field.replace('_', ' ')} of each frame",
        )
        for key, field in frame_value_keys(name, camera, keys).items()
    ]


def burst_trigger_info(n_frames: int) -> TriggerInfo:
    """One burst of ``n_frames`` frames, one event index (and StreamDatum row) each."""
    return TriggerInfo(number_of_events=int(n_frames))


@runtime_checkable
class BurstDetector(Preparable, Flyable, Collectable, Protocol):
    """What the fly plans need of a camera: its model and its burst length."""

    name: str
    camera_model: SignalR[str]
    burst_frames: SignalR[int]
