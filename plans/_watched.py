"""A case folder the vendor software is still writing, acquired as one run once complete."""

from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

from xfusion_stream.core import RecordedFormatError
from xfusion_stream.devices import BurstCamera, FolderWatch, WatchedFolderBackend, WatchProgress

from ._burst import Plan, burst_run
from ._qserver import CAMERA, queueserver_annotation

__all__ = ["watched_experiment"]


def _shared_watch(phantom: BurstCamera, shimadzu: BurstCamera) -> FolderWatch:
    """The one folder both cameras watch; anything else is a wiring mistake."""
    backends = [getattr(dev, "backend", None) for dev in (phantom, shimadzu)]
    if not all(isinstance(b, WatchedFolderBackend) for b in backends):
        raise ValueError(
            "watched_experiment needs the cameras of a watched folder "
            "(xfusion_stream.devices.watched_cameras(folder))"
        )
    watches = {id(b.watch): b.watch for b in backends}  # type: ignore[union-attr]
    if len(watches) != 1:
        folders = sorted(str(w.folder) for w in watches.values())
        raise ValueError(f"the two cameras watch different folders: {folders}")
    return watches.popitem()[1]


def _failed_run(
    phantom: BurstCamera,
    shimadzu: BurstCamera,
    watch: FolderWatch,
    error: BaseException,
    md: dict[str, Any],
) -> Plan:
    """A raw run with no events whose start says what was on disk, closed as ``fail``."""
    try:
        progress = watch.scan()
    except RecordedFormatError:  # the same refusal that ended the wait
        progress = WatchProgress()
    run_md = {
        "plan_name": "watched_experiment",
        "detectors": [phantom.name, shimadzu.name],
        "watched_folder": str(watch.folder),
        "complete_frames": dict(progress.complete_frames),
        "expected_frames": dict(progress.expected_frames),
        "num_points": 0,
        **md,
    }

    @bpp.run_decorator(md=run_md)
    def failed() -> Plan:
        yield from bps.null()
        raise error

    return (yield from failed())


@queueserver_annotation({"phantom": CAMERA, "shimadzu": CAMERA})
def watched_experiment(
    phantom: BurstCamera,
    shimadzu: BurstCamera,
    *,
    md: dict[str, Any] | None = None,
    interleave: bool = True,
) -> Plan:
    """Wait for a burst the vendor software writes to disk, then emit it as one run.

    The cameras come from ``watched_cameras(folder)``. The wait runs on the RunEngine's
    loop in short polls (pause and abort stay responsive). Once complete, the run is
    exactly ``recorded_experiment``'s (start adds ``watched_folder``). A burst still
    incomplete at the timeout, or a malformed file, gives a run with no events closed
    as ``fail`` with the reason (missing and growing files, time waited) and raises.
    """
    watch = _shared_watch(phantom, shimadzu)
    (task,) = yield from bps.wait_for([watch.wait_async])
    error = task.exception()
    if error is not None:
        return (yield from _failed_run(phantom, shimadzu, watch, error, md or {}))
    run_md: dict[str, Any] = {"watched_folder": str(watch.folder)}
    run_md.update(md or {})
    return (
        yield from burst_run(
            phantom, shimadzu, md=run_md, interleave=interleave, plan_name="watched_experiment"
        )
    )
