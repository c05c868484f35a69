"""One dual-camera burst as one run: record, then read both memories out as events.

Each camera gets its own stream (``phantom``, ``shimadzu``: names for humans;
consumers find a camera by the ``<name>_camera_model`` configuration value). With
``interleave=True`` the events come in hardware-time order across both streams, as a
live consumer would want them.
"""

import uuid
from collections.abc import Generator
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import Msg

from xfusion_stream.devices import (
    PHANTOM_MODEL,
    SHIMADZU_MODEL,
    BurstCamera,
)

from ._qserver import CAMERA, queueserver_annotation

__all__ = ["dual_camera_burst", "burst_run"]

# Annotations are evaluated, not postponed: bluesky-queueserver describes a plan's
# parameters from them, and a string annotation of a custom type fails its validation.
Plan = Generator[Msg, Any, Any]


def _check_cameras(phantom: BurstCamera, shimadzu: BurstCamera) -> Plan:
    """Refuse devices that are not the two cameras (the queueserver hands in any name)."""
    for dev, model in ((phantom, PHANTOM_MODEL), (shimadzu, SHIMADZU_MODEL)):
        signal = getattr(dev, "camera_model", None)
        got = (yield from bps.rd(signal)) if signal is not None else None
        if got != model:
            raise ValueError(
                f"{getattr(dev, 'name', dev)!r} is not a {model} (camera_model={got!r})"
            )


def _readout_order(times: dict[str, list[int]], interleave: bool) -> list[tuple[str, int]]:
    """(stream, frame index) in the order events are emitted."""
    rank = {name: r for r, name in enumerate(times)}
    items = [(t, rank[name], i, name) for name in times for i, t in enumerate(times[name])]
    if interleave:
        items.sort()
    return [(name, i) for _, _, i, name in items]


def _read_frame(dev: BurstCamera, stream: str, index: int, group: str) -> Plan:
    """One camera frame as one event: the messages of ``bps.abs_set(dev.readout_index,
    index, wait=True)``, ``bps.create(stream)``, ``bps.read(dev)`` and ``bps.save()``.

    Yielded directly: each of those stubs is a ``bluesky.utils.Plan``, which formats the
    caller's whole stack (reading the source lines of every frame on it) in case it is
    never iterated, and ``abs_set`` draws a fresh uuid for its group. Four stacks per
    frame were a third of a readout's CPU (1.4-1.9 ms an event, 1.0-1.2 without). One
    ``group`` per readout waits for the same thing: the RunEngine forgets a group once
    waited on.
    """
    yield Msg("set", dev.readout_index, index, group=group)
    yield Msg("wait", None, group=group)
    yield Msg("create", name=stream)
    yield Msg("read", dev)
    yield Msg("save")


def _run_metadata(
    phantom: BurstCamera, shimadzu: BurstCamera, counts: dict[str, int], plan_name: str
) -> Plan:
    """The start document's camera block, read through the RunEngine (``bps.rd``)."""
    p_shape = [int(v) for v in (yield from bps.rd(phantom.frame_shape))]
    s_shape = [int(v) for v in (yield from bps.rd(shimadzu.frame_shape))]
    ratio = p_shape[0] / s_shape[0] if s_shape[0] else 0.0
    p_ns = float((yield from bps.rd(phantom.frame_time_ns)))
    s_ns = float((yield from bps.rd(shimadzu.frame_time_ns)))
    return {
        "plan_name": plan_name,
        "plan_type": "generator",
        "detectors": [phantom.name, shimadzu.name],
        "camera_models": {"phantom": PHANTOM_MODEL, "shimadzu": SHIMADZU_MODEL},
        "streams": {"phantom": "phantom", "shimadzu": "shimadzu"},
        "n_frames": {"phantom": counts[phantom.name], "shimadzu": counts[shimadzu.name]},
        "frame_shape": {"phantom": p_shape, "shimadzu": s_shape},
        "pixel_ratio": int(ratio) if float(ratio).is_integer() else ratio,
        "phantom_every": round(p_ns / s_ns) if s_ns else 0,
        "shimadzu_frame_ns": s_ns,
        "phantom_frame_rate_hz": float((yield from bps.rd(phantom.frame_rate_hz))),
        "num_points": counts[phantom.name] + counts[shimadzu.name],
    }


def burst_run(
    phantom: BurstCamera,
    shimadzu: BurstCamera,
    *,
    md: dict[str, Any] | None,
    interleave: bool,
    plan_name: str,
) -> Plan:
    """Shared body of every dual-camera plan; returns the run uid."""
    yield from _check_cameras(phantom, shimadzu)
    streams = {phantom.name: "phantom", shimadzu.name: "shimadzu"}
    devices = {phantom.name: phantom, shimadzu.name: shimadzu}

    @bpp.stage_decorator([phantom, shimadzu])
    def staged() -> Plan:
        # the Shimadzu's trigger output gates the Phantom's 'E' flag: fire both together
        yield from bps.trigger(phantom, group="burst")
        yield from bps.trigger(shimadzu, group="burst")
        yield from bps.wait(group="burst")
        times = {}
        for name, dev in devices.items():
            times[name] = list((yield from bps.rd(dev.memory_times_ns, default_value=[])))
        counts = {name: len(t) for name, t in times.items()}
        run_md = yield from _run_metadata(phantom, shimadzu, counts, plan_name)
        run_md["interleaved"] = bool(interleave)
        run_md.update(md or {})

        @bpp.run_decorator(md=run_md)
        def readout() -> Plan:
            group = f"readout-{uuid.uuid4()}"
            for name, index in _readout_order(times, interleave):
                yield from _read_frame(devices[name], streams[name], index, group)

        return (yield from readout())

    return (yield from staged())


@queueserver_annotation({"phantom": CAMERA, "shimadzu": CAMERA})
def dual_camera_burst(
    phantom: BurstCamera,
    shimadzu: BurstCamera,
    *,
    md: dict[str, Any] | None = None,
    interleave: bool = True,
) -> Plan:
    """Record one burst on both cameras and emit every frame as an event.

    One run, streams ``phantom`` and ``shimadzu``. Start metadata carries the camera
    models, frame counts, frame shapes, pixel ratio and Phantom/Shimadzu frame ratio.
    """
    return (
        yield from burst_run(
            phantom, shimadzu, md=md, interleave=interleave, plan_name="dual_camera_burst"
        )
    )
