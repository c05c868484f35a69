"""Recognise camera streams by the camera model a descriptor declares, not by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..core import DocumentError

__all__ = [
    "CameraStream",
    "PHANTOM_MODELS",
    "SHIMADZU_MODELS",
    "camera_of",
    "camera_stream",
    "declares_camera",
]

PHANTOM_MODELS = frozenset({"Phantom TMX7510"})
SHIMADZU_MODELS = frozenset({"Shimadzu HPV-X2"})


@dataclass(frozen=True)
class CameraStream:
    """Where one camera's values sit in the events of one descriptor."""

    camera: Literal["phantom", "shimadzu"]
    model: str
    descriptor_uid: str
    stream_name: str
    object_name: str
    image_key: str
    frame_number_key: str
    time_key: str
    flag_key: str | None
    frame_shape: tuple[int, int]
    frame_time_ns: float | None
    n_frames: int | None


def _config_value(config: dict[str, Any], suffix: str) -> Any:
    """The value of the configuration key ending in ``suffix`` (``_camera_model``), with
    ophyd's ``_`` or ophyd-async's ``-`` before the signal's own name."""
    dashed = "-" + suffix.removeprefix("_")
    for key, value in config.get("data", {}).items():
        if key.endswith(suffix) or key.endswith(dashed):
            return value
    return None


def _find_key(
    keys: list[str], suffix: str, model: str, uid: str | None, required: bool
) -> str | None:
    hits = [k for k in keys if k.endswith(suffix)]
    if not hits and required:
        raise DocumentError(
            "descriptor", uid, f"{model} stream has no data key ending in {suffix!r}"
        )
    return hits[0] if hits else None


def camera_of(descriptor: dict[str, Any]) -> Literal["phantom", "shimadzu"] | None:
    """Which camera the descriptor's configuration declares (by camera model), if any."""
    for config in (descriptor.get("configuration") or {}).values():
        model = _config_value(config, "_camera_model")
        if model in PHANTOM_MODELS:
            return "phantom"
        if model in SHIMADZU_MODELS:
            return "shimadzu"
    return None


def declares_camera(descriptor: dict[str, Any]) -> bool:
    """Whether the descriptor says it comes from a camera this package knows."""
    return camera_of(descriptor) is not None


def camera_stream(descriptor: dict[str, Any]) -> CameraStream | None:
    """The camera a descriptor belongs to, or None for streams fusion ignores."""
    for object_name, config in (descriptor.get("configuration") or {}).items():
        model = _config_value(config, "_camera_model")
        if model in PHANTOM_MODELS:
            return _stream(descriptor, object_name, config, "phantom", str(model))
        if model in SHIMADZU_MODELS:
            return _stream(descriptor, object_name, config, "shimadzu", str(model))
    return None


def _stream(
    descriptor: dict[str, Any],
    object_name: str,
    config: dict[str, Any],
    camera: Literal["phantom", "shimadzu"],
    model: str,
) -> CameraStream:
    uid = descriptor.get("uid")
    keys = descriptor.get("object_keys", {}).get(object_name) or list(descriptor["data_keys"])
    image_key = _find_key(keys, "_image", model, uid, True) or ""
    shape = descriptor["data_keys"][image_key].get("shape") or []
    shape = [int(v) for v in shape if v is not None][-2:]
    if len(shape) != 2:
        raise DocumentError("descriptor", uid, f"{image_key} has no 2-D frame shape: {shape}")
    frame_time = _config_value(config, "_frame_time_ns")
    n_frames = _config_value(config, "_n_frames")
    return CameraStream(
        camera=camera,
        model=model,
        descriptor_uid=str(uid),
        stream_name=str(descriptor.get("name", "primary")),
        object_name=object_name,
        image_key=image_key,
        frame_number_key=_find_key(keys, "_frame_number", model, uid, True) or "",
        time_key=_find_key(keys, "_time_ns", model, uid, True) or "",
        flag_key=_find_key(keys, "_trigger_flag", model, uid, camera == "phantom"),
        frame_shape=(shape[0], shape[1]),
        frame_time_ns=float(frame_time) if frame_time else None,
        n_frames=int(n_frames) if n_frames else None,
    )
