"""Recognise camera streams by the camera model a descriptor declares, not by name.

Which model strings mean which camera, and what each camera's values are called, come
from ``CameraKeys`` (one per camera, in ``CameraRecognition``), so a beamline whose
detectors name their data keys differently says so in its profile
(``devices.<camera>.keys``) instead of renaming its devices. Today's names are the
defaults: ``<device>_image``, ``<device>_frame_number``, ``<device>_time_ns``,
``<device>_trigger_flag`` (Phantom) and ``<device>_camera_model`` (or ophyd-async's
``<device>-camera_model``) in the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from ..core import ConfigModel, DocumentError

__all__ = [
    "CameraKeys",
    "CameraRecognition",
    "CameraStream",
    "KEY_SEPARATORS",
    "PHANTOM_KEYS",
    "PHANTOM_MODELS",
    "SHIMADZU_KEYS",
    "SHIMADZU_MODELS",
    "camera_of",
    "camera_stream",
    "declares_camera",
    "key_matches",
]

PHANTOM_MODELS = frozenset({"Phantom TMX7510"})
SHIMADZU_MODELS = frozenset({"Shimadzu HPV-X2"})

#: a key names a value when it IS that name or ends in one of these plus the name
#: (ophyd joins device and signal with ``_``, ophyd-async with ``-``)
KEY_SEPARATORS = ("_", "-")

Camera = Literal["phantom", "shimadzu"]


def key_matches(key: str, name: str) -> bool:
    """Whether data or configuration key ``key`` is the value called ``name``."""
    return key == name or any(key.endswith(sep + name) for sep in KEY_SEPARATORS)


class CameraKeys(ConfigModel):
    """What one camera's descriptors call its values (signal names, without the device's).

    ``models``: the camera model strings (the ``model`` configuration value) that mean
    this camera. ``trigger_flag``: the Phantom's 'E' flag (None: the camera has none).
    """

    models: tuple[str, ...] = Field(min_length=1)
    model: str = Field("camera_model", min_length=1)
    image: str = Field("image", min_length=1)
    frame_number: str = Field("frame_number", min_length=1)
    time_ns: str = Field("time_ns", min_length=1)
    trigger_flag: str | None = Field(None, min_length=1)
    frame_time_ns: str = Field("frame_time_ns", min_length=1)
    n_frames: str = Field("n_frames", min_length=1)


PHANTOM_KEYS = CameraKeys(models=tuple(sorted(PHANTOM_MODELS)), trigger_flag="trigger_flag")
SHIMADZU_KEYS = CameraKeys(models=tuple(sorted(SHIMADZU_MODELS)))


class CameraRecognition(ConfigModel):
    """Both cameras' ``CameraKeys``: how fusion and live calibration find the cameras."""

    phantom: CameraKeys = PHANTOM_KEYS
    shimadzu: CameraKeys = SHIMADZU_KEYS

    @model_validator(mode="after")
    def _distinct(self) -> CameraRecognition:
        both = set(self.phantom.models) & set(self.shimadzu.models)
        if both:
            raise ValueError(f"camera models {sorted(both)} are claimed by both cameras")
        if self.phantom.trigger_flag is None:
            raise ValueError("phantom.trigger_flag: the Phantom's 'E' flag needs a key")
        return self

    def camera(self, model: Any) -> Camera | None:
        """Which camera ``model`` (a camera model string) is, if either."""
        if model in self.phantom.models:
            return "phantom"
        if model in self.shimadzu.models:
            return "shimadzu"
        return None

    def keys(self, camera: Camera) -> CameraKeys:
        return self.phantom if camera == "phantom" else self.shimadzu


DEFAULT_RECOGNITION = CameraRecognition()


@dataclass(frozen=True)
class CameraStream:
    """Where one camera's values sit in the events of one descriptor."""

    camera: Camera
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


def _config_value(config: dict[str, Any], name: str) -> Any:
    """The value of the configuration key that is the value called ``name``."""
    for key, value in config.get("data", {}).items():
        if key_matches(key, name):
            return value
    return None


