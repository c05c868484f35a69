"""Settings of one fusion pipeline: traverse mode, runner policy, normalisation.

Device and precision belong to the loaded model (``load_fusion_model``), not here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..core import ConfigModel
from ..documents import CameraRecognition

__all__ = ["FusionConfig"]


class FusionConfig(ConfigModel):
    """What a beamline profile (its ``fusion:`` block) or a command line sets for fusion.

    ``queue_size`` bounds the windows waiting for the model. When it is full the
    ``when_full`` policy decides: ``block`` holds the document callback (and so the
    RunEngine) until the model catches up; ``skip`` drops the window and records the
    gap in the fused run's ``gaps`` stream. ``max_batch`` > 1 fuses windows that are
    ready together in one batch; 1 keeps live, replayed and offline output
    bit-identical whatever the arrival timing. ``max_buffered_mib`` bounds the
    registered frames one run holds while they wait for their windows (a camera whose
    frames stop arriving would otherwise grow it without end): beyond it the fused run
    fails with the reason. ``fused_data_dir`` is where fused frames are written as
    HDF5 (one file per fused run, pointed at by StreamResource / StreamDatum documents,
    as cameras store theirs); unset, they travel inline in the events (float32), which
    suits tests and small runs but not a facility Tiled. ``viewer_inputs`` adds the
    inputs the live viewer shows beside each fused frame to the fused stream.
    """

    traverse_mode: Literal["continuous", "double"] = "continuous"
    tolerance_ns: int = Field(10, ge=0)
    queue_size: int = Field(64, ge=1)
    when_full: Literal["block", "skip"] = "block"
    max_batch: int = Field(1, ge=1)
    full_scale: float = Field(65535.0, gt=0, description="counts that map to intensity 1")
    feature_cache: bool = True
    max_buffered_mib: float = Field(4096.0, gt=0)
    stream_name: str = "fused"
    fused_data_dir: str | None = Field(
        None, description="folder for the fused runs' HDF5 files (unset: frames inline)"
    )
    viewer_inputs: bool = Field(
        False,
        description="also publish each window's registered Shimadzu frame t and nearest "
        "Phantom frame, for the live viewer (xfusion view); about doubles the bytes per frame",
    )
    cameras: CameraRecognition = Field(
        CameraRecognition(),
        description="how camera streams are recognised: model strings and key names per "
        "camera (a profile sets them in devices.<camera>.keys)",
    )
