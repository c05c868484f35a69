"""A recorded experiment folder turned into the documents of a live burst."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xfusion_stream.devices import PhantomTMX7510, RecordedCaseBackend, ShimadzuHPVX2
from xfusion_stream.recorded import read_case

from ._burst import Plan, burst_run, camera_pair

__all__ = ["recorded_experiment", "recorded_cameras"]


def recorded_cameras(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    inline: bool = False,
    phantom_pixel_um: float = 0.0,
    shimadzu_pixel_um: float = 0.0,
) -> tuple[PhantomTMX7510, ShimadzuHPVX2]:
    """The two cameras of a recorded case, named ``phantom`` and ``shimadzu``.

    ``data_dir`` gets the burst HDF5 files; default: ``<case>_raw`` next to the case
    (not inside it: the case layout allows no extra folders).
    """
    case = read_case(path)
    if data_dir is None and not inline:
        data_dir = case.path.parent / f"{case.path.name}_raw"
    return camera_pair(
        RecordedCaseBackend(case, "phantom", pixel_size_um=phantom_pixel_um),
        RecordedCaseBackend(case, "shimadzu", pixel_size_um=shimadzu_pixel_um),
        data_dir=data_dir,
        inline=inline,
    )


def recorded_experiment(
    path: str | Path,
    *,
    md: dict[str, Any] | None = None,
    data_dir: str | Path | None = None,
    inline: bool = False,
    interleave: bool = True,
) -> Plan:
    """Replay a recorded case (Shimadzu INI + TIFF16, Phantom XML + TIFFs) as one run.

    Same streams, data keys and configuration as ``dual_camera_burst``; the start
    document adds ``recorded_case`` (the folder). Malformed folders raise
    ``RecordedFormatError`` naming file and field before any document is emitted.
    """
    phantom, shimadzu = recorded_cameras(path, data_dir=data_dir, inline=inline)
    run_md = {"recorded_case": str(Path(path).resolve())}
    run_md.update(md or {})
    return (
        yield from burst_run(
            phantom, shimadzu, md=run_md, interleave=interleave, plan_name="recorded_experiment"
        )
    )
