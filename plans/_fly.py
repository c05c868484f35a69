"""One dual-camera burst as a fly scan of two ophyd-async burst detectors.

The run opens before the cameras are armed, so baseline readings and monitors bracket
the acquisition. Each camera is prepared for its whole burst, both are kicked off (the
Phantom first: the Shimadzu's trigger output gates the Phantom's 'E' flag), and once
both have written their files each is collected into its own stream (``phantom``,
``shimadzu``) as StreamResource + StreamDatum documents: one event index per frame,
frames, times and flags in the cameras' HDF5 files. A camera that fails mid-burst still
leaves a complete record of what was written: both are collected before the run ends
with the camera's error. Nothing here waits on a camera outside the RunEngine's
messages.
"""

from collections.abc import Generator
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import Msg

from xfusion_stream.devices import (
    PHANTOM_MODEL,
    SHIMADZU_MODEL,
    BurstDetector,
    burst_trigger_info,
)

from ._qserver import CAMERA, queueserver_annotation

__all__ = ["fly_burst_run", "fly_dual_camera_burst"]

Plan = Generator[Msg, Any, Any]

#: stream names: for humans; consumers find a camera by its ``<name>-camera_model``
STREAMS = ("phantom", "shimadzu")


def _burst_frames(
    phantom: BurstDetector, shimadzu: BurstDetector, limit: int | None = None
) -> Plan:
    """Frames per burst of each camera (at most ``limit``), after checking the devices
    are the two cameras."""
    counts = {}
    for stream, dev, model in zip(STREAMS, (phantom, shimadzu), (PHANTOM_MODEL, SHIMADZU_MODEL)):
        signal = getattr(dev, "camera_model", None)
        got = (yield from bps.rd(signal)) if signal is not None else None
        if got != model:
            raise ValueError(
                f"{getattr(dev, 'name', dev)!r} is not a {model} (camera_model={got!r})"
            )
        frames = int((yield from bps.rd(dev.burst_frames)))
        counts[stream] = frames if limit is None else min(frames, int(limit))
    return counts


@queueserver_annotation({"phantom": CAMERA, "shimadzu": CAMERA})
def fly_dual_camera_burst(
    phantom: BurstDetector,
    shimadzu: BurstDetector,
    *,
    md: dict[str, Any] | None = None,
) -> Plan:
    """Record one burst on both cameras as a fly scan; returns the run uid.

    One run, streams ``phantom`` and ``shimadzu`` (StreamDatum only). Start metadata
    carries the camera models and each camera's frame count.
    """
    return (yield from fly_burst_run(phantom, shimadzu, md=md))


def fly_burst_run(
    phantom: BurstDetector,
    shimadzu: BurstDetector,
    *,
    n_frames: int | None = None,
    md: dict[str, Any] | None = None,
) -> Plan:
    """The run of ``fly_dual_camera_burst``, at most ``n_frames`` per camera (None: the
    whole burst); ``md`` adds to (or overrides) the start metadata."""
    counts = yield from _burst_frames(phantom, shimadzu, n_frames)
    devices = dict(zip(STREAMS, (phantom, shimadzu)))
    run_md = {
        "plan_name": "fly_dual_camera_burst",
        "plan_type": "generator",
        "detectors": [phantom.name, shimadzu.name],
        "camera_models": {"phantom": PHANTOM_MODEL, "shimadzu": SHIMADZU_MODEL},
        "streams": {stream: stream for stream in STREAMS},
        "n_frames": counts,
        "num_points": sum(counts.values()),
    }
    run_md.update(md or {})

    @bpp.stage_decorator([phantom, shimadzu])
    @bpp.run_decorator(md=run_md)
    def fly() -> Plan:
        for stream, dev in devices.items():
            yield from bps.prepare(dev, burst_trigger_info(counts[stream]), group="arm")
        yield from bps.wait(group="arm")
        for stream, dev in devices.items():
            yield from bps.declare_stream(dev, name=stream, collect=True)
        for dev in devices.values():  # Phantom first: the Shimadzu gates its 'E' flag
            yield from bps.kickoff(dev, wait=True)
        for dev in devices.values():
            yield from bps.complete(dev, group="burst")
        try:
            yield from bps.wait(group="burst")
        except Exception:
            # a camera failed mid-burst: what both wrote is still the experiment's
            # record, so it is collected before the run ends with the camera's error
            yield from _collect_what_was_written(devices)
            raise
        for stream, dev in devices.items():
            yield from bps.collect(dev, name=stream)

    return (yield from fly())


def _collect_what_was_written(devices: dict[str, BurstDetector]) -> Plan:
    """Collect each camera's frames written so far; a camera that cannot say is skipped
    (the error that ended the burst is the one the run reports)."""
    for stream, dev in devices.items():
        try:
            yield from bps.collect(dev, name=stream)
        except Exception:  # noqa: BLE001, S112 - the burst's own error follows
            continue
