"""The beamline profile: one YAML file says which cameras, where data goes, which model.

Validated with pydantic so a typo fails at load time with the file and the field named,
not halfway through an experiment. Unknown keys are errors (``extra="forbid"``).
Relative paths are taken relative to the current working directory, ``~`` is expanded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..core import ConfigError, ConfigModel, load_config, read_mapping
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
    """One camera: which backend drives it and, for EPICS, its PV prefix."""

    backend: Literal["sim", "recorded", "epics"] = "sim"
    prefix: str = ""
    pixel_size_um: float | None = Field(default=None, gt=0)
    inline: bool = False


class SimSceneProfile(SceneConfig):
    """Simulated cameras: the scene engine's own settings, plus the calibration-grid run.

    Every :class:`~xfusion_stream.simulation.SceneConfig` field may be set here (sizes
    may be small for tests); ``grid_frames`` is the length of a grid-calibration burst.
    """

    grid_frames: int = Field(default=32, ge=2)

    def scene_config(self) -> SceneConfig:
        """The scene these settings describe (``grid_frames`` is not the scene's)."""
        return SceneConfig.from_config(self)


class DevicesProfile(ConfigModel):
    phantom: CameraProfile = CameraProfile()
    shimadzu: CameraProfile = CameraProfile()
    sim: SimSceneProfile = SimSceneProfile()
    recorded_case: Path | None = None


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

    def fusion_config(self, data_dir: Path | None = None) -> FusionConfig:
        """The ``fusion:`` block, fused frames stored as HDF5 in ``<data_dir>/fused``
        unless it names ``fused_data_dir`` (``data_dir``: the profile's by default)."""
        if self.fusion.fused_data_dir is not None:
            folder = Path(self.fusion.fused_data_dir).expanduser().resolve()
        else:
            folder = (data_dir or self.resolved_data_dir()) / "fused"
        return self.fusion.model_copy(update={"fused_data_dir": str(folder)})

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
