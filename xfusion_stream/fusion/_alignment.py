"""Does the calibration fit this run? Asked of the run's own simultaneous frames.

A calibration record is checked for sanity when it is loaded (finite, scales near 1),
but a record of another geometry (the cameras moved, the wrong record) passes that and
costs several dB with nothing to show for it: measurement consistency then rebuilds the
frame from the Shimadzu alone, so even the fidelity residual stays quiet. The run itself
can tell. A Phantom frame recorded at the same instant as a Shimadzu frame (the 'E'
frames that double mode pairs, |dt| <= the pairing tolerance), taken through the
Shimadzu's measurement, must match that Shimadzu frame best where the calibration puts
it. If shifting it by a whole Shimadzu pixel or two fits clearly better, the
registration is off by that much and every fused frame of the run inherits the error.
A scene without texture matches equally everywhere and is never flagged. And where the
Phantom frame has clear structure, the simultaneous Shimadzu frame must follow it at
all: a dead, covered or unsynchronised Shimadzu (or a record of another field of view)
gives a frame that does not correlate with it, and every fused frame would be built on
a camera that saw something else (an all-zero Shimadzu burst was fused ``ok``).

Each check also says, to a fraction of a pixel, where the Shimadzu saw the field
relative to the Phantom (``offset``): the calibration's residual on this run, which a
whole-pixel test cannot see and the consistency step's position move would follow
(ADR 0005 addendum).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xfusion_models.ops import ShimadzuMeasurement, estimate_translation, translate

from ..core import openmp_released

__all__ = ["AlignmentCheck", "AlignmentMonitor", "alignment_check"]

logger = logging.getLogger(__name__)

#: A shifted alignment must fit this much better (RMS in noise units) to flag the record.
BETTER_BY = 1.5
#: ... and by more than this many noise units (pure noise fits every shift alike).
MARGIN = 0.5
#: Structure (std of the measured Phantom frame over the Shimadzu noise sigma) above which
#: the Shimadzu frame must follow the Phantom's, and the correlation it must reach then
#: (noise alone at that structure still correlates about 0.8).
STRUCTURE = 1.5
MIN_CORRELATION = 0.3
#: The mean level of the first ``LEVEL_FRAMES`` Shimadzu frames (fused scale, 0..1) and
#: that of the Phantom frames nearest each in time must agree within a factor
#: ``LEVEL_FACTOR`` or ``LEVEL_SLACK`` of full scale: both see one sample in one beam
#: at one time, and correlation is blind to scale (a Shimadzu of counts /1000, floats of
#: 0..1 where counts were due, a saturated Phantom: all fused as ``ok``).
LEVEL_FRAMES = 16
LEVEL_FACTOR = 2.0
LEVEL_SLACK = 0.05
#: A frame whose pixels spread less than this (fused scale: 0.07 counts of 16 bits) is flat.
FLAT = 1e-6
#: Phantom frame levels kept to find the ones nearest the Shimadzu frames in time (a
#: Phantom records thousands of frames before the trigger; each is a time and a float).
PHANTOM_LEVELS_KEPT = 100_000


@dataclass(frozen=True)
class AlignmentCheck:
    """The misfit (RMS, noise units, after a gain/offset fit) at the calibrated alignment
    and at the best whole-pixel shift (Shimadzu px, rows/cols) within the search."""

    rms_calibrated: float
    rms_best: float
    best_shift: tuple[int, int]
    #: std of the measured Phantom frame in noise units, and its correlation with the
    #: Shimadzu frame at the best shift
    structure: float = float("nan")
    correlation: float = float("nan")
    #: where the Shimadzu saw the field relative to the Phantom frame, (rows, cols) in
    #: Shimadzu px to a fraction of one; NaN where the Phantom frame has no structure
    offset: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def same_scene(self) -> bool:
        """False when the Phantom frame has clear structure the Shimadzu frame lacks."""
        return not (self.structure >= STRUCTURE and self.correlation < MIN_CORRELATION)

    @property
    def plausible(self) -> bool:
        if self.best_shift == (0, 0) or self.rms_calibrated - self.rms_best <= MARGIN:
            return True
        return self.rms_calibrated <= BETTER_BY * self.rms_best


def _gain_level(
    lr: torch.Tensor, predicted: torch.Tensor, sigma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) of lr ~ a * predicted + b, least squares weighted by 1 / sigma**2."""
    x, y, w = predicted.flatten(), lr.flatten(), 1.0 / sigma.flatten() ** 2
    design = torch.stack([x, torch.ones_like(x)], dim=1) * w.sqrt()[:, None]
    gain, level = torch.linalg.lstsq(design, y * w.sqrt()).solution
    return gain, level


