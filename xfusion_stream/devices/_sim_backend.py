"""Simulated burst cameras: both read their frames and times off one shared Scene."""

from __future__ import annotations

from collections.abc import Iterator

from ..simulation import Scene, SceneConfig, grid_scene_config
from ._camera_backend import BurstLifecycle, CameraFrame, CameraSettings

__all__ = ["SimBeam", "SimPhantomBackend", "SimShimadzuBackend", "SIM_TARGETS"]

SIM_TARGETS = ("sample", "grid")


class SimBeam:
    """What sits in the simulated beam: the sample, or the G400 grid for calibration.

    Both cameras share one ``SimBeam`` so they always see the same scene. Scenes are
    built lazily and cached per target. The grid scene is static, so it is recorded
    with ``grid_frames`` post-trigger Phantom frames: enough for a calibration average.
    """

    def __init__(self, config: SceneConfig | None = None, *, grid_frames: int = 32) -> None:
        self.config = config or SceneConfig()
        self.grid_frames = int(grid_frames)
        self.target = "sample"
        self._scenes: dict[str, Scene] = {}

    def select(self, target: str) -> None:
        if target not in SIM_TARGETS:
            raise ValueError(f"sim target must be one of {SIM_TARGETS}, got {target!r}")
        self.target = target

    def _config_for(self, target: str) -> SceneConfig:
        if target == "sample":
            return self.config.replace(content="sample")
        return grid_scene_config(self.config, self.grid_frames)

    @property
    def scene(self) -> Scene:
        if self.target not in self._scenes:
            self._scenes[self.target] = Scene(self._config_for(self.target))
        return self._scenes[self.target]


class _SimCamera(BurstLifecycle):
    """What the two simulated cameras share: the beam, and the scene a burst recorded."""

    source = "simulated"

    def __init__(self, beam: SimBeam) -> None:
        self.beam = beam
        self._scene: Scene | None = None

    def select_target(self, target: str) -> None:
        self.beam.select(target)

    def _on_trigger(self) -> None:
        self._scene = self.beam.scene

    def _memory(self) -> Scene:
        self._require_recorded()
        assert self._scene is not None
        return self._scene


class SimPhantomBackend(_SimCamera):
    """Phantom frames at full resolution, every ``phantom_every``-th Shimadzu frame time."""

    camera = "Phantom"

    def settings(self) -> CameraSettings:
        scene = self.beam.scene
        return CameraSettings(
            frame_shape=scene.phantom_shape,
            n_frames=scene.n_phantom,
            frame_time_ns=float(scene.phantom_period_ns),
            frame_rate_hz=float(scene.phantom_frame_rate_hz),
            pixel_size_um=float(scene.config.phantom_pixel_um),
        )

    def readout(self, limit: int | None = None) -> Iterator[CameraFrame]:
        scene = self._memory()
        numbers = scene.phantom_frame_numbers()
        times = scene.phantom_times_ns()
        flags = scene.phantom_e_flags()
        n = len(numbers) if limit is None else min(limit, len(numbers))
        for i in range(n):
            yield CameraFrame(
                scene.phantom_frame(i), int(numbers[i]), int(times[i]), bool(flags[i])
            )


class SimShimadzuBackend(_SimCamera):
    """Shimadzu frames: registered, 4x coarser, Poisson-noisy views of the same scene."""

    camera = "Shimadzu"

    def settings(self) -> CameraSettings:
        scene = self.beam.scene
        cfg = scene.config
        return CameraSettings(
            frame_shape=scene.shimadzu_shape,
            n_frames=scene.n_shimadzu,
            frame_time_ns=float(cfg.shimadzu_frame_ns),
            frame_rate_hz=float(scene.shimadzu_frame_rate_hz),
            pixel_size_um=float(cfg.phantom_pixel_um * cfg.ratio),
        )

    def readout(self, limit: int | None = None) -> Iterator[CameraFrame]:
        scene = self._memory()
        times = scene.shimadzu_times_ns()
        n = len(times) if limit is None else min(limit, len(times))
        for k in range(n):
            # frame numbers count from 1, as the HPV-X2 and its INI do
            yield CameraFrame(scene.shimadzu_frame(k), k + 1, int(times[k]), False)
