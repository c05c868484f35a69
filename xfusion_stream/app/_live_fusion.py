"""Attach live fusion to a profile-built beamline: ``configure_xfusion`` on its RE.

The profile names the model (registry name, checkpoint, or ``default`` for the shipped
one), the calibration (a record file, or ``truth`` for a simulated beamline whose
geometry is known) and the fusion settings. Fused runs go to the beamline's Tiled, and
over 0MQ to ``publish_address`` or, failing that, to the profile's ``zmq.fused`` (by
default the proxy's IN address, ``zmq.raw_in``, with prefix ``fused``).
"""

from __future__ import annotations

from typing import Any

from ..calibration import CalibrationRecord
from ..fusion import FusionConfig
from ._configure import XFusion, configure_xfusion, profile_calibration, profile_model_spec

__all__ = ["LiveFusion", "attach_fusion", "profile_calibration", "profile_model_spec"]

#: what ``attach_fusion`` returns: the ``configure_xfusion`` handle (``detach()``, ``wait()``)
LiveFusion = XFusion


def attach_fusion(
    beamline: Any,
    *,
    publish_address: str | None = None,
    config: FusionConfig | None = None,
    calibration: CalibrationRecord | None = None,
    progress: bool | None = None,
) -> XFusion:
    """Fuse every raw run of ``beamline.RE`` into its Tiled (and 0MQ, if given).

    ``progress`` (default: the beamline's, True unless ``build_beamline(...,
    progress=False)``) draws a bar per fused run on stderr: frames fused / total,
    fused frames/s, an ETA and the mean residual against the Shimadzu frames. A second
    call on one beamline is refused while the first is attached (runs fused twice).
    """
    profile = beamline.profile
    if config is None:  # fused frames beside the raw ones, where the beamline's Tiled reads
        data_dir = getattr(beamline, "data_dir", None)
        config = profile.fusion_config(data_dir)
    if publish_address is None and profile.zmq is not None:
        publish_address = profile.zmq.fused_address
    live = configure_xfusion(
        beamline.RE,
        beamline.tiled_client,
        profile=profile,
        calibration=calibration or profile_calibration(beamline),
        config=config,
        raw_writer=False,
        publish_address=publish_address,
        fused_client=getattr(beamline, "derived_client", None),
        spool_dir=profile.resolved_spool_dir(getattr(beamline, "data_dir", None)),
        progress=bool(getattr(beamline, "progress", True)) if progress is None else progress,
    )
    closers = getattr(beamline, "closers", None)
    if closers is not None:  # Beamline.close() detaches it
        closers.append(live.detach)
    return live
