"""Settings of one fusion pipeline: traverse mode, runner policy, normalisation.

Device and precision belong to the loaded model (``load_fusion_model``), not here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..core import ConfigModel

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
    fails with the reason.
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
