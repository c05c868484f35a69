"""A picture a scientist can check a grid calibration against.

Phantom in magenta, registered Shimadzu in green (grey where they agree), the valid
crop outlined, and each pair's residual drawn as a magnified arrow; a legend under
the picture says so.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ._spatial import CalibrationResult

__all__ = ["overlay_figure", "write_overlay"]


def _unit(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [1, 99])
    return np.clip((img - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def write_overlay(result: CalibrationResult, path: str | Path, magnify: float = 20.0) -> Path:
    """Write the overlay PNG of ``result`` to ``path`` and return the path."""
    fig = overlay_figure(result, magnify)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _legend(ax, magnify: float) -> None:
    """What each colour and mark means, under the picture (it covers none of it)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(color="magenta", label="Phantom only (brighter in Phantom)"),
        Patch(color="lime", label="registered Shimadzu only (brighter in Shimadzu)"),
        Patch(color="0.6", label="grey/white: both agree"),
        Patch(fill=False, edgecolor="yellow", label="valid crop (fused frame area)"),
        Line2D([], [], color="cyan", marker=">", label=f"pair residual, arrows x{magnify:g}"),
    ]
    ax.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=3, fontsize=8,
        facecolor="white", framealpha=1.0,
    )  # fmt: skip


def overlay_figure(result: CalibrationResult, magnify: float = 20.0):
    """The overlay as a matplotlib ``Figure`` (object API, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    record = result.record
    r = record.ratio
    rows, cols = record.phantom_shape
    shimadzu_hr = cv2.resize(
        result.shimadzu_mean.astype(np.float32),
        (record.shimadzu_shape[1] * r, record.shimadzu_shape[0] * r),
        interpolation=cv2.INTER_LINEAR,
    )
    warped = cv2.warpAffine(_unit(shimadzu_hr), record.matrix_array()[:2], (cols, rows))
    phantom = _unit(result.phantom_mean)
    rgb = np.dstack([phantom, warped, phantom])

    fig = Figure(figsize=(10, 10 * rows / cols + 1.3), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(rgb, interpolation="nearest")
    c = record.crop
    ax.add_patch(
        Rectangle((c.x - 0.5, c.y - 0.5), c.width, c.height, fill=False, color="yellow", lw=1)
    )
    p, e = result.phantom_points, result.residual_vectors
    ax.quiver(
        p[:, 0], p[:, 1], magnify * e[:, 0], magnify * e[:, 1],
        color="cyan", angles="xy", scale_units="xy", scale=1, width=0.002,
    )  # fmt: skip
    final = record.residuals[-1] if record.residuals else None
    title = (
        f"rotation {record.rotation_deg:.3f} deg, scale col {record.scale_col:.4f} "
        f"row {record.scale_row:.4f}, n_pairs {record.n_pairs}"
    )
    if final is not None:
        title += (
            f"\nresidual mean {final.mean:.3f} px, max {final.max:.3f} px (arrows x{magnify:g})"
        )
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    _legend(ax, magnify)
    fig.tight_layout()
    return fig
