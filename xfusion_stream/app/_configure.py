"""``configure_xfusion``: xfusion-stream on a RunEngine and a Tiled client someone else made.

A beamline's profile_collection already has its RunEngine and its Tiled (often from
``nslsii.configure_base``); this adds live fusion, and optionally a raw TiledWriter, to
them the way ``nslsii.configure_base`` adds its own callbacks: plain ``RE.subscribe``,
nothing private. ``build_beamline`` and ``attach_fusion`` are built on it.

At most one raw writer and one fusion session per RunEngine: a second call that would
write or fuse every run twice is refused (``XFusionError``) until the first handle is
closed. Parts that do not overlap (the beamline's raw writer, then fusion) combine.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..calibration import CalibrationRecord, load_record
from ..core import ConfigError, XFusionError
from ..fusion import FusedRunResult, FusionConfig, FusionModel, load_fusion_model
from ..publishing import OffLoopWriter
from ._profile_model import Profile, load_profile
from ._progress import AcquisitionProgress, FusionProgress
from ._session import FusionSession

__all__ = ["XFusion", "configure_xfusion", "profile_calibration", "profile_model_spec"]

#: how long ``close`` lets the latest run finish fusing before closing the sinks
DRAIN_TIMEOUT_S = 600.0
RAW_WRITER, FUSION = "raw_writer", "fusion"

_lock = threading.Lock()
#: live handles per RunEngine (weakly: a RunEngine thrown away takes its entry with it)
_handles: weakref.WeakKeyDictionary[Any, list[XFusion]] = weakref.WeakKeyDictionary()


@dataclass(eq=False)  # a handle is itself, not its fields
class XFusion:
    """What ``configure_xfusion`` subscribed to ``RE``; ``close()`` takes it all off."""

    RE: Any
    tiled_client: Any
    parts: frozenset[str]
    #: the fusion session (None with ``fuse=False``)
    session: FusionSession | None = None
    #: the raw TiledWriter (None with ``raw_writer=False``); it writes from a thread of
    #: its own (``raw_thread``), never on the RunEngine's event loop
    raw_writer: Any = None
    raw_thread: OffLoopWriter | None = field(default=None, repr=False)
    #: the fused 0MQ publisher, when ``publish_address`` was given
    publisher: Any = None
    #: acquisition bars this handle subscribed (None when another handle draws them)
    acquisition_progress: AcquisitionProgress | None = field(default=None, repr=False)
    fusion_progress: FusionProgress | None = field(default=None, repr=False)
    #: RunEngine subscriptions besides the session's own (raw writer, bars)
    tokens: list[int] = field(default_factory=list, repr=False)
    closed: bool = False

    @property
    def results(self) -> list[FusedRunResult]:
        """One result per raw run fused so far (empty without fusion)."""
        return self.session.results if self.session is not None else []

    def wait(self, timeout: float | None = None) -> str | None:
        """Block until the latest raw run is fused; its fused uid (None: none, or timeout)."""
        if self.session is None:
            return None
        result = self.session.wait(timeout)
        return result.fused_uid if result is not None else None

    def close(self) -> None:
        """Unsubscribe everything; the run being fused finishes first (bounded), then the
        sinks, publisher and bars close. Idempotent; the RunEngine stays as it was."""
        if self.closed:
            return
        self.closed = True
        try:
            for token in self.tokens:
                self.RE.unsubscribe(token)
            self.tokens.clear()
            if self.raw_thread is not None:
                self.raw_thread.close(timeout=DRAIN_TIMEOUT_S)
            if self.session is not None:
                self.session.unsubscribe()
                self.session.wait(timeout=DRAIN_TIMEOUT_S)  # a worker mid-frame must finish
                self.session.close()
        finally:
            with _lock:
                live = _handles.get(self.RE, [])
                if self in live:
                    live.remove(self)
            if self.publisher is not None:
                self.publisher.close()
            for bars in (self.fusion_progress, self.acquisition_progress):
                if bars is not None:
                    bars.close()

    detach = close

    def __enter__(self) -> XFusion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def profile_calibration(source: Any) -> CalibrationRecord:
    """The calibration a profile names, for a ``Beamline`` or a bare ``Profile``: a
    record file (relative to the profile), or ``truth``, the simulated cameras' known
    geometry."""
    profile = source if isinstance(source, Profile) else source.profile
    spec = profile.calibration
    if spec == "truth":
        dev = profile.devices
        if "sim" not in (dev.phantom.backend, dev.shimadzu.backend):
            raise ConfigError(f"{profile.source}: calibration: 'truth' needs sim cameras")
        scene = dev.sim.scene_config()
        return CalibrationRecord.from_transform(
            scene.transform, scene.shimadzu_shape, scene.phantom_shape
        )
    path = Path(spec).expanduser()
    if not path.is_absolute() and profile.source is not None:
        path = Path(profile.source).parent / path
    return load_record(path)


def profile_model_spec(profile: Profile) -> str | None:
    """What ``load_fusion_model`` takes for the profile's ``model`` (None: shipped)."""
    return None if profile.model in ("default", "") else profile.model


def _as_profile(profile: Profile | str | Path | None) -> Profile | None:
    return profile if profile is None or isinstance(profile, Profile) else load_profile(profile)


