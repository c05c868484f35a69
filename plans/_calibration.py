"""Grid calibration: a static G400 copper grid seen by both cameras."""

from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

from xfusion_stream.devices import BurstCamera
from xfusion_stream.simulation import G400_PITCH_UM

from ._burst import Plan, burst_run
from ._qserver import CAMERA, queueserver_annotation

__all__ = ["grid_calibration"]


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
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    cal_md = {
        "calibration": "G400",
        "purpose": "spatial calibration",
        "grid": "G400",
        "grid_pitch_um": G400_PITCH_UM,
        "n_frames_requested": int(n_frames),
    }
    cal_md.update(md or {})

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
