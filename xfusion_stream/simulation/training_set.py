"""Training and validation clips rendered from the scene engine (virtual experiments).

Each clip is one seeded :class:`~xfusion_stream.simulation.Scene` sampled at every
Shimadzu frame time: HR = the noise-free ground truth on the Phantom grid, LR = its
``ratio x ratio`` area average (the Shimadzu's pixel integration, perfectly
registered). Shot noise is left to the dataset, which draws it per sample. Clip ``i``
of a set with base seed ``S`` uses scene seed ``S * 1000 + i`` (validation clips
``S * 1000 + 500 + i``), so two sets with different base seeds share no scene.
``--fast-events`` adds events faster than the Phantom samples (spatter, keyholes, ...;
see ``simulation.FastEvents``), recorded with the rest of the spec in the set's JSON.

Run ``python -m xfusion_stream.simulation.training_set --out DIR --seed S --clips N``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..core import ConfigModel
from ._fast_events import FAST_EVENTS_HELP, FastEvents, fast_events_argument
from ._sample_images import Textures

if TYPE_CHECKING:
    from ._scene import Scene

__all__ = [
    "TrainingSetSpec",
    "build_training_set",
    "clip_scene",
    "clip_seed",
    "main",
    "render_clip",
]

VAL_OFFSET = 500


class TrainingSetSpec(ConfigModel):
    """What to render; speeds are drawn per clip from the ranges (Phantom px / frame).

    At most ``VAL_OFFSET`` clips per split, so the two splits' scene seeds never meet.
    """

    seed: int = 1
    clips: int = Field(default=24, ge=0, le=VAL_OFFSET)
    val_clips: int = Field(default=2, ge=0, le=VAL_OFFSET)
    frames: int = Field(default=48, ge=3)
    shimadzu_shape: tuple[int, int] = (64, 64)
    ratio: int = Field(default=4, ge=1)
    phantom_every: int = Field(default=20, ge=1)
    motion_px: tuple[float, float] = (2.0, 6.0)
    feature_px: tuple[float, float] = (4.0, 12.0)
    bits: int = 16
    fast_events: FastEvents | None = None
    textures: Textures = "training"

    @field_validator("motion_px", "feature_px")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError(f"must be a range 0 <= lo <= hi, got {value}")
        return value

    @model_validator(mode="after")
    def _some_clips(self) -> TrainingSetSpec:
        if self.clips + self.val_clips == 0:
            raise ValueError("training set needs at least one clip")
        return self


def clip_seed(base_seed: int, index: int, *, validation: bool = False) -> int:
    """Scene seed of clip ``index``; disjoint between base seeds and between splits."""
    return base_seed * 1000 + (VAL_OFFSET if validation else 0) + index


def clip_scene(spec: TrainingSetSpec, seed: int) -> Scene:
    """The scene clip ``seed`` is rendered from (for its truth masks, its events)."""
    from . import Scene, SceneConfig

    rng = np.random.default_rng([seed, 77])
    config = SceneConfig(
        seed=seed,
        shimadzu_shape=(int(spec.shimadzu_shape[0]), int(spec.shimadzu_shape[1])),
        ratio=spec.ratio,
        n_shimadzu=spec.frames,
        phantom_every=spec.phantom_every,
        motion_px_per_phantom_frame=float(rng.uniform(*spec.motion_px)),
        feature_px_per_phantom_frame=float(rng.uniform(*spec.feature_px)),
        fast_events=spec.fast_events,
        textures=spec.textures,
    )
    return Scene(config)


def area_downsample(image: np.ndarray, ratio: int) -> np.ndarray:
    """Mean over ``ratio x ratio`` blocks: what one Shimadzu pixel integrates."""
    rows, cols = image.shape[0] // ratio, image.shape[1] // ratio
    block = image[: rows * ratio, : cols * ratio].astype(np.float64)
    return block.reshape(rows, ratio, cols, ratio).mean(axis=(1, 3)).astype(np.float32)


def render_clip(spec: TrainingSetSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(HR (frames, H, W), LR (frames, H/ratio, W/ratio)) float32 of one scene seed."""
    scene = clip_scene(spec, seed)
    times = scene.shimadzu_times_ns()
    hr = np.stack([scene.truth(float(t)) for t in times])
    lr = np.stack([area_downsample(f, spec.ratio) for f in hr])
    return hr, lr


