"""Matplotlib products: the montage (with the truth and residual columns), PSNR/SSIM
per frame, mean TSA attention (for models without blend weights).

Only the object API (``Figure`` + ``FigureCanvasAgg``) is used, never pyplot, so
plotting touches no global state and is safe whatever thread the fusion worker is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._panels import Panels
from ._residual import RESIDUAL_COLORMAP, RESIDUAL_LIMIT

__all__ = [
    "ATTENTION_INPUTS",
    "metrics_figure",
    "write_attention",
    "write_metrics_plot",
    "write_montage",
]

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
    """One row per window: LR (bicubic x4) | fused | Phantom, each titled (with its PSNR
    when there is a truth); then the truth when the rows carry one, then the residual
    against the Shimadzu frame (noise units, diverging scale) when they carry one."""
    if not rows:
        raise ValueError("a montage needs at least one window")
    h, w = rows[0].fused.shape[:2]
    has_truth = any(p.truth is not None for p in rows)
    has_residual = any(p.residual is not None for p in rows)
    n_cols = 3 + has_truth + has_residual
    panel_in = 3.2
    fig = _figure(n_cols * panel_in, len(rows) * (panel_in * h / w + 0.6))
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for row, panels in zip(axes, rows):
        shown: list[tuple[np.ndarray | None, str]] = [
            (panels.lr, panels.titles[0]),
            (panels.fused, panels.titles[1]),
        ]
        shown.append((panels.hr, panels.titles[2]))
        if has_truth:
            shown.append((panels.truth, panels.truth_title or "truth: none"))
        for ax, (image, title) in zip(row, shown):
            if image is not None:
                ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
        if has_residual:
            _residual_panel(fig, row[-1], panels)
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
    x: np.ndarray,
    metrics: dict[str, np.ndarray],
    path: Path,
    xlabel: str = "Shimadzu frame",
    title: str = "fused vs baselines against the truth",
) -> Path:
    """``metrics_figure`` as a PNG at ``path``."""
    return _save(metrics_figure(x, metrics, xlabel, title), path)


def metrics_figure(
    x: np.ndarray,
    metrics: dict[str, np.ndarray],
    xlabel: str = "Shimadzu frame",
    title: str = "fused vs baselines against the truth",
):
    """PSNR and SSIM per frame: fused against the bicubic and nearest-Phantom baselines."""
    fig = _figure(11, 5)
    axes = fig.subplots(1, 2)
    for ax, name, unit in zip(axes, ("psnr", "ssim"), (" (dB)", "")):
        for suffix, label, style in (
            ("", "fused", "o-"),
            ("_bicubic", "bicubic x4", "s--"),
            ("_nearest", "nearest Phantom input", "^:"),
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
        # under the axes, so it covers no line
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


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
