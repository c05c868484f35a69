"""Ground truth for the products, wherever a run has one.

A double-mode window carries its own truth (the held-out Phantom frame) and the worker
has scored it. Anything else that knows the truth (the demo's simulated scene, a
benchmark) hands it to ``ProductWriter(truth=...)``: a callable given each fused frame
and its window that returns a ``TruthFrame`` or None. The products room never learns
where the truth comes from; it only shows it (montage column, GIF panel), scores the
frame when the provider did not (``fusion.score_against_truth``) and names it in
``metrics.csv``'s ``truth_reference`` column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..fusion import score_against_truth

if TYPE_CHECKING:
    from ..fusion import FusedFrame, WindowJob

__all__ = ["TRUTH_REFERENCE_COLUMN", "TruthFrame", "TruthProvider", "WindowTruth", "window_truth"]

#: The ``metrics.csv`` column naming what each row was scored against ("" if nothing).
TRUTH_REFERENCE_COLUMN = "truth_reference"


@dataclass(frozen=True)
class TruthFrame:
    """The truth of one fused frame, on its grid and scale ([0, 1]).

    ``reference`` says what it is (one short line, e.g. "simulated scene at t=...");
    ``scores`` are the frame's scores under ``fusion.METRIC_KEYS`` (computed by the
    writer when empty); ``nearer`` is which Phantom input the nearest baseline was.
    """

    image: np.ndarray
    reference: str
    scores: Mapping[str, float] = field(default_factory=dict)
    nearer: int = 0


#: What ``ProductWriter(truth=...)`` calls per fused frame.
TruthProvider = Callable[["FusedFrame", "WindowJob"], "TruthFrame | None"]


@dataclass(frozen=True)
class WindowTruth:
    """A window's truth as the products use it (``image`` None: no truth)."""

    frame: FusedFrame  # with the truth scores filled in where there are some
    image: np.ndarray | None
    reference: str
    nearer: int


def window_truth(frame: FusedFrame, job: WindowJob, provider: TruthProvider | None) -> WindowTruth:
    """The held-out truth of a double-mode window, else the provider's, else none.

    The provider is called for every frame (it may keep its own record of them).
    Scores the frame already has (the worker's) are kept; the provider's fill in only
    the scores it lacks, so a fused result is never changed by its products.
    """
    given = provider(frame, job) if provider is not None else None
    if job.truth is not None:
        return WindowTruth(frame, np.asarray(job.truth), f"phantom {job.truth_index}", 0)
    if given is None:
        return WindowTruth(frame, None, "", 0)
    truth = np.asarray(given.image, dtype=np.float32)
    scores = dict(given.scores)
    if not scores:
        scores = score_against_truth(
            np.asarray(frame.image, np.float32),
            truth,
            job.lr_frames[1],
            job.hr_frames,
            given.nearer,
        )
    missing = {k: v for k, v in scores.items() if k in frame.schema and k not in frame}
    return WindowTruth(frame.replace(**missing), truth, given.reference, given.nearer)
