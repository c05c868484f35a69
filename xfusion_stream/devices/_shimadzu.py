"""Shimadzu HPV-X2: the low-resolution, ultra-fast camera of the pair."""

from __future__ import annotations

from ._burst_camera import BurstCamera

__all__ = ["ShimadzuHPVX2", "SHIMADZU_MODEL", "SHIMADZU_FRAME_COUNTS"]

SHIMADZU_MODEL = "Shimadzu HPV-X2"
SHIMADZU_FRAME_COUNTS = (128, 256)


class ShimadzuHPVX2(BurstCamera):
    """Shimadzu HPV-X2 in burst mode (200 ns frames, 128 or 256 of them, 400x250 px).

    ``<name>_time_ns`` is the frame's ImageRelative: ns after frame 1. Its trigger
    output is what flags the Phantom's 'E' frames.
    """

    CAMERA_MODEL = SHIMADZU_MODEL
