"""A recorded experiment folder turned into the documents of a live burst."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xfusion_stream.devices import recorded_cameras

from ._burst import Plan, burst_run

__all__ = ["recorded_experiment"]


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
