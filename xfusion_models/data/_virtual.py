"""Virtual dual-camera samples cut from single-camera clips.

A virtual experiment pretends one sequence was seen by both cameras: the LR folder
holds the x4-downsampled frames (the Shimadzu), the HR folder the full frames (the
Phantom). For a centre frame ``t`` the sample is LR ``t - i, t, t + i`` with ``i`` from
``intervals``, HR context ``t - k`` and ``t + k`` with ``k`` in ``1..max_context``
(the original's +-1 times a multiplier in 1..20), and ground truth HR ``t``.
``independent_context`` draws the two HR offsets separately, so the model also sees
the lopsided brackets of continuous traversal (an extension; off by default).

``hr_layout`` says where the HR context sits (an extension; ``symmetric`` is the
original and the default). ``bracket`` mimics the live continuous mode: the Phantom
records every ``bracket_period`` Shimadzu frames, so the frames around ``t`` are
``t - a`` and ``t - a + P`` with ``a`` uniform in ``0..P-1`` (``a = 0``: the Phantom
frame is the target itself). ``mixed`` draws ``bracket`` with probability
``p_bracket`` and the symmetric (or independent) sampling otherwise, which covers the
double-interval layout ``t +- P``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ._clips import ClipEntry, frame_paths, read_frame, read_meta_info
from ._degradations import augment, poisson_noise, random_crop

__all__ = ["SamplingConfig", "VirtualClipDataset", "bracket_context"]


class SamplingConfig(BaseModel):
    """How training samples are drawn and degraded; validation uses crop None."""

    model_config = ConfigDict(extra="forbid")

    scale: int = 4
    lr_crop: int | None = Field(32, ge=4, description="LR crop side; None = whole frame")
    intervals: list[int] = Field(default_factory=lambda: [1, 2, 3])
    max_context: int = Field(20, ge=1, description="largest HR context multiplier")
    independent_context: bool = False
    hr_layout: Literal["symmetric", "bracket", "mixed"] = "symmetric"
    bracket_period: int = Field(20, ge=1, description="Phantom period P in Shimadzu frames")
    p_bracket: float = Field(0.7, ge=0.0, le=1.0, description="bracket share for 'mixed'")
    bracket_min_offset: int = Field(
        0, ge=0, description="smallest a in a bracket; 1 keeps a Phantom frame off t itself"
    )
    noise_log10: tuple[float, float] | None = (1.0, 7.0)
    augment: bool = True


class VirtualClipDataset(torch.utils.data.Dataset):
    """Samples ``{'lq': (3,1,h,w), 'hq': (2,1,4h,4w), 'gt': (1,4h,4w), 'key': str}``.

    ``__getitem__`` draws its randomness from ``(seed, epoch, index)``; trainers that
    want exact resumption call :meth:`sample` with their own generator.
    """

    def __init__(
        self,
        lr_root: str | Path,
        hr_root: str | Path,
        meta_info_file: str | Path,
        config: SamplingConfig | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.config = config or SamplingConfig()
        self.lr_root, self.hr_root = Path(lr_root), Path(hr_root)
        self.seed = seed
        self.epoch = 0
        self.clips: list[ClipEntry] = read_meta_info(meta_info_file)
        self._lr_files: dict[str, list[Path]] = {}
        self._hr_files: dict[str, list[Path]] = {}
        for clip in self.clips:
            self._check_clip(clip, meta_info_file)
        self.keys = [(c.folder, i) for c in self.clips for i in range(c.nframes)]

    def _check_clip(self, clip: ClipEntry, meta_info_file: str | Path) -> None:
        lr, hr = frame_paths(self.lr_root / clip.folder), frame_paths(self.hr_root / clip.folder)
        need = 3
        if min(len(lr), len(hr)) < clip.nframes or clip.nframes < need:
            raise ValueError(
                f"{meta_info_file}: clip {clip.folder!r} lists {clip.nframes} frames, "
                f"folders hold LR {len(lr)} / HR {len(hr)} (at least {need} needed)"
            )
        self._lr_files[clip.folder] = lr[: clip.nframes]
        self._hr_files[clip.folder] = hr[: clip.nframes]

    def __len__(self) -> int:
        return len(self.keys)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, np.random.default_rng([self.seed, self.epoch, index]))

    def pick_frames(
        self, index: int, rng: np.random.Generator
    ) -> tuple[str, list[int], list[int], int]:
        """(clip, LR frame indices, HR context indices, ground-truth index) for a key."""
        cfg = self.config
        folder, frame = self.keys[index]
        n = len(self._hr_files[folder])
        interval = int(rng.choice(cfg.intervals))
        interval = min(interval, (n - 1) // 2)
        reach = max(interval, 1)
        centre = int(np.clip(frame, reach, n - 1 - reach))
        layout = cfg.hr_layout
        if layout == "mixed":
            layout = "bracket" if rng.random() < cfg.p_bracket else "symmetric"
        if layout == "bracket":
            hr_idx = bracket_context(
                centre, n, cfg.bracket_period, rng, min_offset=cfg.bracket_min_offset
            )
        else:
            hr_idx = self._symmetric_context(centre, n, rng)
        lr_idx = [centre - interval, centre, centre + interval]
        return folder, lr_idx, hr_idx, centre

    def _symmetric_context(self, centre: int, n: int, rng: np.random.Generator) -> list[int]:
        """The original's ``centre +- k`` (or independent offsets before and after)."""
        cfg = self.config
        room_before, room_after = centre, n - 1 - centre
        if cfg.independent_context:
            before = int(rng.integers(1, min(cfg.max_context, room_before) + 1))
            after = int(rng.integers(1, min(cfg.max_context, room_after) + 1))
        else:
            reach_both = min(cfg.max_context, room_before, room_after)
            before = after = int(rng.integers(1, reach_both + 1))
        return [centre - before, centre + after]

    def sample(self, index: int, rng: np.random.Generator) -> dict:
        cfg = self.config
        folder, lr_idx, hr_idx, centre = self.pick_frames(index, rng)
        lr = np.stack([read_frame(self._lr_files[folder][i]) for i in lr_idx])
        hr = np.stack([read_frame(self._hr_files[folder][i]) for i in hr_idx])
        gt = read_frame(self._hr_files[folder][centre])[None]
        return finish_sample(lr, hr, gt, cfg, rng, key=f"{folder}/{centre:08d}")


