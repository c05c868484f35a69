"""The camera pairs a plan needs, built over one backend each.

Plans take devices; these factories build the pair for the common sources (a recorded
experiment folder, a virtual single-camera sequence) so that scripts, the CLI and
queueserver start-up code make devices in one place, outside the plans.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core import ConfigError
from ..recorded import read_case
from ._camera_backend import CameraBackend
from ._phantom import PhantomTMX7510
from ._recorded_backend import RecordedCaseBackend
from ._shimadzu import ShimadzuHPVX2
from ._virtual_backend import VirtualCaseBackend, VirtualOptions, VirtualSequence

__all__ = ["camera_pair", "recorded_cameras", "virtual_cameras"]


def camera_pair(
    phantom_backend: CameraBackend,
    shimadzu_backend: CameraBackend,
    *,
    data_dir: str | Path | None,
    inline: bool,
) -> tuple[PhantomTMX7510, ShimadzuHPVX2]:
    """Both burst cameras over the given backends, named ``phantom`` and ``shimadzu``."""
    phantom = PhantomTMX7510(
        name="phantom", backend=phantom_backend, data_dir=data_dir, inline=inline
    )
    shimadzu = ShimadzuHPVX2(
        name="shimadzu", backend=shimadzu_backend, data_dir=data_dir, inline=inline
    )
    return phantom, shimadzu


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
