"""Motion-compensated Phantom frames at the time of a Shimadzu frame.

The Phantom records sharp frames far apart in time; the Shimadzu records blurry frames
in between. Between two Phantom frames the sample moves smoothly, so dense optical flow
between them (at full resolution, where the detail is) says where every sharp pixel
goes. For a fraction ``tau`` of the Phantom interval both frames are warped to that time
with the quadratic flow approximation of Super SloMo (Jiang et al., CVPR 2018)::

    F_t0 = -(1 - tau) * tau * F_01 + tau**2 * F_10
    F_t1 = (1 - tau)**2 * F_01 - tau * (1 - tau) * F_10

``tau`` itself is read from the Shimadzu frame t (``_tau_search``): it is the fraction
whose warped Phantom blend, area-averaged to the Shimadzu grid, correlates best with
frame t. No timing metadata is needed, and a burst whose motion is not uniform in time
still gets the fraction that matches what the Shimadzu saw.

Flow is OpenCV's DIS (Kroeger et al., ECCV 2016) on the two Phantom frames, stretched
jointly to 8 bits. It runs on the CPU; warping and the ``tau`` search run in torch on the
frames' device. Nothing here is trained, and nothing here carries gradients.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._tau_search import TAU_COARSE, TAU_FINE_STEP, TauViews, search_tau

__all__ = [
    "PhantomAtT",
    "PhantomMotionCache",
    "dense_flow",
    "pair_motion",
    "warp",
    "interpolation_flows",
    "phantom_at_t",
    "TAU_COARSE",
    "TAU_FINE_STEP",
    "STRETCH_PERCENTILES",
]

#: Intensity percentiles of the Phantom pair that map to 0 and 255 for the flow.
STRETCH_PERCENTILES = (0.1, 99.9)


@dataclass(frozen=True)
class PhantomAtT:
    """Both Phantom frames warped to time t, and the fraction ``tau`` they were warped to."""

    before: torch.Tensor  # (B, 1, H, W) Phantom frame before t, warped to t
    after: torch.Tensor  # (B, 1, H, W) Phantom frame after t, warped to t
    tau: torch.Tensor  # (B,) in [0, 1]: 0 = at the frame before, 1 = at the frame after
    #: Forward-backward flow inconsistency (px) of each frame's pixels, warped to t like
    #: the frame: large where the flow failed or content appeared/vanished. None: unknown.
    before_error: torch.Tensor | None = None
    after_error: torch.Tensor | None = None

    def blend(self) -> torch.Tensor:
        """The time-weighted blend (1 - tau) * before + tau * after, (B, 1, H, W)."""
        w = self.tau.view(-1, 1, 1, 1).to(self.before.dtype)
        return (1 - w) * self.before + w * self.after


def _to_uint8(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.ascontiguousarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def dense_flow(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward DIS flow between two frames (H, W) -> (F_01, F_10), (2, H, W).

    ``F_01[:, y, x]`` = (dx, dy) with first(y, x) ~ second(y + dy, x + dx). Both frames are
    stretched to 8 bits with one shared range so their intensities stay comparable.
    """
    import cv2

    if first.shape != second.shape or first.ndim != 2:
        raise ValueError(
            f"flow needs two (H, W) frames of one shape, got {first.shape}, {second.shape}"
        )
    # percentiles, not min/max: one hot pixel or zinger must not flatten the contrast
    lo, hi = (float(v) for v in np.percentile(np.stack((first, second)), STRETCH_PERCENTILES))
    a, b = _to_uint8(first, lo, hi), _to_uint8(second, lo, hi)
    # one per call: an instance is not safe to share between fusion threads
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]
    f01 = dis.calc(a, b, None)
    f10 = dis.calc(b, a, None)
    return f01.transpose(2, 0, 1), f10.transpose(2, 0, 1)


#: A Phantom pair's motion: F_01, F_10 (2, H, W) and their round-trip errors (1, H, W).
PairMotion = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def pair_motion(first: np.ndarray, second: np.ndarray) -> PairMotion:
    """Flows both ways between two frames and each frame's round-trip error (px)."""
    f01, f10 = dense_flow(first, second)
    t01, t10 = torch.from_numpy(f01)[None], torch.from_numpy(f10)[None]
    e0 = _round_trip_error(t01, t10)[0].numpy()
    e1 = _round_trip_error(t10, t01)[0].numpy()
    return f01, f10, e0, e1


def _digest(pair: np.ndarray) -> bytes:
    """Key of a pair's bytes (and shape) in the motion cache."""
    person = str(pair.shape).encode()[:16]
    return hashlib.blake2b(pair.tobytes(), digest_size=16, person=person).digest()


