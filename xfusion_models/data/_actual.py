"""Actual dual-camera samples: registered Phantom/Shimadzu pairs plus the full LR run.

Inputs (all REDS layout, already spatially registered and cropped):

* ``hr_root/<clip>/``: Phantom frames that had a Shimadzu partner (paired HR);
* ``lr_root/<clip>/``: the partner Shimadzu frames, same order (paired LR);
* ``context_root/<clip>/``: every Shimadzu frame of the run (LR context);
* the index map CSV with header ``clip,hr_index,lr_index``: paired frame ``hr_index``
  of ``<clip>`` was matched to context frame ``lr_index``.

For the i-th pair the sample is the double-interval layout of the original: HR
context = pairs i-1 and i+1, ground truth = Phantom frame of pair i, LR = the paired
Shimadzu frame with its context neighbours ``lr_index +- 1`` (clamped).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ._clips import frame_paths, read_frame, read_meta_info
from ._virtual import SamplingConfig, finish_sample

__all__ = ["ActualPairDataset", "read_index_map"]

_COLUMNS = ("clip", "hr_index", "lr_index")


def read_index_map(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """``clip -> [(hr_index, lr_index), ...]`` sorted by ``hr_index``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: context index map not found")
    table: dict[str, list[tuple[int, int]]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or tuple(reader.fieldnames[:3]) != _COLUMNS:
            raise ValueError(f"{path}: header must start with {','.join(_COLUMNS)}")
        for number, row in enumerate(reader, start=2):
            try:
                pair = (int(row["hr_index"]), int(row["lr_index"]))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: line {number}: indices must be integers") from exc
            table.setdefault(row["clip"], []).append(pair)
    for pairs in table.values():
        pairs.sort()
    return table


class ActualPairDataset(torch.utils.data.Dataset):
    """Samples in the same layout as :class:`VirtualClipDataset`, from recorded pairs."""

    def __init__(
        self,
        lr_root: str | Path,
        hr_root: str | Path,
        meta_info_file: str | Path,
        context_root: str | Path,
        index_map_file: str | Path,
        config: SamplingConfig | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.config = config or SamplingConfig(noise_log10=None)
        self.seed, self.epoch = seed, 0
        index_map = read_index_map(index_map_file)
        self._files: dict[str, tuple[list[Path], list[Path], list[Path]]] = {}
        self.keys: list[tuple[str, int]] = []
        for clip in read_meta_info(meta_info_file):
            pairs = index_map.get(clip.folder)
            if pairs is None or len(pairs) < 3:
                raise ValueError(f"{index_map_file}: clip {clip.folder!r} needs at least 3 pairs")
            hr = frame_paths(Path(hr_root) / clip.folder)
            lr = frame_paths(Path(lr_root) / clip.folder)
            ctx = frame_paths(Path(context_root) / clip.folder)
            for hr_i, lr_i in pairs:
                if hr_i >= min(len(hr), len(lr)) or lr_i >= len(ctx):
                    raise ValueError(
                        f"{index_map_file}: clip {clip.folder!r} pair ({hr_i}, {lr_i}) "
                        f"is past the frames on disk"
                    )
            self._files[clip.folder] = (hr, lr, ctx)
            self.keys += [(clip.folder, i) for i in range(1, len(pairs) - 1)]
        self._pairs = index_map

    def __len__(self) -> int:
        return len(self.keys)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, np.random.default_rng([self.seed, self.epoch, index]))

    def sample(self, index: int, rng: np.random.Generator) -> dict:
        folder, i = self.keys[index]
        hr_files, lr_files, ctx_files = self._files[folder]
        pairs = self._pairs[folder]
        hr_i, lr_i = pairs[i]
        last = len(ctx_files) - 1
        lr = np.stack(
            [
                read_frame(ctx_files[max(lr_i - 1, 0)]),
                read_frame(lr_files[hr_i]),
                read_frame(ctx_files[min(lr_i + 1, last)]),
            ]
        )
        hr = np.stack(
            [read_frame(hr_files[pairs[i - 1][0]]), read_frame(hr_files[pairs[i + 1][0]])]
        )
        gt = read_frame(hr_files[hr_i])[None]
        return finish_sample(lr, hr, gt, self.config, rng, key=f"{folder}/{hr_i:08d}")