def bracket_context(
    centre: int, n: int, period: int, rng: np.random.Generator, *, min_offset: int = 0
) -> list[int]:
    """Phantom frames ``[centre - a, centre - a + P]`` bracketing ``centre``, ``0 <= a < P``.

    ``a`` is uniform over the values that keep both frames inside a clip of ``n``
    frames; a clip shorter than ``P + 1`` frames uses ``P = n - 1``. Needs
    ``0 <= centre <= n - 2``. ``min_offset`` 1 never puts a Phantom frame at ``centre``
    (where it would equal the target: a shortcut a model that sees raw HR frames learns).
    """
    if not 0 <= centre <= n - 2:
        raise ValueError(f"centre {centre} leaves no room for an HR frame after it (n={n})")
    p = min(period, n - 1)
    low, high = max(min_offset, centre + p - (n - 1)), min(p - 1, centre)
    if low > high:
        raise ValueError(f"no bracket offset >= {min_offset} fits centre {centre} (n={n})")
    a = int(rng.integers(low, high + 1))
    return [centre - a, centre - a + p]


def finish_sample(
    lr: np.ndarray,
    hr: np.ndarray,
    gt: np.ndarray,
    cfg: SamplingConfig,
    rng: np.random.Generator,
    *,
    key: str,
) -> dict:
    """Check geometry, crop, noise, augment and convert to the model's tensor layout."""
    s = cfg.scale
    if (
        hr.shape[-2:] != gt.shape[-2:]
        or hr.shape[-2] != lr.shape[-2] * s
        or (hr.shape[-1] != lr.shape[-1] * s)
    ):
        raise ValueError(
            f"{key}: HR frames {hr.shape[-2:]} are not {s}x the LR frames {lr.shape[-2:]}"
        )
    if cfg.lr_crop is not None:
        lr, (hr, gt) = random_crop(lr, [hr, gt], cfg.lr_crop, s, rng)
    if cfg.noise_log10 is not None:
        lr = poisson_noise(lr, cfg.noise_log10, rng)
    if cfg.augment:
        lr, hr, gt = augment([lr, hr, gt], rng)
    return {
        "lq": torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)).unsqueeze(1),
        "hq": torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)).unsqueeze(1),
        "gt": torch.from_numpy(np.ascontiguousarray(gt, dtype=np.float32)),
        "key": key,
    }
