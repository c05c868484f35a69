"""The streaming interface both architectures offer a live caller, as one typed Protocol.

A live stream fuses overlapping windows: Shimadzu frame t is in three windows, a Phantom
pair in every window between its two frames. So the forward is split where frames first
meet: per-frame encoders whose output a caller can cache, and a ``fuse`` step that takes
cached features. The caller owns every cache (features and Phantom motion); the model
keeps no state between calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor

    from .ops import PhantomMotionCache, ShimadzuMeasurement

__all__ = ["FusedOutput", "StreamingFusionNet"]


@dataclass(frozen=True)
class FusedOutput:
    """What ``fuse`` says about one batch of B windows; ``None`` where the model has no
    such value, so a caller never has to ask the model which values it reports."""

    #: (B, 1, 4h, 4w) the fused frame at LR time t (not clamped).
    image: Tensor
    #: (B, 5) TSA attention per input frame, in the order (t-1 lr, t lr, t+1 lr,
    #: hr before, hr after); None for architectures without per-frame attention.
    attention: Tensor | None = None
    #: (B,) where t lies between the two HR frames (0 = before, 1 = after), as found by
    #: a motion-compensated model (``hr_warp``); None otherwise.
    tau: Tensor | None = None
    #: (B, 4) mean blend weight of (network, hr before@t, hr after@t, bilinear lr t) over
    #: the frame, for a motion-compensated model; None otherwise.
    blend_weights: Tensor | None = None


@runtime_checkable
class StreamingFusionNet(Protocol):
    """A fusion network a streaming caller can drive window by window (EDVRSTF, SwinXVR).

    A window is 3 LR frames (t-1, t, t+1; (h, w), multiples of 4) and the 2 HR frames
    before and after t ((4h, 4w)); intensities in [0, 1]. For any window,
    ``fuse(encode_lr(lr), encode_hr(hr), lr[1], hr if needs_hr_frames else None)``
    equals ``forward(lq, hq)`` (BasicSR's names for the same window batch) to float
    tolerance, so per-frame features may be computed once and reused by every window
    that shares the frame.
    """

    @property
    def num_feat(self) -> int:
        """C, the channels of the per-frame features."""
        ...

    @property
    def needs_hr_frames(self) -> bool:
        """True when ``fuse`` needs the raw HR frames besides their features (a model with
        a full-resolution gate); a caller then passes ``hr_frames``, else it may skip
        building them."""
        ...

    def encode_lr(self, x: Tensor) -> Tensor:
        """LR frames (N, 1, h, w) -> per-frame features (N, C, h, w)."""
        ...

    def encode_hr(self, y: Tensor) -> Tensor:
        """HR frames (N, 1, 4h, 4w) -> per-frame features on the LR grid (N, C, h, w)."""
        ...

    def fuse(
        self,
        lr_feats: Tensor,
        hr_feats: Tensor,
        lr_centre: Tensor,
        hr_frames: Tensor | None = None,
        *,
        motion_cache: PhantomMotionCache | None = None,
        shimadzu: ShimadzuMeasurement | None = None,
    ) -> FusedOutput:
        """Cached features of B windows -> the fused frames and what the model reports.

        lr_feats (B, 3, C, h, w) for t-1, t, t+1; hr_feats (B, 2, C, h, w) for before,
        after; lr_centre (B, 1, h, w) the LR frame t; hr_frames (B, 2, 1, 4h, 4w) the raw
        HR frames, required when ``needs_hr_frames`` and ignored otherwise.
        ``motion_cache`` keeps the optical flow of HR pairs for the windows that share
        them (models that warp HR frames); None computes it afresh for every window.
        ``shimadzu`` says how the LR camera measures the fused grid (extra blur, noise of
        the registered frames) for models that check their output against ``lr_centre``;
        None: area integration only, frames not resampled.
        """
        ...
