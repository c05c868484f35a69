"""Write a simulated experiment + grid calibration as recorded-experiment folders.

The output is what a beamline would hand over after a run (one case per recording, in
the original's "actual" layout), plus what only a simulation can give: the ground truth
at every Shimadzu frame time and the exact geometry and timing, in ``truth.json``, and
where fast events change the scene (one mask per Shimadzu frame, ``truth/event_masks.npz``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..core import ConfigError
from ._scene import Scene, SceneConfig

__all__ = ["write_simulation", "read_event_masks", "preview_figure", "TRUTH_FORMAT"]

TRUTH_FORMAT = "xfusion-simulation-truth/1"


def _frames(render, n: int, desc: str, progress: bool) -> Iterator[np.ndarray]:
    from tqdm import tqdm

    for i in tqdm(range(n), desc=desc, unit="frame", disable=not progress, leave=False):
        yield render(i)


def _write_scene_case(case_dir: Path, scene: Scene, progress: bool) -> dict:
    """One recorded case from ``scene``; returns what the reader sees in it."""
    from ..recorded import read_case, write_case

    name = case_dir.name
    write_case(
        case_dir,
        phantom_frames=_frames(scene.phantom_frame, scene.n_phantom, f"{name} phantom", progress),
        phantom_frame_numbers=scene.phantom_frame_numbers(),
        phantom_times_ns=scene.phantom_times_ns(),
        phantom_e_flags=scene.phantom_e_flags(),
        phantom_frame_rate_hz=scene.phantom_frame_rate_hz,
        shimadzu_frames=_frames(
            scene.shimadzu_frame, scene.n_shimadzu, f"{name} shimadzu", progress
        ),
        shimadzu_times_ns=scene.shimadzu_times_ns(),
        shimadzu_frame_ns=scene.config.shimadzu_frame_ns,
    )
    case = read_case(case_dir)  # proves the folder is valid and gives the recorded times
    return {
        "path": case_dir.name,
        "phantom_xml": str(case.phantom_xml.relative_to(case_dir.parent)),
        "shimadzu_ini": str(case.shimadzu_ini.relative_to(case_dir.parent)),
        "n_phantom": case.phantom.n_frames,
        "n_shimadzu": case.shimadzu.n_frames,
        "recorded_phantom_times_ns": case.phantom.times_ns.astype(np.int64).tolist(),
        "scene": scene.describe(),
    }


def _write_truth_stack(path: Path, gif: Path, scene: Scene, progress: bool) -> None:
    """The uint16 truth stack, and a GIF of about 32 of its frames to watch the motion."""
    import tifffile
    from PIL import Image

    every = max(1, scene.n_shimadzu // 32)
    movie = []
    with tifffile.TiffWriter(path) as tif:
        for k in _frames(lambda k: k, scene.n_shimadzu, "ground truth", progress):
            frame = scene.truth_counts(scene.shimadzu_times_ns()[k])
            tif.write(frame, contiguous=True)
            if k % every == 0:
                movie.append(frame)
    stack = np.stack(movie).astype(np.float64)
    lo, hi = np.percentile(stack, [0.5, 99.5])
    frames8 = np.clip((stack - lo) / max(hi - lo, 1.0) * 255, 0, 255).astype(np.uint8)
    shrink = max(1, -(-frames8.shape[2] // 480))  # keep the GIF small at full sensor size
    images = [Image.fromarray(f[::shrink, ::shrink]) for f in frames8]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=80, loop=0)


def _write_event_masks(path: Path, scene: Scene) -> dict:
    """One fast-event mask per Shimadzu frame, bits packed along the columns."""
    packed, with_events, area = [], 0, 0
    for k in range(scene.n_shimadzu):
        mask = scene.shimadzu_event_mask(k)
        packed.append(np.packbits(mask, axis=-1))  # 1 bit a pixel even at full sensor size
        with_events += bool(mask.any())
        area += int(mask.sum())
    shape = (scene.n_shimadzu, *scene.phantom_shape)
    np.savez_compressed(path, masks=np.stack(packed), shape=np.array(shape))
    return {
        "shape": list(shape),
        "packing": "numpy.packbits along the last axis; read_event_masks unpacks",
        "times": "experiment.scene.shimadzu_times_ns (one mask per Shimadzu frame)",
        "meaning": "footprint at the frame and at both bracketing Phantom frames, dilated 2 px",
        "frames_with_events": with_events,
        "mean_fraction": area / float(np.prod(shape)),
    }


def read_event_masks(path: str | Path) -> np.ndarray:
    """The bool (frames, rows, cols) fast-event masks ``write_simulation`` wrote."""
    with np.load(path) as data:
        shape = tuple(int(n) for n in data["shape"])
        return np.unpackbits(data["masks"], axis=-1, count=shape[-1]).astype(bool)


def _write_preview(path: Path, scene: Scene, k: int) -> None:
    """Truth | Phantom frame nearest in time | Shimadzu upsampled, one PNG to look at."""
    fig = preview_figure(scene, k)
    fig.savefig(path)


def preview_figure(scene: Scene, k: int):
    """The preview as a titled matplotlib ``Figure`` (object API): the three views of
    Shimadzu instant ``k`` on one grey scale (counts), axes in Phantom pixels."""
    import cv2
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = scene.shimadzu_times_ns()[k]
    truth = scene.truth_counts(t)
    i = int(np.argmin(np.abs(scene.phantom_times_ns() - t)))
    phantom = scene.phantom_frame(i)
    rows, cols = scene.phantom_shape
    raw = scene.shimadzu_frame(k)
    shimadzu = cv2.resize(raw, (cols, rows), interpolation=cv2.INTER_NEAREST)
    dt_us = (scene.phantom_times_ns()[i] - t) / 1e3
    views = [
        (truth, f"truth: noise-free scene\nat Shimadzu frame {k} (t = {t / 1e3:.1f} us)"),
        (
            phantom,
            f"Phantom frame {i}\n(nearest in time, dt = {dt_us:+.1f} us)",
        ),
        (
            shimadzu,
            f"Shimadzu frame {k}\n(nearest-neighbour x{rows // raw.shape[0]})",
        ),
    ]
    lo, hi = np.percentile(np.hstack([v for v, _ in views]).astype(np.float64), [0.5, 99.5])
    fig = Figure(figsize=(12, 12 / 3 * rows / cols + 1.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (image, title) in zip(axes, views):
        shown = ax.imshow(image, cmap="gray", vmin=lo, vmax=max(hi, lo + 1.0))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("column (Phantom px)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("row (Phantom px)", fontsize=8)
    bar = fig.colorbar(shown, ax=list(axes), fraction=0.02, pad=0.01)
    bar.set_label("counts", fontsize=8)
    fig.suptitle("simulated truth and what each camera records", fontsize=10)
    return fig


def write_simulation(
    out_dir: str | Path,
    config: SceneConfig | None = None,
    *,
    experiment_name: str = "sim_experiment",
    calibration_name: str = "sim_calibration_grid",
    progress: bool = True,
) -> dict:
    """Write ``out_dir/<experiment>/``, ``out_dir/<calibration>/`` and ``out_dir/truth.json``.

    The calibration case is the same cameras, geometry and timing looking at a static
    G400 grid (seed + 1 for independent noise). Ground truth: ``truth/ground_truth.tif``,
    a uint16 stack of noise-free counts (same scale as the cameras) at each Shimadzu time;
    ``truth/event_masks.npz``, the fast-event masks at the same times (all False without
    fast events; :func:`read_event_masks`).
    Returns the truth document (paths relative to ``out_dir``).
    """
    config = config or SceneConfig(shimadzu_shape=(64, 96))
    out = Path(out_dir)
    targets = [out / experiment_name, out / calibration_name, out / "truth.json"]
    for target in targets:
        if target.exists() and (target.is_file() or any(target.iterdir())):
            raise ConfigError(f"{target}: output already exists; choose an empty --out folder")
    (out / "truth").mkdir(parents=True, exist_ok=True)

    experiment = Scene(config)
    calibration = Scene(config.replace(content="grid", seed=config.seed + 1))
    doc: dict = {"format": TRUTH_FORMAT, "seed": config.seed}
    doc["experiment"] = _write_scene_case(out / experiment_name, experiment, progress)
    doc["calibration"] = _write_scene_case(out / calibration_name, calibration, progress)
    doc["calibration"]["grid_pitch_px"] = calibration.config.pitch_px
    truth_dir = out / "truth"
    _write_truth_stack(
        truth_dir / "ground_truth.tif", truth_dir / "truth.gif", experiment, progress
    )
    _write_preview(out / "truth" / "preview.png", experiment, experiment.n_shimadzu // 2)
    masks = _write_event_masks(truth_dir / "event_masks.npz", experiment)
    doc.update(
        transform=experiment.transform.to_dict(),
        transform_matrix=experiment.describe()["transform_matrix"],
        pixel_ratio=config.ratio,
        ground_truth={
            "file": "truth/ground_truth.tif",
            "shape": [experiment.n_shimadzu, *experiment.phantom_shape],
            "dtype": "uint16",
            "counts_at_intensity_1": 0.9 * 65535,
            "times": "experiment.scene.shimadzu_times_ns (one frame per Shimadzu frame)",
        },
        preview="truth/preview.png",
        movie="truth/truth.gif",
        event_masks={"file": "truth/event_masks.npz", **masks},
    )
    (out / "truth.json").write_text(json.dumps(doc, indent=1))
    return doc
