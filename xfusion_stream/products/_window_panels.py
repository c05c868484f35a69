"""The titled panels of one fused window: what each shows and how good it is.

With a truth (double mode's held-out Phantom frame, or one handed to the writer) the
panels are LR (bicubic x4) | fused | nearest Phantom input | truth, each baseline
titled with its PSNR against the truth; without one, LR | fused | Phantom before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._panels import Panels
from ._residual import residual_caption

if TYPE_CHECKING:
    from ..fusion import FusedFrame
    from ._truth import WindowTruth

__all__ = ["video_label", "window_panels"]


def _psnr(metrics: dict[str, float], key: str) -> str:
    return f"\nPSNR {metrics[key]:.2f} dB" if key in metrics else ""


def window_panels(
    frame: FusedFrame,
    images: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None],
    truth: WindowTruth,
    *,
    has_residual: bool,
    tinted: bool,
) -> Panels:
    """Panels of ``frame`` from its 8-bit ``images`` (LR, fused, Phantom, truth or None)."""
    lr8, fused8, hr8, truth8 = images
    m = frame.metrics
    lr_title = f"LR: Shimadzu {frame.lr_indices[1]}, bicubic x4" + _psnr(m, "psnr_bicubic")
    fused_title = f"fused: Shimadzu {frame.shimadzu_index} (window {frame.window_index})"
    fused_title += _psnr(m, "psnr")
    if truth.image is None:
        hr_title = f"Phantom before ({frame.hr_indices[0]})"
        truth_title = ""
    else:
        hr_title = f"Phantom {frame.hr_indices[truth.nearer]} (nearest input)"
        hr_title += _psnr(m, "psnr_nearest")
        truth_title = (
            f"truth: Phantom {frame.truth_index} (held out)"
            if frame.truth_index >= 0
            else f"truth: {truth.reference}"
        )
    residual, words = None, ""
    if has_residual:
        residual = np.asarray(frame["shimadzu_residual_map"], dtype=np.float32)
        words = residual_caption(frame["shimadzu_residual_rms"], frame["shimadzu_residual_p99"])
        if tinted and words:
            fused_title += ("  " if "\n" in fused_title else "\n") + f"residual {words}"
    title = f"residual vs Shimadzu {frame.lr_indices[1]}\n{words}" if words else ""
    return Panels(
        lr8,
        fused8,
        hr8,
        (lr_title, fused_title, hr_title),
        residual,
        title,
        truth8,
        truth_title,
    )


def video_label(frame: FusedFrame, has_residual: bool) -> str:
    """The one line over an MP4 frame: which frame it is and, where known, how good."""
    label = f"fused: Shimadzu {frame.shimadzu_index} (window {frame.window_index})"
    if "psnr" in frame.metrics:
        label += f"  PSNR {frame.metrics['psnr']:.2f} dB"
    if has_residual:
        words = residual_caption(frame["shimadzu_residual_rms"], frame["shimadzu_residual_p99"])
        label += f"  residual {words}" if words else ""
    return label
