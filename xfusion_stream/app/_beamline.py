"""Build a working beamline (RunEngine, cameras, Tiled, raw writer) from a profile.

Raw documents go to Tiled through their own TiledWriter subscription, independent of
anything downstream (fusion), so raw data are never lost when fusion fails.
Cameras with ``backend: epics`` are the ophyd-async ``EpicsBurstDetector``s the epics
demo drives, connected over Channel Access on the RunEngine's loop: run
``fly_dual_camera_burst`` / ``fly_grid_calibration`` with them. The other backends
build the ophyd cameras ``dual_camera_burst`` takes.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..devices import (
    CameraBackend,
    EpicsBurstDetector,
    PhantomTMX7510,
    RecordedCaseBackend,
    ShimadzuHPVX2,
    SimBeam,
    SimPhantomBackend,
    SimShimadzuBackend,
)
from ._configure import XFusion, configure_xfusion
from ._epics_cameras import close_channels, connect_devices, epics_detectors
from ._profile_model import CameraProfile, Profile
from ._progress import AcquisitionProgress
from ._run_engine import close_run_engine

__all__ = ["Beamline", "build_beamline"]


@dataclass
class Beamline:
    """Everything a session needs; ``close()`` stops the RunEngine loop, 0MQ and Tiled."""

    profile: Profile
    RE: Any
    #: ``EpicsBurstDetector`` for ``backend: epics`` (fly plans), else the ophyd camera
    phantom: PhantomTMX7510 | EpicsBurstDetector
    shimadzu: ShimadzuHPVX2 | EpicsBurstDetector
    tiled_client: Any
    #: ``configure_xfusion``'s handle for the raw TiledWriter and the acquisition bars
    xfusion: XFusion
    data_dir: Path
    tiled_server: Any = None
    #: the facility's node for fused runs (``tiled.derived_uri``); None: beside raw runs
    derived_client: Any = None
    sim_beam: SimBeam | None = None
    #: 0MQ Publisher of the raw documents (prefix ``raw``) when the profile has ``zmq:``
    raw_publisher: Any = None
    raw_publisher_token: int | None = None
    #: progress bars on stderr (acquisition here, fusion in ``attach_fusion``)
    progress: bool = True
    #: called first by ``close()``, newest first (e.g. ``attach_fusion``'s detach)
    closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def tiled_writer(self) -> Any:
        """The raw runs' TiledWriter."""
        return self.xfusion.raw_writer

    @property
    def acquisition_progress(self) -> AcquisitionProgress | None:
        """The RunEngine subscription that draws the acquisition bars."""
        return self.xfusion.acquisition_progress

    def close(self) -> None:
        """Detach fusion, then the raw writer; stop the RunEngine, 0MQ and Tiled."""
        if self._closed:
            return
        self._closed = True
        try:
            for closer in reversed(self.closers):
                closer()
            self.xfusion.close()
            if self.raw_publisher_token is not None:
                self.RE.unsubscribe(self.raw_publisher_token)
            if self.profile.devices.epics:
                close_channels(self.RE)
            close_run_engine(self.RE)
        finally:
            if self.raw_publisher is not None:
                self.raw_publisher.close()
            if self.derived_client is not None:
                self.derived_client.context.close()
            if self.tiled_server is not None:
                self.tiled_server.close()
            else:
                self.tiled_client.context.close()

    def __enter__(self) -> Beamline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _backend(which: str, cam: CameraProfile, beam: SimBeam | None, case: Any) -> CameraBackend:
    if cam.backend == "sim":
        assert beam is not None
        return SimPhantomBackend(beam) if which == "phantom" else SimShimadzuBackend(beam)
    return RecordedCaseBackend(case, which)  # type: ignore[arg-type]


def _tiled(profile: Profile, data_dir: Path) -> tuple[Any, Any]:
    """(server or None, client) as the profile asks."""
    from ..publishing import EmbeddedTiled, connect_tiled

    if profile.tiled.uri == "embedded":
        # embedded servers use the process-wide key (see EmbeddedTiled)
        fused = Path(profile.fusion_config(data_dir).fused_data_dir or data_dir / "fused")
        fused.mkdir(parents=True, exist_ok=True)
        raw = [data_dir / "raw", *_ioc_file_dirs(profile)]
        server = EmbeddedTiled(data_dir / "tiled", readable_storage=[*raw, fused])
        return server, server.client()
    return None, connect_tiled(profile.tiled.uri, api_key=_api_key(profile))


def _ioc_file_dirs(profile: Profile) -> list[Path]:
    """Folders the camera IOCs write into, other than ``<data_dir>/raw``."""
    cams = (profile.devices.phantom, profile.devices.shimadzu)
    return [c.file_dir.expanduser().resolve() for c in cams if c.backend == "epics" and c.file_dir]


def _api_key(profile: Profile) -> str | None:
    env = profile.tiled.api_key_env
    return os.environ.get(env) if env else None


