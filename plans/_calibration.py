"""Grid calibration: a static G400 copper grid seen by both cameras.

Two shapes of the same run: ``grid_calibration`` for the ophyd burst cameras (frames
as events), ``fly_grid_calibration`` for the ophyd-async burst detectors (a fly scan:
frames in the cameras' files, StreamResource/StreamDatum). Both start documents say
``calibration: "G400"``, and ``GridCalibrationCallback`` reads either.
"""

from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.protocols import Movable

from xfusion_stream.devices import BurstCamera, BurstDetector
from xfusion_stream.simulation import G400_PITCH_UM

from ._burst import Plan, burst_run
from ._fly import fly_burst_run
from ._qserver import CAMERA, queueserver_annotation

__all__ = ["fly_grid_calibration", "grid_calibration"]

#: a grid stage: the name of a movable device in the RE Manager's namespace
STAGE = {"annotation": "Stage", "devices": {"Stage": ["__MOVABLE__:.+"]}}


def _calibration_md(n_frames: int, md: dict[str, Any] | None) -> dict[str, Any]:
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    cal_md: dict[str, Any] = {
        "calibration": "G400",
        "purpose": "spatial calibration",
        "grid": "G400",
        "grid_pitch_um": G400_PITCH_UM,
        "n_frames_requested": int(n_frames),
    }
    cal_md.update(md or {})
    return cal_md


@queueserver_annotation({"phantom": CAMERA, "shimadzu": CAMERA})
def grid_calibration(
    phantom: BurstCamera,
    shimadzu: BurstCamera,
    *,
    n_frames: int = 20,
    md: dict[str, Any] | None = None,
) -> Plan:
    """Put the grid in the beam, record ``n_frames`` per camera, take the grid out.

    The run looks like a ``dual_camera_burst`` (same streams, keys, configuration);
    its start document says ``calibration: "G400"`` so the spatial calibration finds
    it. Simulated cameras switch their scene to the grid; on real cameras moving the
    ``target`` is bookkeeping and the grid is placed by the operator.
    """
    cal_md = _calibration_md(n_frames, md)

    def restore() -> Plan:
        yield from bps.mv(
            phantom.target, "sample", shimadzu.target, "sample",
            phantom.readout_limit, 0, shimadzu.readout_limit, 0,
        )  # fmt: skip

    def body() -> Plan:
        yield from bps.mv(
            phantom.target, "grid", shimadzu.target, "grid",
            phantom.readout_limit, n_frames, shimadzu.readout_limit, n_frames,
        )  # fmt: skip
        return (
            yield from burst_run(
                phantom, shimadzu, md=cal_md, interleave=True, plan_name="grid_calibration"
            )
        )

    return (yield from bpp.finalize_wrapper(body(), restore()))


@queueserver_annotation({"phantom": CAMERA, "shimadzu": CAMERA, "grid_stage": STAGE})
def fly_grid_calibration(
    phantom: BurstDetector,
    shimadzu: BurstDetector,
    grid_stage: Movable | None = None,
    *,
    n_frames: int = 20,
    md: dict[str, Any] | None = None,
) -> Plan:
    """Move the grid in, fly-scan ``n_frames`` per camera, move the grid out.

    ``grid_stage`` is whatever puts the grid in the beam (``"grid"``) and takes it out
    (``"sample"``), e.g. the soft IOC's ``<prefix>Target``; None when the operator
    places the grid. The run is a ``fly_dual_camera_burst`` of at most ``n_frames``
    frames per camera; the grid goes out whether or not the run succeeds.
    """
    cal_md = {"plan_name": "fly_grid_calibration", **_calibration_md(n_frames, md)}

    def restore() -> Plan:
        if grid_stage is not None:
            yield from bps.mv(grid_stage, "sample")

    def body() -> Plan:
        if grid_stage is not None:
            yield from bps.mv(grid_stage, "grid")
        return (yield from fly_burst_run(phantom, shimadzu, n_frames=n_frames, md=cal_md))

    return (yield from bpp.finalize_wrapper(body(), restore()))
