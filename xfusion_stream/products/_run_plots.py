"""Per-frame plots of a whole run: where each fused frame came from (blend weights)
and how well the Shimadzu supports it (residual in noise units).

They replace the mean-attention bar chart, whose bars all sit at ~1.0 for the
shipped model and so say nothing. Object API only (``Figure``), as in ``_plots``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fusion import BLEND_SOURCES
from ._plots import _figure, _save
from ._residual import TINT_THRESHOLD

__all__ = ["blend_figure", "fidelity_figure", "write_blend_weights", "write_fidelity"]

_BLEND_COLOURS = ("tab:purple", "tab:blue", "tab:cyan", "tab:orange")
_BLEND_NAMES = ("network", "Phantom before (warped)", "Phantom after (warped)", "Shimadzu")


def write_blend_weights(x: np.ndarray, weights: np.ndarray, path: Path) -> Path:
    """``blend_figure`` as a PNG at ``path``."""
    return _save(blend_figure(x, weights), path)


def write_fidelity(x: np.ndarray, rms: np.ndarray, p99: np.ndarray, path: Path) -> Path:
    """``fidelity_figure`` as a PNG at ``path``."""
    return _save(fidelity_figure(x, rms, p99), path)


def blend_figure(x: np.ndarray, weights: np.ndarray):
    """Stacked share of each source (``BLEND_SOURCES``) in every fused frame, legend
    to the right of the axes."""
    weights = np.asarray(weights, dtype=np.float64).reshape(len(x), len(BLEND_SOURCES))
    order = np.argsort(x, kind="stable")
    x, weights = np.asarray(x)[order], weights[order]
    fig = _figure(10, 3.8)
    ax = fig.subplots()
    means = weights.mean(axis=0)
    labels = [f"{name} (mean {m:.2f})" for name, m in zip(_BLEND_NAMES, means)]
    ax.stackplot(x, weights.T, labels=labels, colors=_BLEND_COLOURS, alpha=0.85)
    ax.set_xlim(x[0], x[-1] if len(x) > 1 else x[0] + 1)
    ax.set_ylim(0, max(1.0, float(weights.sum(axis=1).max())))
    ax.set_xlabel("Shimadzu frame")
    ax.set_ylabel("share of the fused frame")
    ax.set_title(f"blend weights per fused frame ({len(x)} frames)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="source")
    fig.tight_layout()
    return fig


def fidelity_figure(x: np.ndarray, rms: np.ndarray, p99: np.ndarray):
    """Residual RMS and 99th percentile per frame (noise units), with the 1 sigma a
    supported frame sits at and the overlay's tint threshold; legend to the right."""
    order = np.argsort(x, kind="stable")
    x, rms, p99 = np.asarray(x)[order], np.asarray(rms)[order], np.asarray(p99)[order]
    fig = _figure(10, 3.8)
    ax = fig.subplots()
    ax.plot(x, rms, "o-", ms=3, lw=1, color="tab:blue", label=f"RMS (mean {np.nanmean(rms):.2f})")
    ax.plot(x, p99, "s--", ms=3, lw=1, color="tab:red", label=f"p99 (mean {np.nanmean(p99):.2f})")
    ax.axhline(1.0, color="0.3", lw=0.8, ls=":", label="1 sigma: supported")
    ax.axhline(
        TINT_THRESHOLD, color="0.3", lw=0.8, ls="-.", label=f"{TINT_THRESHOLD:g} sigma: tinted"
    )
    ax.set_ylim(bottom=0)
    ax.set_xlabel("Shimadzu frame")
    ax.set_ylabel("|residual| (noise sigma)")
    ax.set_title(
        "fused frame vs the Shimadzu frame it fuses (residual in noise units)", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig
