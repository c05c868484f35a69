"""The two input panels of the live viewer, as fused-frame fields a session can publish.

Why fields and not a second reader: the registered Shimadzu frame t and the Phantom
frame beside it exist, registered and cropped to the fused grid, only inside the
fusion worker (``WindowJob``). A viewer that rebuilt them from the raw stream would
repeat the filler, the registration and the pairing clock of ``FusionCallback``. The
fused-frame schema is the extension point for per-frame values, so
``viewer_schema(ratio)`` is ``FUSED_FRAME`` plus these fields; a session created with it
(``FusionSession(..., schema=viewer_schema(record.ratio))``) publishes them on 0MQ and
into Tiled, and ``xfusion view`` shows them. Streams without them still show the fused
frame, the plots and the scrubber.

The registered Shimadzu frame stays on its own grid (1/ratio of the fused frame per
side, 1/16 of its bytes at x4); the Phantom frame is fused-frame sized.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fusion import FUSED_FRAME, FrameField, FrameSchema

__all__ = [
    "PHANTOM_NEAREST",
    "PHANTOM_NEAREST_INDEX",
    "SHIMADZU_REGISTERED",
    "nearest_phantom",
    "viewer_fields",
    "viewer_schema",
]

SHIMADZU_REGISTERED = "shimadzu_registered"
PHANTOM_NEAREST = "phantom_nearest"
PHANTOM_NEAREST_INDEX = "phantom_nearest_index"


def nearest_phantom(job: Any) -> tuple[int, np.ndarray]:
    """``(index, frame)`` of the Phantom frame nearest Shimadzu frame t that the window holds.

    Double mode: the held-out truth, matched to t within the pairing tolerance.
    Continuous mode: the Phantom input before t (a window does not carry the Phantom
    frame times that would say which input is nearer; the products' panels show the
    same frame).
    """
    if job.truth is not None and job.truth_index >= 0:
        return int(job.truth_index), job.truth
    return int(job.hr[0]), job.hr_frames[0]


def viewer_fields(ratio: int) -> tuple[FrameField, ...]:
    """The viewer's fields for a calibration whose pixel ratio is ``ratio``."""
    if int(ratio) < 1:
        raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
    r = int(ratio)

    def lr_shape(frame_shape: tuple[int, int]) -> tuple[int, int]:
        return (frame_shape[0] // r, frame_shape[1] // r)

    return (
        FrameField(
            SHIMADZU_REGISTERED, "<f4", "job", lambda job: job.lr_frames[1], shape=lr_shape,
            units="intensity", dims=("shimadzu_row", "shimadzu_col"), in_csv=False,
            default=float("nan"),
            description="Shimadzu frame t registered onto the Phantom grid (1/ratio per side)",
        ),
        FrameField(
            PHANTOM_NEAREST, "<f4", "job", lambda job: nearest_phantom(job)[1], shape=None,
            units="intensity", dims=("row", "col"), in_csv=False, default=float("nan"),
            description="the Phantom frame nearest t the window holds (nearest_phantom), cropped",
        ),
        FrameField(
            PHANTOM_NEAREST_INDEX, "<i8", "job", lambda job: nearest_phantom(job)[0],
            in_csv=False, default=-1,
            description="which Phantom frame phantom_nearest is",
        ),
    )  # fmt: skip


def viewer_schema(ratio: int, base: FrameSchema = FUSED_FRAME) -> FrameSchema:
    """``base`` plus the viewer's input panels (``viewer_fields``)."""
    return base.extended(*viewer_fields(ratio))
