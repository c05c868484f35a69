"""The beamline profile: one YAML file says which cameras, where data goes, which model.

Validated with pydantic so a typo fails at load time with the file and the field named,
not halfway through an experiment. Unknown keys are errors (``extra="forbid"``).
Relative paths are taken relative to the current working directory, ``~`` is expanded.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core import ConfigError

__all__ = [
    "CameraProfile",
    "DevicesProfile",
    "Profile",
    "SimSceneProfile",
    "TiledProfile",
    "ZmqProfile",
    "available_profiles",
    "load_profile",
]

_ZMQ_RE = re.compile(r"^tcp://[A-Za-z0-9_.\-]+:\d{1,5}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraProfile(_Strict):
    """One camera: which backend drives it and, for EPICS, its PV prefix."""

    backend: Literal["sim", "recorded", "epics"] = "sim"
    prefix: str = ""
    pixel_size_um: float | None = Field(default=None, gt=0)
    inline: bool = False


class SimSceneProfile(_Strict):
    """Scene-engine settings for simulated cameras (sizes may be small for tests)."""

    seed: int = 0
    shimadzu_shape: tuple[int, int] = (250, 400)
    n_shimadzu: int = Field(default=128, ge=2)
    shimadzu_frame_ns: int = Field(default=200, ge=1)
    phantom_every: int = Field(default=20, ge=1)
    grid_frames: int = Field(default=32, ge=2)

    @field_validator("shimadzu_shape")
    @classmethod
    def _shape(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 4:
            raise ValueError(f"must be (rows, cols) of at least 4 pixels, got {list(value)}")
        return value


class DevicesProfile(_Strict):
    phantom: CameraProfile = CameraProfile()
    shimadzu: CameraProfile = CameraProfile()
    sim: SimSceneProfile = SimSceneProfile()
    recorded_case: Path | None = None


class TiledProfile(_Strict):
    """``uri: embedded`` starts a Tiled server in the data directory."""

    uri: str = "embedded"
    api_key_env: str | None = "TILED_API_KEY"
    batch_size: int = Field(default=64, ge=1)

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be 'embedded' or an http(s) URI, got {value!r}")
        return value


class ZmqProfile(_Strict):
    """0MQ addresses: raw documents into/out of the proxy, fused documents out."""

    raw_in: str = "tcp://127.0.0.1:5577"
    raw_out: str = "tcp://127.0.0.1:5578"
    fused: str = "tcp://127.0.0.1:5579"

    @field_validator("raw_in", "raw_out", "fused")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ZMQ_RE.match(value):
            raise ValueError(f"must look like tcp://127.0.0.1:5577, got {value!r}")
        return value


class Profile(_Strict):
    name: str
    description: str = ""
    devices: DevicesProfile = DevicesProfile()
    data_dir: Path = Path("xfusion-data")
    tiled: TiledProfile = TiledProfile()
    zmq: ZmqProfile = ZmqProfile()
    model: str = "default"
    calibration: str = "truth"
    traverse: Literal["continuous", "double"] = "continuous"
    source: Path | None = None

    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    def resolved_recorded_case(self) -> Path:
        case = self.devices.recorded_case
        if case is None:
            raise ConfigError(
                f"{self.source or self.name}: devices.recorded_case: required when a "
                "camera uses backend 'recorded'"
            )
        return case.expanduser().resolve()


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``xfusion_profiles``."""
    folder = resources.files("xfusion_profiles")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _locate(path_or_name: str | Path) -> Path:
    path = Path(path_or_name).expanduser()
    if path.is_file():
        return path
    name = str(path_or_name)
    if "/" not in name and not name.endswith((".yaml", ".yml")):
        shipped = resources.files("xfusion_profiles") / f"{name}.yaml"
        if shipped.is_file():
            return Path(str(shipped))
    raise ConfigError(
        f"{path_or_name}: profile not found (not a file, not one of the shipped "
        f"profiles {available_profiles()})"
    )


def _format_errors(source: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{source}: {field}: {err['msg']}")
    return "\n".join(lines)


def load_profile(path_or_name: str | Path) -> Profile:
    """Read and validate a profile YAML (a path, or a shipped name such as ``sim``).

    Raises ``ConfigError`` naming the file and the field for every problem found.
    """
    source = _locate(path_or_name)
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: (top level): must be a mapping of profile fields")
    if "source" in raw:
        raise ConfigError(f"{source}: source: set by the loader, not allowed in the file")
    try:
        return Profile.model_validate({**raw, "source": source.resolve()})
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