def close_at_exit(close: Callable[[], None]) -> None:
    """Run ``close`` when the interpreter shuts down, BEFORE it waits for threads.

    An embedded Tiled server runs in non-daemon threads (uvicorn, AnyIO workers), and
    the interpreter joins those before it runs ``atexit`` hooks: a script that never
    calls ``close()`` would wait forever. ``threading``'s own pre-join hook (the one
    ``concurrent.futures`` uses) runs first; ``close`` must be idempotent.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # not CPython 3.9+: the plain hook, and an explicit close()
        atexit.register(close)
        return
    try:
        register(close)
    except RuntimeError:  # already shutting down
        atexit.register(close)


def _cameras(
    profile: Profile, raw_dir: Path, progress: bool
) -> tuple[dict[str, Any], SimBeam | None]:
    """Both cameras as the profile's devices block says, and the simulated beam if any."""
    dev = profile.devices
    if dev.epics:
        return epics_detectors(profile, raw_dir), None
    beam = None
    if "sim" in (dev.phantom.backend, dev.shimadzu.backend):
        beam = SimBeam(dev.sim.scene_config(), grid_frames=dev.sim.grid_frames)
    case = None
    if "recorded" in (dev.phantom.backend, dev.shimadzu.backend):
        from ..recorded import read_case

        case = read_case(profile.resolved_recorded_case())
    cameras: dict[str, Any] = {}
    for which, cls, cam in (
        ("phantom", PhantomTMX7510, dev.phantom),
        ("shimadzu", ShimadzuHPVX2, dev.shimadzu),
    ):
        cameras[which] = cls(
            cam.prefix,
            name=cam.name or which,
            backend=_backend(which, cam, beam, case),
            data_dir=raw_dir,
            inline=cam.inline,
            pixel_size_um=cam.pixel_size_um,
            progress=progress,
        )
    return cameras, beam


def _undo(server: Any, client: Any, RE: Any, raw: Any, publisher: Any) -> None:  # noqa: N803
    """Let go of what a ``build_beamline`` that failed halfway had started."""
    if raw is not None:
        raw.close()
    if publisher is not None:
        publisher.close()
    if RE is not None:
        close_channels(RE)
        close_run_engine(RE)
    if server is not None:
        server.close()
    else:
        client.context.close()


def build_beamline(
    profile: Profile, *, data_dir: str | Path | None = None, progress: bool = True
) -> Beamline:
    """RunEngine + both cameras + Tiled (embedded or remote) + raw TiledWriter.

    ``close()`` ends it; a script that forgets gets it at exit, after the latest fused run
    attached by ``attach_fusion`` has finished.

    A profile with a ``zmq:`` block also publishes the raw documents to ``zmq.raw_in``
    (prefix ``raw``), where ``xfusion serve`` behind a proxy can fuse them.
    ``progress`` (default True) draws bars on stderr while a burst is read out of camera
    memory and acquired, and, through ``attach_fusion``, while it is fused; False
    silences them.
    """
    from bluesky import RunEngine

    from ..publishing import RAW_PREFIX, make_publisher

    data = Path(data_dir).expanduser().resolve() if data_dir else profile.resolved_data_dir()
    (data / "raw").mkdir(parents=True, exist_ok=True)
    cameras, beam = _cameras(profile, data / "raw", progress)
    server, client = _tiled(profile, data)
    RE = raw = publisher = None
    try:
        RE = RunEngine({"beamline_profile": profile.name})
        # the beamline is one more user of the profile_collection hook: raw writer only
        raw = configure_xfusion(
            RE,
            client,
            profile=profile,
            fuse=False,
            raw_writer=True,
            progress=progress,
            backup_directory=profile.resolved_spool_dir(data),
        )
        derived = None
        if profile.tiled.derived_uri is not None:
            from ..publishing import connect_tiled

            derived = connect_tiled(profile.tiled.derived_uri, api_key=_api_key(profile))
        publisher, publisher_token = None, None
        if profile.zmq is not None:
            publisher = make_publisher(profile.zmq.raw_in, prefix=RAW_PREFIX)
            publisher_token = RE.subscribe(publisher)
        if profile.devices.epics:  # over CA, on the loop the plans will drive them from
            connect_devices(RE, [cameras["phantom"], cameras["shimadzu"]])
    except Exception:
        _undo(server, client, RE, raw, publisher)
        raise
    beamline = Beamline(
        profile=profile,
        RE=RE,
        phantom=cameras["phantom"],
        shimadzu=cameras["shimadzu"],
        tiled_client=client,
        derived_client=derived,
        xfusion=raw,
        data_dir=data,
        tiled_server=server,
        sim_beam=beam,
        raw_publisher=publisher,
        raw_publisher_token=publisher_token,
        progress=progress,
    )
    close_at_exit(beamline.close)
    return beamline
