"""The demo's two cameras: simulated in this process, or soft IOCs over Channel Access.

Why two: ``--cameras sim`` drives ophyd cameras over the scene engine (frames as
events); ``--cameras epics`` starts the soft camera IOCs (``xfusion ioc``) and drives
ophyd-async areaDetector detectors over real CA (fly scans: the IOC writes the files,
the run carries StreamResource/StreamDatum). Both look at the same scene, calibrate
from the same G400 grid and hand fusion the same frames; the rest of the demo never
asks which it has.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..core import XFusionError
from ..simulation import Scene, SceneConfig
from ._epics_cameras import close_channels, connect_devices
from ._iocs import SoftIOCs, soft_iocs

__all__ = ["CAMERA_KINDS", "DemoCameras", "demo_cameras"]

CAMERA_KINDS = ("sim", "epics")

Plan = Generator[Any, Any, Any]


class DemoCameras(Protocol):
    """What the demo needs of its cameras: the scene they look at, and its two plans."""

    kind: str

    @property
    def scene(self) -> Scene: ...

    def connect(self, RE: Any) -> None: ...  # noqa: N803 - bluesky's name

    def close(self, RE: Any) -> None: ...  # noqa: N803 - bluesky's name

    def calibration_plan(self) -> Plan: ...

    def burst_plan(self, md: dict[str, Any]) -> Plan: ...


class SimCameras:
    """The simulated ophyd cameras, sharing one ``SimBeam``."""

    kind = "sim"

    def __init__(self, config: SceneConfig, raw_dir: Path, progress: bool) -> None:
        from ..devices import (
            PhantomTMX7510,
            ShimadzuHPVX2,
            SimBeam,
            SimPhantomBackend,
            SimShimadzuBackend,
        )

        self.beam = SimBeam(config)
        self.phantom = PhantomTMX7510(
            "XF:DEMO:PH:",
            name="phantom",
            backend=SimPhantomBackend(self.beam),
            data_dir=raw_dir,
            progress=progress,
        )
        self.shimadzu = ShimadzuHPVX2(
            "XF:DEMO:HPV:",
            name="shimadzu",
            backend=SimShimadzuBackend(self.beam),
            data_dir=raw_dir,
            progress=progress,
        )

    @property
    def scene(self) -> Scene:
        return self.beam.scene

    def connect(self, RE: Any) -> None:  # noqa: N803 - bluesky's name
        pass  # in-process: nothing to reach

    def close(self, RE: Any) -> None:  # noqa: N803 - bluesky's name
        pass

    def calibration_plan(self) -> Plan:
        from xfusion_plans import grid_calibration

        return grid_calibration(self.phantom, self.shimadzu)

    def burst_plan(self, md: dict[str, Any]) -> Plan:
        from xfusion_plans import dual_camera_burst

        return dual_camera_burst(self.phantom, self.shimadzu, md=md)


class EpicsCameras:
    """ophyd-async areaDetector detectors on the soft IOCs, and their grid stage."""

    kind = "epics"

    def __init__(self, iocs: SoftIOCs, config: SceneConfig) -> None:
        from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
        from ophyd_async.epics.core import epics_signal_rw

        from ..devices import EpicsBurstDetector

        self.iocs = iocs
        self._scene = Scene(config)
        paths = StaticPathProvider(UUIDFilenameProvider(), iocs.data_dir)
        prefixes = iocs.prefixes
        self.phantom = EpicsBurstDetector(
            prefixes["phantom"], paths, camera="phantom", name="phantom"
        )
        self.shimadzu = EpicsBurstDetector(
            prefixes["shimadzu"], paths, camera="shimadzu", name="shimadzu"
        )
        self.grid_stage = epics_signal_rw(str, prefixes["beam"] + "Target", name="grid_stage")

    @property
    def scene(self) -> Scene:
        return self._scene

    def connect(self, RE: Any, timeout: float = 10.0) -> None:  # noqa: N803 - bluesky's name
        """Connect over CA on ``RE``'s event loop, where the plans will drive them."""
        devices = (self.phantom, self.shimadzu, self.grid_stage)
        connect_devices(RE, devices, timeout, f" (IOC log: {self.iocs.log})")

    def close(self, RE: Any) -> None:  # noqa: N803 - bluesky's name
        """Close the CA channels while ``RE``'s loop still runs: the IOC's exit would
        otherwise call into a closed loop."""
        close_channels(RE)

    def calibration_plan(self) -> Plan:
        from xfusion_plans import fly_grid_calibration

        return fly_grid_calibration(self.phantom, self.shimadzu, self.grid_stage)

    def burst_plan(self, md: dict[str, Any]) -> Plan:
        from xfusion_plans import fly_dual_camera_burst

        return fly_dual_camera_burst(self.phantom, self.shimadzu, md=md)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block (the CA client reads it at its first
    connection, once per process)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def demo_cameras(
    kind: str, config: SceneConfig, raw_dir: Path, *, progress: bool
) -> Iterator[DemoCameras]:
    """The ``kind`` cameras over ``config``, writing under ``raw_dir``; soft IOCs (epics)
    run on loopback, on free ports, until the block ends."""
    if kind == "sim":
        yield SimCameras(config, raw_dir, progress)
    elif kind == "epics":
        work = raw_dir.parent / "ioc"
        with soft_iocs(raw_dir, config, work_dir=work) as iocs, _environment(iocs.env):
            yield EpicsCameras(iocs, config)
    else:
        raise XFusionError(f"cameras must be one of {CAMERA_KINDS}, got {kind!r}")
