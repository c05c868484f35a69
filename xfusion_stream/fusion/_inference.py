"""The model side of a fusion worker: its caches and the batched streaming forward.

Owns everything that is cached between windows (per-frame features, the motion of
Phantom pairs), so a worker's caches are visible (``feature_cache.hits``,
``motion_cache.misses`` ...) and end with it. Each output also says how far its frame is
from the Shimadzu frame it fuses (``_fidelity``), measured the way the calibration says
the Shimadzu measures (``ShimadzuMeasurement``).
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from xfusion_models import FusedOutput, PhantomMotionCache
from xfusion_models.ops import ShimadzuMeasurement

from ._fidelity import ShimadzuResidual, shimadzu_residuals
from ._model import FusionModel

if TYPE_CHECKING:
    from ._runner import WindowJob

__all__ = ["WindowExecutor", "WindowInference", "WindowOutput", "WindowRunner"]

#: Per-frame features kept (both cameras together); a window needs 3 Shimadzu + 2 Phantom.
FEATURE_CACHE_SIZE = 16
#: How far ``run_each`` looks for the next Phantom pair: past the ~20 Shimadzu frames
#: between two Phantom frames of the HPV-X2 / TMX7510 pairing.
LOOK_AHEAD_WINDOWS = 32


@dataclass(frozen=True)
class WindowOutput:
    """What the model gives for one window."""

    image: np.ndarray  # float32 (4h, 4w) in [0, 1]
    attention: np.ndarray  # float32 (5,), NaN where the model has none
    tau: float  # fraction of the Phantom interval (hr_warp), NaN otherwise
    blend_weights: np.ndarray  # float32 (4,), NaN where the model does not blend
    residual: ShimadzuResidual  # against Shimadzu frame t, in noise units


class WindowRunner(Protocol):
    """What a fusion worker fuses its windows with: ``WindowInference`` in its own
    thread, or a runner that sends them elsewhere (other processes, Dask workers).
    ``run`` returns one output per job, in order; ``release`` ends the fused run."""

    def run(self, jobs: Sequence[WindowJob]) -> list[WindowOutput]: ...

    def release(self) -> None: ...


class WindowExecutor(Protocol):
    """Where a session's windows are fused when not in the worker's own thread.

    ``batch``: the windows a worker should hand over at once so that every place has
    work. Every executor fuses each window on its own (batch 1 per forward, caches
    per fused run), so its frames are bit-identical to ``WindowInference``'s.
    """

    batch: int

    def runner(self, shimadzu: ShimadzuMeasurement, feature_cache: bool) -> WindowRunner: ...


def _emptied(cache: PhantomMotionCache) -> PhantomMotionCache:
    """A new empty motion cache carrying ``cache``'s counts (``cache`` is closed)."""
    cache.close()
    fresh = PhantomMotionCache(cache.size)
    fresh.hits, fresh.misses = cache.hits, cache.misses
    return fresh


class _FeatureCache:
    """Per-frame features keyed by (camera, position), least recently used evicted."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int], torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        value = compute()
        if self.capacity:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value


def _offset_key(job: WindowJob) -> tuple[float | None, ...]:
    """A job's Shimadzu offset as a key (NaN, which equals nothing, as None)."""
    return tuple(v if math.isfinite(v) else None for v in job.shimadzu_offset)


def _rows(values: torch.Tensor | None, n: int, width: int) -> list[np.ndarray]:
    """One float32 row per window, or NaN rows where the model reports nothing."""
    if values is None:
        return [np.full(width, np.nan, dtype=np.float32) for _ in range(n)]
    return [row.float().cpu().numpy() for row in values]


def _window_outputs(
    fused: FusedOutput, jobs: Sequence[WindowJob], shimadzu: ShimadzuMeasurement
) -> list[WindowOutput]:
    n = len(jobs)
    images = [o[0].float().clamp(0, 1).cpu().numpy() for o in fused.image]
    if fused.tau is None:
        taus = [float("nan")] * n
    else:
        taus = [float(t) for t in fused.tau.float().cpu()]
    attention, blends = _rows(fused.attention, n, 5), _rows(fused.blend_weights, n, 4)
    residuals = shimadzu_residuals(images, [job.lr_frames[1] for job in jobs], shimadzu)
    return [WindowOutput(*fields) for fields in zip(images, attention, taus, blends, residuals)]


