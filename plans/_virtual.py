"""A virtual experiment (one single-camera sequence seen by two pretend cameras) as one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from xfusion_stream.core import ConfigError
from xfusion_stream.devices import (
    PhantomTMX7510,
    ShimadzuHPVX2,
    VirtualCaseBackend,
    VirtualOptions,
    VirtualSequence,
)

from ._burst import Plan, burst_run, camera_pair

__all__ = ["virtual_experiment", "virtual_cameras"]

# the plan's keyword defaults are VirtualOptions' own (declared there once)
_DEFAULT = VirtualOptions()


def virtual_cameras(
    source: str | Path | np.ndarray | VirtualSequence,
    *,
    data_dir: str | Path | None = None,
    inline: bool = False,
    lr_source: str | Path | np.ndarray | None = None,
    phantom_pixel_um: float = 0.0,
    **options: Any,
) -> tuple[PhantomTMX7510, ShimadzuHPVX2]:
    """The two virtual cameras, named ``phantom`` and ``shimadzu``, sharing one sequence.

    ``options`` are :class:`VirtualOptions` fields (with a shared sequence they must
    agree with its own). ``data_dir`` gets the burst HDF5 files; default for a folder
    source: ``<source>_raw`` next to it.
    """
    if isinstance(source, VirtualSequence):
        sequence = source
        if lr_source is not None:
            raise ConfigError("lr_source belongs to the given VirtualSequence")
    else:
        sequence = VirtualSequence(source, VirtualOptions(**options), lr_source=lr_source)
        options = {}  # now the sequence's
    if data_dir is None and not inline:
        if isinstance(sequence.source, np.ndarray):
            raise ConfigError("an in-memory virtual source needs data_dir (or inline=True)")
        folder = Path(sequence.source)
        data_dir = folder.parent / f"{folder.name}_raw"
    shimadzu_pixel_um = phantom_pixel_um * sequence.options.ratio
    return camera_pair(
        VirtualCaseBackend(sequence, "phantom", pixel_size_um=phantom_pixel_um, **options),
        VirtualCaseBackend(sequence, "shimadzu", pixel_size_um=shimadzu_pixel_um, **options),
        data_dir=data_dir,
        inline=inline,
    )


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
