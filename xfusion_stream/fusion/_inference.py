"""The model side of a fusion worker: per-frame feature cache and the batched forward.

Owns everything that is cached between windows, so a worker's caches are visible
(``feature_cache.hits`` ...) and end with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._model import FusionModel

if TYPE_CHECKING:
    from ._runner import WindowJob

__all__ = ["WindowInference", "WindowOutput"]


@dataclass(frozen=True)
class WindowOutput:
    """What the model gives for one window."""

    image: np.ndarray  # float32 (4h, 4w) in [0, 1]
    attention: np.ndarray  # float32 (5,), NaN where the model has none
    tau: float  # fraction of the Phantom interval (hr_warp), NaN otherwise
    blend_weights: np.ndarray  # float32 (4,), NaN where the model does not blend


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


class WindowInference:
    """Runs windows through one model, reusing features of frames shared by windows."""

    def __init__(self, model: FusionModel, *, feature_cache: bool = True) -> None:
        self.model = model
        self.cache = _FeatureCache(capacity=16 if feature_cache else 0)

    @torch.inference_mode()
    def run(self, jobs: Sequence[WindowJob]) -> list[WindowOutput]:
        """One output per job, in order (NaN where the model does not report a value)."""
        m = self.model
        net: Any = m.net
        with m.autocast():
            lr_feats, hr_feats = [], []
            for job in jobs:
                lr_feats.append(
                    torch.cat(
                        [
                            self.cache.get(
                                ("lr", pos), lambda f=frame: net.encode_lr(m.to_tensor([f]))
                            )
                            for pos, frame in zip(job.lr, job.lr_frames)
                        ]
                    )
                )
                hr_feats.append(
                    torch.cat(
                        [
                            self.cache.get(
                                ("hr", pos), lambda f=frame: net.encode_hr(m.to_tensor([f]))
                            )
                            for pos, frame in zip(job.hr, job.hr_frames)
                        ]
                    )
                )
            centre = m.to_tensor([job.lr_frames[1] for job in jobs])
            extra: dict[str, Any] = {}
            if getattr(net, "needs_hr_frames", False):  # e.g. EDVR-STF with hr_gate
                extra["hq"] = torch.stack([m.to_tensor(list(job.hr_frames)) for job in jobs])
            details: dict[str, torch.Tensor] = {}
            if getattr(net, "reports_details", False):  # EDVR-STF with hr_warp
                extra["details"] = details
            out, att = net.fuse(torch.stack(lr_feats), torch.stack(hr_feats), centre, **extra)
        images = [o[0].float().clamp(0, 1).cpu().numpy() for o in out]
        if att is None:
            atts = [np.full(5, np.nan, dtype=np.float32) for _ in jobs]
        else:
            atts = [a.float().cpu().numpy() for a in att]
        nan4 = np.full(4, np.nan, dtype=np.float32)
        taus = [float(t) for t in details["tau"].float().cpu()] if "tau" in details else None
        blends = (
            [w.float().cpu().numpy() for w in details["weights"]] if "weights" in details else None
        )
        taus = taus or [float("nan")] * len(jobs)
        blends = blends or [nan4.copy() for _ in jobs]
        return [WindowOutput(*fields) for fields in zip(images, atts, taus, blends)]
