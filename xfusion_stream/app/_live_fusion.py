"""Attach live fusion to a profile-built beamline: a ``FusionSession`` subscribed to RE.

The profile names the model (registry name, checkpoint, or ``default`` for the shipped
one), the calibration (a record file, or ``truth`` for a simulated beamline whose
geometry is known) and the fusion settings. Fused runs go to the beamline's Tiled, and
over 0MQ to ``publish_address`` or, failing that, to the profile's ``zmq.fused``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..calibration import CalibrationRecord, load_record
from ..core import ConfigError
from ..fusion import FusedRunResult, FusionConfig, load_fusion_model
from ._session import FusionSession

__all__ = ["LiveFusion", "attach_fusion", "profile_calibration"]

#: how long ``detach`` lets the latest run finish before closing the publisher
_DRAIN_TIMEOUT_S = 600.0


@dataclass
class LiveFusion:
    """What ``attach_fusion`` subscribed: the session fusing every raw run of ``RE``."""

    session: FusionSession
    publisher: Any = field(default=None)  # the fused 0MQ publisher, closed by ``detach``

    @property
    def results(self) -> list[FusedRunResult]:
        return self.session.results

    def wait(self, timeout: float | None = None) -> str | None:
        """Block until the latest raw run is fused; returns its fused uid."""
        result = self.session.wait(timeout)
        return result.fused_uid if result is not None else None

    def detach(self) -> None:
        """Stop fusing the RunEngine's runs; the latest run taken finishes (up to
        ``_DRAIN_TIMEOUT_S``), then the 0MQ publisher (if any) is closed."""
        self.session.unsubscribe()
        self.session.wait(timeout=_DRAIN_TIMEOUT_S)  # a worker mid-frame must not outlive us
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None


def profile_calibration(beamline: Any) -> CalibrationRecord:
    spec = beamline.profile.calibration
    if spec == "truth":
        if beamline.sim_beam is None:
            raise ConfigError(f"{beamline.profile.source}: calibration: 'truth' needs sim cameras")
        scene = beamline.sim_beam.scene
        return CalibrationRecord.from_transform(
            scene.transform, scene.shimadzu_shape, scene.phantom_shape
        )
    path = Path(spec).expanduser()
    if not path.is_absolute() and beamline.profile.source is not None:
        path = Path(beamline.profile.source).parent / path
    return load_record(path)


def attach_fusion(
    beamline: Any,
    *,
    publish_address: str | None = None,
    config: FusionConfig | None = None,
    calibration: CalibrationRecord | None = None,
) -> LiveFusion:
    """Fuse every raw run of ``beamline.RE`` into its Tiled (and 0MQ, if given)."""
    from ..publishing import make_publisher, make_tiled_writer

    profile = beamline.profile
    spec = None if profile.model in ("default", "") else profile.model
    model = load_fusion_model(spec)
    sinks = [make_tiled_writer(beamline.tiled_client)]
    if publish_address is None and profile.zmq is not None:
        publish_address = profile.zmq.fused
    publisher = make_publisher(publish_address) if publish_address else None
    if publisher is not None:
        sinks.append(publisher)
    session = FusionSession(
        model,
        calibration or profile_calibration(beamline),
        sinks,
        config or profile.fusion,
    )
    session.subscribe(beamline.RE)
    live = LiveFusion(session, publisher)
    closers = getattr(beamline, "closers", None)
    if closers is not None:  # Beamline.close() detaches it
        closers.append(live.detach)
    return live