class WindowInference:
    """Runs windows through one model, reusing what windows share: the features of a frame
    (up to three windows per Shimadzu frame) and the motion of a Phantom pair (every
    window between the two frames). Neither cache changes a result (``xfusion bench``
    checks it; switching both off is the original's recompute-everything baseline). ``shimadzu`` (the
    calibration's ratio and Shimadzu blur) measures each fused frame against Shimadzu
    frame t, with each job's own ``shimadzu_offset``."""

    def __init__(
        self,
        model: FusionModel,
        *,
        feature_cache: bool = True,
        motion_cache: bool = True,
        shimadzu: ShimadzuMeasurement | None = None,
        flow_ahead: bool | None = None,
    ) -> None:
        self.model = model
        self.shimadzu = shimadzu if shimadzu is not None else ShimadzuMeasurement()
        self.feature_cache = _FeatureCache(capacity=FEATURE_CACHE_SIZE if feature_cache else 0)
        self.motion_cache = PhantomMotionCache() if motion_cache else None
        #: start the next Phantom pair's flow while the model fuses (default: off the CPU)
        self.flow_ahead = model.device.type != "cpu" if flow_ahead is None else flow_ahead
        self._asked_ahead: OrderedDict[tuple[int, ...], None] = OrderedDict()
        #: the last Phantom pair on the model's device (2, 1, H, W), with its positions:
        #: the ~20 windows between two Phantom frames copy it there once, not each time
        self._hr_pair: tuple[tuple[int, ...], torch.Tensor] | None = None

    def look_ahead(self, upcoming: Sequence[WindowJob]) -> None:
        """Start, in the motion cache's thread, the flow of the first Phantom pair among
        ``upcoming`` (windows queued after those being fused) not asked for yet.

        On a GPU the flow (OpenCV, on the CPU, ~0.1-0.3 s a 1600x1000 pair) then runs
        while the device fuses the windows before the pair's, instead of holding the
        device idle at the pair's first window. Only once the model has used the motion
        cache (a model without ``hr_warp`` never does), and only with ``flow_ahead``."""
        cache = self.motion_cache
        if not self.flow_ahead or cache is None or cache.hits + cache.misses == 0:
            return
        for job in upcoming:
            if tuple(job.hr) in self._asked_ahead:
                continue
            self._asked_ahead[tuple(job.hr)] = None
            while len(self._asked_ahead) > cache.size:
                self._asked_ahead.popitem(last=False)
            if cache.prefetch(np.stack(job.hr_frames)):
                return

    def run_each(self, jobs: Sequence[WindowJob]) -> list[WindowOutput]:
        """``run`` window by window, in order, each time looking ``LOOK_AHEAD_WINDOWS``
        windows ahead for the next Phantom pair (``look_ahead``)."""
        outputs = []
        for i, job in enumerate(jobs):
            self.look_ahead(jobs[i + 1 : i + 1 + LOOK_AHEAD_WINDOWS])
            outputs += self.run([job])
        return outputs

    def release(self) -> None:
        """Drop the cached features and motions (the counts stay): the run is over."""
        self.feature_cache._items.clear()
        self._asked_ahead.clear()
        self._hr_pair = None
        if self.motion_cache is not None:
            self.motion_cache = _emptied(self.motion_cache)

    def _encode(
        self, encode: Callable[[torch.Tensor], torch.Tensor], frame: np.ndarray
    ) -> torch.Tensor:
        return encode(self.model.to_tensor([frame]))

    def _features(
        self,
        camera: str,
        positions: Sequence[int],
        frames: Sequence[np.ndarray],
        encode: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """(n, C, h, w) features of one window's frames of one camera, cached per frame."""
        return torch.cat(
            [
                self.feature_cache.get(
                    (camera, pos), functools.partial(self._encode, encode, frame)
                )
                for pos, frame in zip(positions, frames)
            ]
        )

    def _hr_frames(self, job: WindowJob) -> torch.Tensor:
        """The window's Phantom pair (2, 1, H, W) on the model's device, kept for the
        windows after it when features are cached (as the frames' features are)."""
        key = tuple(job.hr)
        if self._hr_pair is not None and self._hr_pair[0] == key:
            return self._hr_pair[1]
        pair = self.model.to_tensor(list(job.hr_frames))
        if self.feature_cache.capacity:
            self._hr_pair = (key, pair)
        return pair

    def run(self, jobs: Sequence[WindowJob]) -> list[WindowOutput]:
        """One output per job, in order (NaN where the model does not report a value),
        each with its residual against Shimadzu frame t. Jobs fuse together as long as
        they carry the same Shimadzu offset (the run's registration residual, as measured
        up to each window)."""
        outputs: list[WindowOutput] = []
        start = 0
        for end in range(1, len(jobs) + 1):
            if end == len(jobs) or _offset_key(jobs[end]) != _offset_key(jobs[start]):
                offset = jobs[start].shimadzu_offset
                outputs += self._run(jobs[start:end], replace(self.shimadzu, offset=offset))
                start = end
        return outputs

    @torch.inference_mode()
    def _run(self, jobs: Sequence[WindowJob], shimadzu: ShimadzuMeasurement) -> list[WindowOutput]:
        m, net = self.model, self.model.net
        with m.autocast():
            lr_feats = [self._features("lr", j.lr, j.lr_frames, net.encode_lr) for j in jobs]
            hr_feats = [self._features("hr", j.hr, j.hr_frames, net.encode_hr) for j in jobs]
            centre = m.to_tensor([job.lr_frames[1] for job in jobs])
            hr_frames = None
            if net.needs_hr_frames:  # a full-resolution gate (hr_gate, hr_warp)
                hr_frames = torch.stack([self._hr_frames(job) for job in jobs])
            fused = net.fuse(
                torch.stack(lr_feats),
                torch.stack(hr_feats),
                centre,
                hr_frames,
                motion_cache=self.motion_cache,
                shimadzu=shimadzu,
            )
        return _window_outputs(fused, jobs, shimadzu)
