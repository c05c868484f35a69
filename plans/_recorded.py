"""A recorded experiment folder replayed as the documents of a live burst."""

from typing import Any

from xfusion_stream.devices import BurstCamera, RecordedCaseBackend

from ._burst import Plan, burst_run
from ._qserver import CAMERA, queueserver_annotation

__all__ = ["recorded_experiment"]


def _case_folder(phantom: BurstCamera, shimadzu: BurstCamera) -> str:
    """The one case both cameras replay; anything else is a wiring mistake."""
    backends = [getattr(dev, "backend", None) for dev in (phantom, shimadzu)]
    if not all(isinstance(b, RecordedCaseBackend) for b in backends):
        raise ValueError(
            "recorded_experiment needs the cameras of a recorded case "
            "(xfusion_stream.devices.recorded_cameras(path), or a profile with backend: recorded)"
        )
    folders = {str(b.case.path.resolve()) for b in backends}  # type: ignore[union-attr]
    if len(folders) != 1:
        raise ValueError(f"the two cameras replay different cases: {sorted(folders)}")
    return folders.pop()


@queueserver_annotation({"phantom": CAMERA, "shimadzu": CAMERA})
def recorded_experiment(
    phantom: BurstCamera,
    shimadzu: BurstCamera,
    *,
    md: dict[str, Any] | None = None,
    interleave: bool = True,
) -> Plan:
    """Replay a recorded case (Shimadzu INI + TIFF16, Phantom XML + TIFFs) as one run.

    The cameras come from ``recorded_cameras(path)`` (malformed folders raise
    ``RecordedFormatError`` there, naming file and field) or a ``recorded`` profile.
    Same streams, data keys and configuration as ``dual_camera_burst``; the start
    document adds ``recorded_case`` (the folder).
    """
    run_md: dict[str, Any] = {"recorded_case": _case_folder(phantom, shimadzu)}
    run_md.update(md or {})
    return (
        yield from burst_run(
            phantom, shimadzu, md=run_md, interleave=interleave, plan_name="recorded_experiment"
        )
    )