def _write_split(spec: TrainingSetSpec, root: Path, n: int, validation: bool, bar) -> list:
    from xfusion_models.data import FRAME_PATTERN, ClipEntry, write_frame, write_meta_info

    entries: list = []
    seeds: list[int] = []
    if n == 0:  # an empty split gets no folder (a meta-info file must list clips)
        return seeds
    for i in range(n):
        seed = clip_seed(spec.seed, i, validation=validation)
        hr, lr = render_clip(spec, seed)
        name = f"{i:03d}"
        for sub, frames in (("hr", hr), ("lr", lr)):
            folder = root / sub / name
            folder.mkdir(parents=True, exist_ok=True)
            for k, frame in enumerate(frames):
                write_frame(folder / FRAME_PATTERN.format(k), frame, bits=spec.bits)
        entries.append(ClipEntry(name, len(hr), (hr.shape[1], hr.shape[2], 1)))
        seeds.append(seed)
        bar.update(1)
    write_meta_info(root / "meta_info.txt", entries)
    return seeds


def build_training_set(
    out: str | Path, spec: TrainingSetSpec | None = None, *, progress: bool = True
) -> dict:
    """Render ``train/`` and ``val/`` (each ``hr/``, ``lr/``, ``meta_info.txt``) under ``out``."""
    from tqdm import tqdm

    spec = spec or TrainingSetSpec()
    out = Path(out)
    with tqdm(total=spec.clips + spec.val_clips, desc="clips", disable=not progress) as bar:
        train_seeds = _write_split(spec, out / "train", spec.clips, False, bar)
        val_seeds = _write_split(spec, out / "val", spec.val_clips, True, bar)
    record = {
        "spec": spec.model_dump(mode="json"),
        "train_scene_seeds": train_seeds,
        "val_scene_seeds": val_seeds,
        "layout": "REDS: <split>/<hr|lr>/<clip>/<frame:08d>.png + <split>/meta_info.txt",
    }
    (out / "training_set.json").write_text(json.dumps(record, indent=1))
    return {"out": str(out), **record}


def main(argv: list[str] | None = None) -> int:
    defaults = TrainingSetSpec()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="base seed (scene seed = S*1000+i)"
    )
    parser.add_argument("--clips", type=int, default=defaults.clips, help="training clips")
    parser.add_argument(
        "--val-clips", type=int, default=defaults.val_clips, help="validation clips"
    )
    parser.add_argument(
        "--frames", type=int, default=defaults.frames, help="Shimadzu frames per clip"
    )
    parser.add_argument(
        "--shape", type=int, nargs=2, default=defaults.shimadzu_shape, help="Shimadzu rows cols"
    )
    parser.add_argument(
        "--motion-px", type=float, nargs=2, default=defaults.motion_px,
        metavar=("LO", "HI"), help="sample speed range, px per Phantom frame",
    )  # fmt: skip
    parser.add_argument(
        "--feature-px", type=float, nargs=2, default=defaults.feature_px,
        metavar=("LO", "HI"), help="droplet/jet speed range, px per Phantom frame",
    )  # fmt: skip
    parser.add_argument(
        "--fast-events", type=fast_events_argument, default=None, metavar="SPEC",
        help=FAST_EVENTS_HELP,
    )  # fmt: skip
    parser.add_argument(
        "--quiet", "--no-progress", dest="quiet", action="store_true",
        help="no progress bar (it goes to stderr; the JSON result to stdout)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    spec = TrainingSetSpec(
        seed=args.seed,
        clips=args.clips,
        val_clips=args.val_clips,
        frames=args.frames,
        shimadzu_shape=(args.shape[0], args.shape[1]),
        motion_px=(args.motion_px[0], args.motion_px[1]),
        feature_px=(args.feature_px[0], args.feature_px[1]),
        fast_events=args.fast_events,
    )
    result = build_training_set(args.out, spec, progress=not args.quiet)
    print(json.dumps({k: v for k, v in result.items() if k != "train_scene_seeds"}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
