"""A virtual experiment (one single-camera sequence seen by two pretend cameras) as one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from xfusion_stream.devices import VirtualOptions, VirtualSequence, virtual_cameras

from ._burst import Plan, burst_run

__all__ = ["virtual_experiment"]

# the plan's keyword defaults are VirtualOptions' own (declared there once)
_DEFAULT = VirtualOptions()


def virtual_experiment(
    source: str | Path | np.ndarray | VirtualSequence,
    *,
    md: dict[str, Any] | None = None,
    phantom_every: int = _DEFAULT.phantom_every,
    ratio: int = _DEFAULT.ratio,
    photons: float | tuple[float, float] | None = _DEFAULT.photons,
    seed: int = _DEFAULT.seed,
    frame_ns: int = _DEFAULT.frame_ns,
    downsample: Literal["bicubic", "area"] = _DEFAULT.downsample,
    lr_source: str | Path | np.ndarray | None = None,
    data_dir: str | Path | None = None,
    inline: bool = False,
    interleave: bool = True,
) -> Plan:
    """Acquire a virtual experiment: same streams, keys and configuration as a burst.

    The start document adds ``data_type: "virtual"``, ``virtual_source``,
    ``phantom_every`` and a ``virtual`` block (ratio, photons, seed, frame time,
    downsampling, HR crop). The option keywords are :class:`VirtualOptions` fields, with
    its defaults; a ``VirtualSequence`` source carries its own. Bad sources raise
    ``ConfigError`` / ``RecordedFormatError`` naming the folder or file before any
    document is emitted.
    """
    fields: dict[str, Any] = {
        "phantom_every": phantom_every,
        "ratio": ratio,
        "photons": photons,
        "seed": seed,
        "frame_ns": frame_ns,
        "downsample": downsample,
    }
    if isinstance(source, VirtualSequence):
        sequence = source
        # fields left at their defaults say nothing; others must agree with the sequence
        given = {k: v for k, v in fields.items() if v != getattr(_DEFAULT, k)}
    else:
        sequence = VirtualSequence(source, VirtualOptions(**fields), lr_source=lr_source)
        given, lr_source = {}, None
    phantom, shimadzu = virtual_cameras(
        sequence, data_dir=data_dir, inline=inline, lr_source=lr_source, **given
    )
    run_md: dict[str, Any] = sequence.start_metadata()
    run_md.update(md or {})
    return (
        yield from burst_run(
            phantom, shimadzu, md=run_md, interleave=interleave, plan_name="virtual_experiment"
        )
    )