def _fusion_parts(
    profile: Profile | None,
    model: FusionModel | str | Path | None,
    calibration: CalibrationRecord | str | Path | None,
    config: FusionConfig | None,
    settings: dict[str, Any],
) -> tuple[FusionModel, CalibrationRecord, FusionConfig]:
    """Model, calibration and settings: arguments first, then the profile, then defaults."""
    if not isinstance(model, FusionModel):
        spec = model if model is not None else (profile_model_spec(profile) if profile else None)
        model = load_fusion_model(spec)
    if calibration is None:
        if profile is None:
            raise ConfigError("configure_xfusion: give a calibration (record or file) or a profile")
        calibration = profile_calibration(profile)
    elif not isinstance(calibration, CalibrationRecord):
        calibration = load_record(calibration)
    base = config or (profile.fusion_config() if profile is not None else FusionConfig())
    if settings:
        base = FusionConfig(**{**base.model_dump(), **settings})
    return model, calibration, base


def _claim(RE: Any, parts: frozenset[str]) -> AcquisitionProgress | None:  # noqa: N803
    """Refuse parts another live handle already has on ``RE``; its acquisition bars."""
    live = _handles.get(RE, [])
    taken = sorted({p for h in live for p in h.parts} & parts)
    if taken:
        raise XFusionError(
            f"configure_xfusion: this RunEngine already has xfusion's {', '.join(taken)}; "
            "close that handle first (handle.close()), or every run would be written or "
            "fused twice"
        )
    return next((h.acquisition_progress for h in live if h.acquisition_progress), None)


def configure_xfusion(
    RE: Any,  # noqa: N803 - bluesky's name
    tiled_client: Any,
    *,
    profile: Profile | str | Path | None = None,
    model: FusionModel | str | Path | None = None,
    calibration: CalibrationRecord | str | Path | None = None,
    config: FusionConfig | None = None,
    fuse: bool = True,
    raw_writer: bool = True,
    batch_size: int | None = None,
    publish_address: str | None = None,
    progress: bool = True,
    backup_directory: str | Path | None = None,
    fused_client: Any = None,
    spool_dir: str | Path | None = None,
    **settings: Any,
) -> XFusion:
    """Fuse every raw run of an existing ``RE`` into ``tiled_client`` (and raw-write it).

    ``model``, ``calibration`` and the fusion settings (``config``, or ``FusionConfig``
    fields as keywords: ``traverse_mode="double"``) default to ``profile``'s (a
    ``Profile``, a shipped name or a YAML path), then to the shipped model. ``raw_writer``
    subscribes a TiledWriter for the raw runs (False where the profile_collection already
    has one); ``fuse=False`` only writes. ``publish_address`` also sends fused runs over
    0MQ; ``progress`` draws bars on stderr. ``backup_directory`` (default: the
    profile's spool folder) is where the raw writer backs up runs Tiled refuses, for
    ``xfusion spool``; ``fused_client`` is a separate Tiled node for fused runs
    (default: ``tiled_client``); ``spool_dir`` (default: the profile's spool folder) keeps
    every fused document on disk until Tiled has it, so a Tiled outage loses nothing.
    Returns a handle: ``wait()``, ``close()``.
    """
    from ..publishing import make_publisher, make_tiled_writer

    prof = _as_profile(profile)
    parts = frozenset(p for p, on in ((RAW_WRITER, raw_writer), (FUSION, fuse)) if on)
    if not parts:
        raise ConfigError("configure_xfusion: nothing to do (fuse=False, raw_writer=False)")
    fusion_parts = _fusion_parts(prof, model, calibration, config, settings) if fuse else None
    if batch_size is None and prof is not None:
        batch_size = prof.tiled.batch_size
    with _lock:
        shared_bars = _claim(RE, parts)
        handle = XFusion(RE, tiled_client, parts)
        _handles.setdefault(RE, []).append(handle)
    try:
        if raw_writer:
            if backup_directory is None and prof is not None:
                backup_directory = prof.resolved_spool_dir()
            handle.raw_writer = make_tiled_writer(
                tiled_client, batch_size=batch_size, backup_directory=backup_directory
            )
            handle.raw_thread = OffLoopWriter(handle.raw_writer)
            handle.tokens.append(RE.subscribe(handle.raw_thread))
        if progress and shared_bars is None:
            shared_bars = handle.acquisition_progress = AcquisitionProgress()
            handle.tokens.append(RE.subscribe(shared_bars))
        if fusion_parts is not None:
            fused_model, record, fusion_config = fusion_parts
            sinks: list[Any] = [make_tiled_writer(fused_client or tiled_client)]
            if publish_address:
                handle.publisher = make_publisher(publish_address)
                sinks.append(handle.publisher)
            raw_start = shared_bars.raw_start if shared_bars is not None else None
            handle.fusion_progress = FusionProgress(raw_start, enabled=progress)
            sinks.append(handle.fusion_progress)
            if spool_dir is None and prof is not None:
                spool_dir = prof.resolved_spool_dir()  # the profile's spool folder
            handle.session = FusionSession(
                fused_model, record, sinks, fusion_config, spool_dir=spool_dir
            )
            handle.session.subscribe(RE)
    except BaseException:
        handle.close()
        raise
    return handle
