"""The beamline profile: one YAML file says which cameras, where data goes, which model.

Validated with pydantic so a typo fails at load time with the file and the field named,
not halfway through an experiment. Unknown keys are errors (``extra="forbid"``).
Relative paths are taken relative to the current working directory, ``~`` is expanded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..core import ConfigError, ConfigModel, load_config, read_mapping
from ..documents import PHANTOM_KEYS, SHIMADZU_KEYS, CameraKeys, CameraRecognition
from ..fusion import FusionConfig
from ..publishing import check_address
from ..simulation import SceneConfig

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


class CameraProfile(ConfigModel):
    """One camera: which backend drives it and, for EPICS, its PVs and files.

    ``backend: epics``: an areaDetector IOC under ``prefix`` (driver ``prefix +
    driver_suffix``, HDF5 plugin ``prefix + hdf_suffix``) whose plugin writes into
    ``file_dir`` (as the IOC and this host both see it; default ``<data_dir>/raw``).
    ``name`` is the device name (data keys start with it; default: the camera);
    ``keys`` what its values are called (``CameraKeys``; unset fields keep the
    camera's defaults), for the EPICS detectors and for the document reader alike.
    """

    backend: Literal["sim", "recorded", "epics"] = "sim"
    prefix: str = ""
    pixel_size_um: float | None = Field(default=None, gt=0)
    inline: bool = False
    name: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    keys: CameraKeys | None = None
    driver_suffix: str = "cam1:"
    hdf_suffix: str = "HDF1:"
    file_dir: Path | None = None

    @model_validator(mode="after")
    def _keys_need_epics(self) -> CameraProfile:
        if self.keys is not None and self.backend != "epics":
            raise ValueError(
                "keys: only for backend epics (simulated and recorded cameras name "
                "their values the default way)"
            )
        return self


class SimSceneProfile(SceneConfig):
    """Simulated cameras: the scene engine's own settings, plus the calibration-grid run.

    Every :class:`~xfusion_stream.simulation.SceneConfig` field may be set here (sizes
    may be small for tests); ``grid_frames`` is the length of a grid-calibration burst.
    """

    grid_frames: int = Field(default=32, ge=2)

    def scene_config(self) -> SceneConfig:
        """The scene these settings describe (``grid_frames`` is not the scene's)."""
        return SceneConfig.from_config(self)


def _with_default_keys(camera: dict[str, Any], defaults: CameraKeys) -> dict[str, Any]:
    """A camera block whose ``keys`` (if any) are completed with the camera's defaults."""
    keys = camera.get("keys")
    if not isinstance(keys, dict):
        return camera
    return {**camera, "keys": {**defaults.model_dump(), **keys}}


class DevicesProfile(ConfigModel):
    """Both cameras, the simulated scene and the recorded case they may use."""

    phantom: CameraProfile = CameraProfile()
    shimadzu: CameraProfile = CameraProfile()
    sim: SimSceneProfile = SimSceneProfile()
    recorded_case: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _complete_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for camera, defaults in (("phantom", PHANTOM_KEYS), ("shimadzu", SHIMADZU_KEYS)):
            if isinstance(out.get(camera), dict):
                out[camera] = _with_default_keys(out[camera], defaults)
        return out

    @model_validator(mode="after")
    def _one_kind(self) -> DevicesProfile:
        kinds = {self.phantom.backend == "epics", self.shimadzu.backend == "epics"}
        if len(kinds) > 1:
            raise ValueError("backend epics: both cameras or neither (one fly-scanned burst)")
        if self.phantom.name is not None and self.phantom.name == self.shimadzu.name:
            raise ValueError(f"phantom and shimadzu are both named {self.phantom.name!r}")
        self.camera_recognition()  # the two cameras' keys must not claim the same model
        return self

    @property
    def epics(self) -> bool:
        """Whether both cameras are areaDetector IOCs (fly-scanned ophyd-async detectors)."""
        return self.phantom.backend == "epics"

    def camera_recognition(self) -> CameraRecognition:
        """How the cameras' streams are recognised: each camera's ``keys`` or defaults."""
        return CameraRecognition(
            phantom=self.phantom.keys or PHANTOM_KEYS,
            shimadzu=self.shimadzu.keys or SHIMADZU_KEYS,
        )


class TiledProfile(ConfigModel):
    """``uri: embedded`` starts a Tiled server in the data directory."""

    uri: str = "embedded"
    api_key_env: str | None = "TILED_API_KEY"
    batch_size: int = Field(default=64, ge=1)
    derived_uri: str | None = Field(
        None,
        description="where fused runs go: a node of their own on the facility server "
        "(an http(s) URI or profile:NAME; default: beside the raw runs)",
    )
    spool_dir: Path | None = Field(
        None,
        description="documents waiting for Tiled: fused runs it has not confirmed and raw "
        "runs it refused (JSON Lines), for 'xfusion spool' (default: <data_dir>/spool)",
    )

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("http://", "https://", "profile:")):
            raise ValueError(f"must be 'embedded', an http(s) URI or profile:NAME, got {value!r}")
        return value

    @field_validator("derived_uri")
    @classmethod
    def _derived(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "profile:")):
            raise ValueError(f"must be an http(s) URI or profile:NAME, got {value!r}")
        return value