def _find_key(
    keys: list[str], name: str | None, model: str, uid: str | None, required: bool
) -> str | None:
    hits = [k for k in keys if name is not None and key_matches(k, name)]
    if not hits and required:
        seps = " or ".join(repr(s + str(name)) for s in KEY_SEPARATORS)
        raise DocumentError(
            "descriptor",
            uid,
            f"{model} stream has no data key {name!r} nor one ending in {seps} "
            f"(keys: {sorted(keys)[:12]}); set devices.<camera>.keys in the profile",
        )
    return hits[0] if hits else None


def _declared(
    descriptor: dict[str, Any], cameras: CameraRecognition
) -> tuple[str, dict[str, Any], Camera, str] | None:
    """(object name, its configuration, camera, model) of the first camera declared."""
    for object_name, config in (descriptor.get("configuration") or {}).items():
        for camera in ("phantom", "shimadzu"):
            model = _config_value(config, cameras.keys(camera).model)  # type: ignore[arg-type]
            if cameras.camera(model) == camera:
                return object_name, config, camera, str(model)  # type: ignore[return-value]
    return None


def camera_of(
    descriptor: dict[str, Any], cameras: CameraRecognition | None = None
) -> Camera | None:
    """Which camera the descriptor's configuration declares (by camera model), if any."""
    found = _declared(descriptor, cameras or DEFAULT_RECOGNITION)
    return found[2] if found else None


def declares_camera(descriptor: dict[str, Any], cameras: CameraRecognition | None = None) -> bool:
    """Whether the descriptor says it comes from a camera ``cameras`` knows."""
    return camera_of(descriptor, cameras) is not None


def camera_stream(
    descriptor: dict[str, Any], cameras: CameraRecognition | None = None
) -> CameraStream | None:
    """The camera a descriptor belongs to, or None for streams fusion ignores.

    Raises ``DocumentError`` naming the descriptor when a declared camera's stream
    lacks a value ``cameras`` says it has (default: today's key names).
    """
    cameras = cameras or DEFAULT_RECOGNITION
    found = _declared(descriptor, cameras)
    if found is None:
        return None
    object_name, config, camera, model = found
    names = cameras.keys(camera)
    uid = descriptor.get("uid")
    keys = descriptor.get("object_keys", {}).get(object_name) or list(descriptor["data_keys"])
    image_key = _find_key(keys, names.image, model, uid, True) or ""
    shape = descriptor["data_keys"][image_key].get("shape") or []
    shape = [int(v) for v in shape if v is not None][-2:]
    if len(shape) != 2:
        raise DocumentError("descriptor", uid, f"{image_key} has no 2-D frame shape: {shape}")
    frame_time = _config_value(config, names.frame_time_ns)
    n_frames = _config_value(config, names.n_frames)
    return CameraStream(
        camera=camera,
        model=model,
        descriptor_uid=str(uid),
        stream_name=str(descriptor.get("name", "primary")),
        object_name=object_name,
        image_key=image_key,
        frame_number_key=_find_key(keys, names.frame_number, model, uid, True) or "",
        time_key=_find_key(keys, names.time_ns, model, uid, True) or "",
        flag_key=_find_key(keys, names.trigger_flag, model, uid, names.trigger_flag is not None),
        frame_shape=(shape[0], shape[1]),
        frame_time_ns=float(frame_time) if frame_time else None,
        n_frames=int(n_frames) if n_frames else None,
    )


#: More frames than any burst of either camera holds; a larger count is no count.
MAX_ANNOUNCED_FRAMES = 10_000_000


def announced_frames(start: Mapping[str, Any], camera: str) -> int | None:
    """The frame count a raw run's start announces for ``camera`` (``n_frames``), or
    None where it says none plainly: the start comes from outside (``n_frames: [7, 24]``
    was an AttributeError that ended a whole reprocess)."""
    counts = start.get("n_frames")
    n = counts.get(camera) if isinstance(counts, dict) else None
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= MAX_ANNOUNCED_FRAMES:
        return None
    return n