def _misfit(lr: torch.Tensor, predicted: torch.Tensor, sigma: torch.Tensor) -> float:
    """RMS of (lr - (a * predicted + b)) / sigma with a, b fitted by least squares."""
    gain, level = _gain_level(lr, predicted, sigma)
    r = (lr - (gain * predicted + level)) / sigma
    return float(torch.sqrt(torch.mean(r**2)))


def alignment_check(
    phantom_hr: np.ndarray,
    shimadzu_lr: np.ndarray,
    shimadzu: ShimadzuMeasurement,
    max_shift: int = 2,
) -> AlignmentCheck:
    """Compare a registered Phantom frame with the simultaneous registered Shimadzu frame
    at the calibrated alignment and at every whole-pixel shift up to ``max_shift``."""
    return _check(_measured(phantom_hr, shimadzu), shimadzu_lr, shimadzu, max_shift)


def _measured(phantom_hr: np.ndarray, shimadzu: ShimadzuMeasurement) -> np.ndarray:
    """A Phantom frame as the Shimadzu would have recorded it (on the Shimadzu grid)."""
    with torch.inference_mode():
        hr = torch.from_numpy(np.ascontiguousarray(phantom_hr, dtype=np.float32))[None, None]
        return shimadzu.measure(hr)[0, 0].numpy()


def _check(
    measured_lr: np.ndarray,
    shimadzu_lr: np.ndarray,
    shimadzu: ShimadzuMeasurement,
    max_shift: int = 2,
) -> AlignmentCheck:
    with torch.inference_mode():
        measured = torch.from_numpy(np.ascontiguousarray(measured_lr))[None, None]
        lr = torch.from_numpy(np.ascontiguousarray(shimadzu_lr, dtype=np.float32))[None, None]
        sigma = shimadzu.sigma(lr)
        m = max_shift
        h, w = lr.shape[-2:]
        if h <= 4 * m or w <= 4 * m:
            return AlignmentCheck(float("nan"), float("nan"), (0, 0))
        core, core_sigma = lr[..., m : h - m, m : w - m], sigma[..., m : h - m, m : w - m]
        fits = {
            (dy, dx): _misfit(
                core, measured[..., m + dy : h - m + dy, m + dx : w - m + dx], core_sigma
            )
            for dy in range(-m, m + 1)
            for dx in range(-m, m + 1)
        }
        best = min(fits, key=lambda k: fits[k])
        dy, dx = best  # the Shimadzu must follow the Phantom somewhere in the search
        shifted = measured[..., m + dy : h - m + dy, m + dx : w - m + dx]
        structure, correlation = _follows(shifted, core, core_sigma)
        offset = (float("nan"), float("nan"))
        if structure >= STRUCTURE:
            offset = _offset(measured, lr, sigma, (-dy, -dx), m)
    return AlignmentCheck(fits[(0, 0)], fits[best], best, structure, correlation, offset)


def _offset(
    measured: torch.Tensor,
    lr: torch.Tensor,
    sigma: torch.Tensor,
    start: tuple[int, int],
    border: int,
) -> tuple[float, float]:
    """The sub-pixel move of ``measured`` (after a gain/offset fit) that fits ``lr`` best,
    from the whole-pixel ``start``: where the Shimadzu saw the field, (rows, cols)."""
    e = border + 1
    first = torch.tensor([start], dtype=lr.dtype)
    # gain and level fitted where the whole-pixel search put the frame (at no move, a
    # fine texture a pixel off does not correlate and the fit would flatten it)
    placed = translate(measured, first[:, 0], first[:, 1])
    inner = (..., slice(e, -e), slice(e, -e))
    gain, level = _gain_level(lr[inner], placed[inner], sigma[inner])
    matched = gain * measured + level
    move = estimate_translation(
        lambda d: translate(matched, d[:, 0], d[:, 1]),
        lr,
        sigma.pow(-2),
        start=first,
        steps=6,
        max_px=border + 0.5,
        border=e,
    )
    return float(move[0, 0]), float(move[0, 1])


