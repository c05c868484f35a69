"""A profile's EPICS cameras: ophyd-async burst detectors on areaDetector IOCs, over CA.

Why one module: the beamline (``build_beamline``), the epics demo and the tests build,
connect and let go of these detectors the same way. Connecting happens on the
RunEngine's event loop, where the fly plans drive them; the CA channels are closed on
that loop too, before it stops (an IOC that exits later would otherwise call into a
closed loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core import ConfigError, XFusionError
from ..devices import EpicsBurstDetector
from ._profile_model import Profile

__all__ = ["close_channels", "connect_devices", "epics_detectors"]


def epics_detectors(profile: Profile, raw_dir: Path) -> dict[str, EpicsBurstDetector]:
    """Both cameras of a ``backend: epics`` profile, not yet connected.

    Each IOC's HDF5 plugin writes into its camera's ``file_dir`` (default ``raw_dir``),
    a path the IOC and this host share; files are named by uuid, one per burst.
    """
    from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider

    detectors = {}
    for which in ("phantom", "shimadzu"):
        cam = getattr(profile.devices, which)
        if not cam.prefix:
            raise ConfigError(
                f"{profile.source or profile.name}: devices.{which}.prefix: required for "
                "backend epics"
            )
        folder = cam.file_dir.expanduser().resolve() if cam.file_dir else raw_dir
        paths = StaticPathProvider(UUIDFilenameProvider(), folder)
        detectors[which] = EpicsBurstDetector(
            cam.prefix,
            paths,
            camera=which,  # type: ignore[arg-type]
            driver_suffix=cam.driver_suffix,
            hdf_suffix=cam.hdf_suffix,
            name=cam.name or which,
            keys=cam.keys,
        )
    return detectors


def connect_devices(
    RE: Any,  # noqa: N803 - bluesky's name
    devices: Iterable[Any],
    timeout: float = 10.0,
    where: str = "",
) -> None:
    """Connect ophyd-async ``devices`` on ``RE``'s loop; an error names the device and PVs."""
    for device in devices:
        future = asyncio.run_coroutine_threadsafe(device.connect(timeout=timeout), RE.loop)
        try:
            future.result(timeout + 5)
        except Exception as exc:
            raise XFusionError(
                f"cannot reach {device.name} over Channel Access: {exc}{where}"
            ) from exc


def close_channels(RE: Any) -> None:  # noqa: N803 - bluesky's name
    """Close this process's CA channels on ``RE``'s loop, while it still runs."""
    from aioca import purge_channel_caches

    async def purge() -> None:
        purge_channel_caches()

    if not RE.loop.is_closed() and RE.loop.is_running():
        asyncio.run_coroutine_threadsafe(purge(), RE.loop).result(10)