class ZmqProfile(ConfigModel):
    """0MQ addresses of one ``bluesky-0MQ-proxy``; with this block a beamline publishes
    its raw documents to ``raw_in``.

    ``raw_in``/``raw_out`` are the proxy's two sides: the RunEngine publishes raw
    documents into ``raw_in`` (prefix ``raw``), ``xfusion serve`` subscribes to
    ``raw_out`` and publishes fused documents (prefix ``fused``) to ``fused``, by
    default the same proxy's ``raw_in``, so ``xfusion listen`` finds them at ``raw_out``
    and one proxy carries both.
    """

    raw_in: str = "tcp://127.0.0.1:5577"
    raw_out: str = "tcp://127.0.0.1:5578"
    fused: str | None = None

    @field_validator("raw_in", "raw_out", "fused")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value, "0MQ address")

    @property
    def fused_address(self) -> str:
        """Where fused documents are published: ``fused``, or else ``raw_in``."""
        return self.fused or self.raw_in


class Profile(ConfigModel):
    """A whole profile file; ``source`` is the file it came from (set by the loader)."""

    name: str
    description: str = ""
    devices: DevicesProfile = DevicesProfile()
    data_dir: Path = Path("xfusion-data")
    tiled: TiledProfile = TiledProfile()
    zmq: ZmqProfile | None = None
    model: str = "default"
    calibration: str = "truth"
    fusion: FusionConfig = FusionConfig()
    source: Path | None = None

    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    def resolved_spool_dir(self, data_dir: Path | None = None) -> Path:
        """The spool folder: fused documents Tiled has not confirmed, and the raw runs
        the TiledWriter backed up when Tiled refused them."""
        if self.tiled.spool_dir is not None:
            return self.tiled.spool_dir.expanduser().resolve()
        return (data_dir or self.resolved_data_dir()) / "spool"

    @model_validator(mode="after")
    def _cameras_once(self) -> Profile:
        named = self.devices.phantom.keys or self.devices.shimadzu.keys
        if named and self.fusion.cameras != CameraRecognition():
            raise ValueError(
                "fusion.cameras and devices.<camera>.keys both name the cameras' keys: "
                "keep one (devices.<camera>.keys)"
            )
        return self

    def fusion_config(self, data_dir: Path | None = None) -> FusionConfig:
        """The ``fusion:`` block, fused frames stored as HDF5 in ``<data_dir>/fused``
        unless it names ``fused_data_dir`` (``data_dir``: the profile's by default),
        cameras recognised by the devices' ``keys`` when they name any."""
        if self.fusion.fused_data_dir is not None:
            folder = Path(self.fusion.fused_data_dir).expanduser().resolve()
        else:
            folder = (data_dir or self.resolved_data_dir()) / "fused"
        update: dict[str, Any] = {"fused_data_dir": str(folder)}
        if self.devices.phantom.keys or self.devices.shimadzu.keys:
            update["cameras"] = self.devices.camera_recognition()
        return self.fusion.model_copy(update=update)

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


def load_profile(path_or_name: str | Path) -> Profile:
    """Read and validate a profile YAML (a path, or a shipped name such as ``sim``).

    Raises ``ConfigError`` naming the file and the field for every problem found.
    """
    source = _locate(path_or_name)
    raw = read_mapping(source, what="profile")
    if "source" in raw:
        raise ConfigError(f"{source}: source: set by the loader, not allowed in the file")
    return load_config(Profile, {**raw, "source": source.resolve()}, source=source)