class PhantomMotionCache:
    """The motion of the last few HR (Phantom) pairs, keyed by a digest of the frames' bytes.

    In continuous mode every window between two Phantom frames shares their pair, so flow
    and round-trip errors are computed once per pair instead of once per window, and so
    are the pair's views at each candidate ``tau`` (``_tau_search``), kept for the most
    recent pair only (windows come pair by pair; at 400x250 a pair's views can reach
    ~50 MB). DIS and the views are deterministic, so a cached result equals a recomputed
    one bit for bit. The caller owns it (one per fusion worker, next to its feature
    cache), so ``hits``/``misses`` are visible and the memory goes with the caller;
    thread safe.
    """

    def __init__(self, size: int = 8) -> None:
        if size < 1:
            raise ValueError(f"a motion cache holds at least one pair, got size={size}")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[bytes, PairMotion] = OrderedDict()
        self._views: tuple[bytes, TauViews] = (b"", TauViews())
        #: the pair looked up last as a tensor (where it lives) and its digest
        self._recent: tuple[torch.Tensor, bytes] | None = None
        #: motions started ahead (``prefetch``) and the one thread that computes them
        self._pending: dict[bytes, Future[PairMotion]] = {}
        self._ahead: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def motion(self, pair: np.ndarray) -> PairMotion:
        """The motion of one HR pair (2, H, W), from the cache when seen lately."""
        return self.lookup(pair)[0]

    def lookup(self, pair: np.ndarray | torch.Tensor) -> tuple[PairMotion, TauViews]:
        """The motion of one HR pair (2, H, W) and the memo of its views at candidate taus.

        A tensor equal to the one looked up last is recognised where it lives, without a
        copy to the host or a digest of its bytes: consecutive windows share their pair,
        and on a GPU the copy and the digest (~15 ms for a 1600x1000 pair) would
        otherwise stall every window."""
        if isinstance(pair, torch.Tensor):
            found = self._recent_hit(pair)
            if found is not None:
                return found
            array = np.ascontiguousarray(pair.detach().cpu().numpy())
            result, digest = self._lookup_array(array)
            with self._lock:
                self._recent = (pair.detach().clone(), digest)
                return result, self._views_of(digest)
        result, digest = self._lookup_array(np.ascontiguousarray(pair))
        with self._lock:
            return result, self._views_of(digest)

    def _recent_hit(self, pair: torch.Tensor) -> tuple[PairMotion, TauViews] | None:
        recent = self._recent
        if recent is None:
            return None
        seen, digest = recent
        same = seen.shape == pair.shape and seen.dtype == pair.dtype
        if not (same and seen.device == pair.device and torch.equal(seen, pair)):
            return None
        with self._lock:
            hit = self._items.get(digest)
            if hit is None:  # evicted since
                return None
            self.hits += 1
            self._items.move_to_end(digest)
            return hit, self._views_of(digest)

    def prefetch(self, pair: np.ndarray) -> bool:
        """Start the motion of a pair (2, H, W) that windows still to come will look up,
        in this cache's one background thread; ``lookup`` then waits for it instead of
        computing it. For a model on a GPU, whose flow runs on the CPU meanwhile (on a
        CPU the cores are the model's: nothing to overlap). Returns whether it started."""
        pair = np.ascontiguousarray(pair, dtype=np.float32)
        digest = _digest(pair)
        with self._lock:
            if digest in self._items or digest in self._pending:
                return False
            if self._ahead is None:
                self._ahead = ThreadPoolExecutor(1, thread_name_prefix="xfusion-flow-ahead")
            self._pending[digest] = self._ahead.submit(pair_motion, pair[0], pair[1])
            return True

    def close(self) -> None:
        """Stop the background thread (motions not started are dropped). Idempotent."""
        with self._lock:
            ahead, self._ahead = self._ahead, None
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.cancel()
        if ahead is not None:
            ahead.shutdown(wait=True, cancel_futures=True)

    def _lookup_array(self, pair: np.ndarray) -> tuple[PairMotion, bytes]:
        digest = _digest(pair)
        with self._lock:
            hit = self._items.get(digest)
            if hit is not None:
                self.hits += 1
                self._items.move_to_end(digest)
                return hit, digest
            self.misses += 1
            started = self._pending.pop(digest, None)
        result = pair_motion(pair[0], pair[1]) if started is None else started.result()
        with self._lock:
            self._items[digest] = result
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return result, digest

    def _views_of(self, digest: bytes) -> TauViews:
        if self._views[0] != digest:
            self._views = (digest, TauViews())
        return self._views[1]


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: out(y, x) = image(y + flow_y, x + flow_x), bilinear, edges repeated.

    image (N, C, H, W), flow (N, 2, H, W) in pixels with channel 0 = x, 1 = y; grid_sample
    with ``align_corners=True`` (pixel centres at -1 and 1) and border padding. The one
    warp of the package: the HR motion here and the calibration flow net both use it.
    """
    n, _, h, w = image.shape
    ys = torch.arange(h, dtype=image.dtype, device=image.device).view(1, h, 1)
    xs = torch.arange(w, dtype=image.dtype, device=image.device).view(1, 1, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def interpolation_flows(
    f01: torch.Tensor, f10: torch.Tensor, tau: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows from time ``tau`` back to frame 0 and to frame 1 (Super SloMo's approximation).

    f01, f10 (B, 2, H, W); tau (B,) -> (F_t0, F_t1), each (B, 2, H, W).
    """
    t = tau.view(-1, 1, 1, 1).to(f01.dtype)
    ft0 = -(1 - t) * t * f01 + t * t * f10
    ft1 = (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
    return ft0, ft1


def _check_window(hr_frames: torch.Tensor, lr_centre: torch.Tensor) -> None:
    if hr_frames.ndim != 5 or hr_frames.shape[1:3] != (2, 1):
        raise ValueError(f"hr_frames must be (B,2,1,H,W), got {tuple(hr_frames.shape)}")
    b, _, _, h, _ = hr_frames.shape
    if lr_centre.shape[0] != b or lr_centre.shape[1] != 1 or h % lr_centre.shape[2]:
        raise ValueError(
            f"lr_centre must be (B,1,h,w) on a divisor grid of {tuple(hr_frames.shape)}, "
            f"got {tuple(lr_centre.shape)}"
        )


@torch.no_grad()
def phantom_at_t(
    hr_frames: torch.Tensor,
    lr_centre: torch.Tensor,
    *,
    tau: torch.Tensor | None = None,
    cache: PhantomMotionCache | None = None,
) -> PhantomAtT:
    """Warp the Phantom frames of each window to the time of its Shimadzu frame t.

    hr_frames (B, 2, 1, H, W): Phantom frames before/after t, registered to the Shimadzu
    grid x4; lr_centre (B, 1, h, w): Shimadzu frame t. ``tau`` (B,) skips the search
    when the time fraction is known. ``cache`` reuses the flow of a pair seen before
    (None: computed afresh; the result is the same). Returns the warped frames (in
    ``hr_frames``' dtype) and the fraction used. Everything runs in float32 whatever the
    model's precision (inside a bf16/fp16 autocast too): the correlation that picks
    ``tau`` and sub-pixel warps are too coarse in 16 bits.
    """
    _check_window(hr_frames, lr_centre)
    with torch.autocast(hr_frames.device.type, enabled=False):
        return _at_t(hr_frames, lr_centre, tau, cache)


def _at_t(
    hr_frames: torch.Tensor,
    lr_centre: torch.Tensor,
    tau: torch.Tensor | None,
    cache: PhantomMotionCache | None,
) -> PhantomAtT:
    b = hr_frames.shape[0]
    dtype = hr_frames.dtype
    hr, lr_centre = hr_frames.detach().float(), lr_centre.detach().float()
    looked_up = [
        cache.lookup(hr[i, :, 0])
        if cache is not None
        else (pair_motion(*hr[i, :, 0].cpu().numpy()), None)
        for i in range(b)
    ]
    f01, f10, e0, e1 = (_batched([m[k] for m, _ in looked_up]).to(hr.device) for k in range(4))
    if tau is None:
        # window by window, so a view computed here equals one from the memo bit for bit
        tau = torch.stack(
            [
                search_tau(hr[i, :, 0], f01[i], f10[i], lr_centre[i], memo)
                for i, (_, memo) in enumerate(looked_up)
            ]
        )
    else:
        tau = tau.to(hr.device, torch.float32).reshape(b)
    ft0, ft1 = interpolation_flows(f01, f10, tau)
    # each frame and its round-trip error share a flow: one grid, two channels sampled
    before, before_error = warp(torch.cat((hr[:, 0], e0), 1), ft0).to(dtype).split(1, 1)
    after, after_error = warp(torch.cat((hr[:, 1], e1), 1), ft1).to(dtype).split(1, 1)
    return PhantomAtT(before, after, tau, before_error, after_error)


def _batched(arrays: list[np.ndarray]) -> torch.Tensor:
    """(B, ...) of B cached arrays; one window's is a view of the cache, not a copy (read
    only here: nothing downstream writes into it)."""
    if len(arrays) == 1:
        return torch.from_numpy(arrays[0])[None]
    return torch.from_numpy(np.stack(arrays))


def _round_trip_error(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """|forward(x) + backward(x + forward(x))| per pixel (B, 1, H, W): 0 where the two flows
    agree, the size of the disagreement (px) where the match failed or was occluded."""
    return (forward + warp(backward, forward)).norm(dim=1, keepdim=True)