def _follows(measured: torch.Tensor, lr: torch.Tensor, sigma: torch.Tensor) -> tuple[float, float]:
    """(std of ``measured`` in noise units, its correlation with ``lr``; 0 for a flat
    ``lr``, which follows nothing)."""
    x, y = measured.flatten().double(), lr.flatten().double()
    structure = float(x.std() / sigma.double().mean().clamp_min(1e-12))
    if float(x.std()) == 0.0 or float(y.std()) == 0.0:
        return structure, 0.0
    return structure, float(torch.corrcoef(torch.stack([x, y]))[0, 1])


@dataclass
class AlignmentMonitor:
    """Watches a run's frames for simultaneous Phantom/Shimadzu pairs and checks the
    first ``pairs`` of them (cheap: a few small fits per run).

    Frames wait for their partner on the Shimadzu grid (a Phantom frame is kept as the
    Shimadzu would have measured it, 1/16 of its bytes at x4), up to ``keep`` per
    camera: a fly-scanned run sends one camera's whole burst before the other's.
    """

    shimadzu: ShimadzuMeasurement
    tolerance_ns: int
    pairs: int = 3
    keep: int = 64
    checks: list[AlignmentCheck] = field(default_factory=list)
    #: the Shimadzu frame time of each check (ns), in step with ``checks``
    check_times: list[int] = field(default_factory=list)
    spreads: dict[str, list[float]] = field(default_factory=lambda: {"phantom": [], "shimadzu": []})
    timed: dict[str, list[tuple[int, float]]] = field(
        default_factory=lambda: {"phantom": [], "shimadzu": []}
    )
    _seen: dict[str, dict[int, np.ndarray]] = field(
        default_factory=lambda: {"phantom": {}, "shimadzu": {}}
    )

    def add(self, camera: str, time_ns: int, frame: np.ndarray) -> None:
        first = len(self.spreads[camera]) < LEVEL_FRAMES
        if first or (camera == "phantom" and len(self.timed[camera]) < PHANTOM_LEVELS_KEPT):
            self.timed[camera].append((int(time_ns), float(np.mean(frame, dtype=np.float64))))
            if first:
                self.spreads[camera].append(float(np.std(frame, dtype=np.float64)))
        if len(self.checks) >= self.pairs:
            return
        with openmp_released():  # the document thread's torch must not keep a pool
            self._add(camera, time_ns, frame)

    def _add(self, camera: str, time_ns: int, frame: np.ndarray) -> None:
        other = "shimadzu" if camera == "phantom" else "phantom"
        lr = _measured(frame, self.shimadzu) if camera == "phantom" else frame
        for t, partner in list(self._seen[other].items()):
            if abs(t - time_ns) <= self.tolerance_ns:
                measured, shimadzu_lr = (lr, partner) if camera == "phantom" else (partner, lr)
                self.checks.append(_check(measured, shimadzu_lr, self.shimadzu))
                self.check_times.append(int(t if camera == "phantom" else time_ns))
                del self._seen[other][t]
                return
        seen = self._seen[camera]
        seen[time_ns] = lr
        while len(seen) > self.keep:  # the oldest first
            seen.pop(next(iter(seen)))

    def _first_levels(self, camera: str) -> list[float]:
        """Mean levels of ``camera``'s first ``LEVEL_FRAMES`` frames (fused scale)."""
        return [level for _, level in self.timed[camera][:LEVEL_FRAMES]]

    def _level_problem(self) -> str | None:
        """Why the two cameras' frames are not on one intensity scale, or None."""
        if not self.timed["phantom"] or not self.timed["shimadzu"]:
            return None
        s = float(np.mean(self._first_levels("shimadzu")))
        p = self._phantom_level_near_shimadzu()
        n = len(self.timed["shimadzu"])
        flat = [c for c, v in self.spreads.items() if max(v) <= FLAT]
        if flat:  # no camera that sees a sample records every pixel alike, noise and all
            names = " and the ".join(
                f"{c.capitalize()} frames ({len(self.spreads[c])} checked, level "
                f"{self.timed[c][0][1]:.4g})"
                for c in flat
            )
            return (
                f"the {names} are flat, every pixel alike: a dead, unplugged or saturated "
                "camera records nothing to fuse"
            )
        if abs(p - s) <= max(LEVEL_SLACK, (1.0 - 1.0 / LEVEL_FACTOR) * max(abs(p), abs(s))):
            return None
        return (
            f"the Shimadzu frames are not on the Phantom's intensity scale: mean level "
            f"{s:.4g} against {p:.4g} (0..1 of full scale) over the first {n} Shimadzu "
            "frames and the Phantom frames nearest them: a dead, covered or saturated "
            "camera, or counts of another bit depth with no intensity match in the "
            "calibration (xfusion calibrate fits one)"
        )

    def _phantom_level_near_shimadzu(self) -> float:
        """Mean level of the Phantom frame nearest in time to each Shimadzu frame checked
        (the Phantom's first frames may be long before the event both cameras saw)."""
        times = np.array([t for t, _ in self.timed["phantom"]], dtype=np.float64)
        levels = np.array([v for _, v in self.timed["phantom"]])
        wanted = np.array([t for t, _ in self.timed["shimadzu"]], dtype=np.float64)
        nearest = np.abs(times[None, :] - wanted[:, None]).argmin(axis=1)
        return float(np.mean(levels[nearest]))

    def reference(self, until_ns: int) -> tuple[float, float]:
        """Where the Shimadzu saw the field relative to the registration, (rows, cols)
        Shimadzu px (``ShimadzuMeasurement.offset``): the median of the checks of pairs
        recorded at or before ``until_ns`` that could measure it; NaN where none.

        A window at Shimadzu time t needs a Shimadzu frame after t and the first Phantom
        frame after t, so with each camera's frames in time order every pair up to t
        has been checked when it is cut, whichever camera's documents came first: the
        value is the same live, replayed (Tiled hands a run back stream by stream) and
        reprocessed."""
        found = [
            c.offset
            for c, t in zip(self.checks, self.check_times)
            if t <= until_ns and np.isfinite(c.offset).all()
        ]
        if not found:
            return (float("nan"), float("nan"))
        rows, cols = np.median(np.array(found), axis=0)
        return (float(rows), float(cols))

    @property
    def problem(self) -> str | None:
        """Why the calibration does not fit this run, or None (also when unchecked)."""
        level = self._level_problem()
        if level is not None:
            return level
        elsewhere = [c for c in self.checks if not c.same_scene]
        if self.checks and len(elsewhere) * 2 > len(self.checks):
            c = elsewhere[0]
            return (
                f"the Shimadzu frames do not follow the simultaneous Phantom frames "
                f"(correlation {c.correlation:.2f} where the Phantom frame has structure of "
                f"{c.structure:.1f} noise units): a dead, covered or unsynchronised "
                "Shimadzu, or a calibration of another field of view"
            )
        bad = [c for c in self.checks if not c.plausible]
        if not self.checks or len(bad) * 2 <= len(self.checks):
            return None
        c = bad[0]
        return (
            f"the calibration does not fit this run: simultaneous Phantom and Shimadzu "
            f"frames match best shifted by {c.best_shift} Shimadzu px (rows, cols), misfit "
            f"{c.rms_best:.2f} there vs {c.rms_calibrated:.2f} noise units as calibrated; "
            "recalibrate (xfusion calibrate) or use the record of this geometry"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "pairs_checked": len(self.checks),
            "mean_level": {
                c: round(float(np.mean(v)), 5) if (v := self._first_levels(c)) else None
                for c in ("phantom", "shimadzu")
            },
            "plausible": self.problem is None,
            "rms_calibrated": [round(c.rms_calibrated, 3) for c in self.checks],
            "correlation": [
                round(c.correlation, 3) if np.isfinite(c.correlation) else None for c in self.checks
            ],
            "best_shift": [list(c.best_shift) for c in self.checks],
            "shimadzu_offset_px": [
                [round(v, 3) for v in c.offset] if np.isfinite(c.offset).all() else None
                for c in self.checks
            ],
        }
