"""Matplotlib products: the montage (with the residual column), PSNR/SSIM per frame,
mean TSA attention.

Only the object API (``Figure`` + ``FigureCanvasAgg``) is used, never pyplot, so
plotting touches no global state and is safe whatever thread the fusion worker is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._panels import Panels
from ._residual import RESIDUAL_COLORMAP, RESIDUAL_LIMIT

__all__ = ["ATTENTION_INPUTS", "write_attention", "write_metrics_plot", "write_montage"]

# TSA attention per input frame, in the order the model logs it.
ATTENTION_INPUTS = ("t-1 lo", "t lo", "t+1 lo", "t-1 hi", "t+1 hi")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_montage(rows: Sequence[Panels], path: Path) -> Path:
    """One row per window: LR (bicubic x4) | fused | HR, each titled; then the residual
    against the Shimadzu frame (noise units, diverging scale) when the rows carry one."""
    if not rows:
        raise ValueError("a montage needs at least one window")
    h, w = rows[0].fused.shape[:2]
    n_cols = 4 if any(p.residual is not None for p in rows) else 3
    panel_in = 3.2
    fig = _figure(n_cols * panel_in, len(rows) * (panel_in * h / w + 0.55))
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for row, panels in zip(axes, rows):
        for ax, image, title in zip(row, (panels.lr, panels.fused, panels.hr), panels.titles):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
        if n_cols == 4:
            _residual_panel(fig, row[3], panels)
    fig.tight_layout()
    return _save(fig, path)


def _residual_panel(fig, ax, panels: Panels) -> None:
    """The residual map on +-``RESIDUAL_LIMIT`` noise units, with its colour scale."""
    ax.set_title(panels.residual_title or "Shimadzu residual: none", fontsize=8)
    ax.set_axis_off()
    if panels.residual is None:
        return
    limit = RESIDUAL_LIMIT
    image = ax.imshow(
        panels.residual, cmap=RESIDUAL_COLORMAP, vmin=-limit, vmax=limit, interpolation="nearest"
    )
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, ticks=[-limit, -3, 0, 3, limit])
    bar.ax.tick_params(labelsize=6)
    bar.set_label("noise sigma", fontsize=6)


def write_metrics_plot(
    x: np.ndarray, metrics: dict[str, np.ndarray], path: Path, xlabel: str = "Shimadzu frame"
) -> Path:
    """PSNR and SSIM per frame: fused against the bicubic and nearest-Phantom baselines."""
    fig = _figure(11, 4)
    axes = fig.subplots(1, 2)
    for ax, name, unit in zip(axes, ("psnr", "ssim"), (" (dB)", "")):
        for suffix, label, style in (
            ("", "fused", "o-"),
            ("_bicubic", "bicubic x4", "s--"),
            ("_nearest", "Phantom before", "^:"),
        ):
            y = metrics.get(name + suffix)
            if y is None:
                continue
            finite = y[np.isfinite(y)]
            mean = f" (mean {finite.mean():.3g})" if finite.size else ""
            ax.plot(x, y, style, ms=3, lw=1, label=label + mean)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name.upper() + unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("double mode: fused vs baselines against the held-out Phantom frame")
    fig.tight_layout()
    return _save(fig, path)


def write_attention(attention: np.ndarray, path: Path) -> Path:
    """Bar chart of the mean TSA attention each input received (rows = frames)."""
    mean = np.nanmean(attention, axis=0)
    std = np.nanstd(attention, axis=0)
    fig = _figure(6, 3.5)
    ax = fig.subplots()
    colors = ["tab:blue"] * 3 + ["tab:orange"] * 2
    ax.bar(ATTENTION_INPUTS, mean, yerr=std, color=colors, capsize=3)
    ax.set_ylabel("mean TSA attention")
    ax.set_title(f"TSA attention per input over {attention.shape[0]} fused frames", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
