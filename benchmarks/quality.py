"""Fusion quality on a held-out virtual test set: shipped model vs bicubic vs nearest frame.

One command, JSON out::

    python benchmarks/quality.py [--weights NAME_OR_PATH] [--seed 7] [--png out.png]
    python benchmarks/quality.py --scenario fast [--fast-events mixed]
    python benchmarks/quality.py --scenario between [--change flicker|plume|shake|offset]

Test clips come from the scene engine at its default speeds (``--motion-px``,
``--feature-px`` change them for stress tests) with base seed ``--seed``
(scene seeds ``seed*1000 + i``), which must differ from the training set's base seed
recorded in the weights' recipe. Metrics are the original's, on 8 bit, scored by the
same function as the fused events' (``xfusion_stream.fusion.score_against_truth``).

``--scenario smooth`` (default): motion smooth between Phantom frames, both layouts.
``--scenario fast``: the same scenes plus events faster than the Phantom samples
(``--fast-events``), continuous layout, every Shimadzu frame scored, also inside the
events' truth masks and against the Shimadzu frame itself (see ``_fast_quality.py``).
``--scenario between``: the same scenes, changed between Phantom frames in ways neither
Phantom frame shows (``--change flicker|plume|shake``, ``--amplitude``; ``offset`` is a
control, a calibration residual; see ``_between_phantom.py``).
Progress goes to stderr, the JSON to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", help="registry name, entry JSON or .pth (default: shipped)")
    p.add_argument("--seed", type=int, default=7, help="test-set base seed")
    p.add_argument("--scenario", choices=("smooth", "fast", "between"), default="smooth")
    p.add_argument("--change", choices=("flicker", "plume", "shake", "offset"), default="flicker")
    p.add_argument(
        "--amplitude",
        type=float,
        help="between: how much changes (flicker 0.2, plume 0.4 of the light; shake 2 px; "
        "offset 0.5 px)",
    )
    p.add_argument("--clips", type=int, help="test clips (default: 3 smooth, 2 fast)")
    p.add_argument("--frames", type=int, default=61, help="Shimadzu frames per clip")
    p.add_argument("--shape", type=int, nargs=2, default=(64, 64), help="Shimadzu rows cols")
    p.add_argument("--phantom-every", type=int, default=20)
    p.add_argument("--photons", type=float, default=1000.0, help="Shimadzu b0; 0 = no noise")
    p.add_argument("--stride", type=int, help="score every n-th frame (default 3; fast: always 1)")
    p.add_argument(
        "--fast-events", default="mixed", help="fast scenario: a preset or KIND=N,... (mixed)"
    )
    p.add_argument(
        "--textures",
        choices=("training", "held_out"),
        default="training",
        help="sample photographs: those training used (other seeds) or ones it never saw",
    )
    p.add_argument(
        "--motion-px", type=float, default=4.0, help="sample speed, px per Phantom frame"
    )
    p.add_argument(
        "--feature-px", type=float, default=8.0, help="droplet/jet speed, px per Phantom frame"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--png", type=Path, help="write a truth/model/bicubic/nearest panel")
    return p.parse_args(argv)


def _model(weights: str | None):
    import xfusion_models

    entry = xfusion_models.default_weights() if weights is None else None
    source = entry if entry is not None else weights
    if source is None:
        raise SystemExit("no default weights registered; pass --weights")
    model = xfusion_models.build_model(source)
    info = {"weights": entry.name if entry else str(weights)}
    if entry is not None:
        info |= {"sha256": entry.sha256, "preset": entry.preset}
        trained_on = entry.recipe.get("training_set", {}).get("seed")
        info["training_set_seed"] = trained_on
    return model, info


def _panel(path: Path, window, model) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from xfusion_models.training import bicubic_x4

    with torch.no_grad():
        lq = torch.from_numpy(window.lq)[None, :, None]
        hq = torch.from_numpy(window.hq)[None, :, None]
        fused = model(lq, hq)[0, 0].clamp(0, 1).numpy()
    nearer = 0 if window.t - window.before <= window.after - window.t else 1
    images = {
        "truth": window.truth,
        "model": fused,
        "bicubic": bicubic_x4(window.lq[1]),
        "nearest Phantom": window.hq[nearer],
    }
    fig, axes = plt.subplots(2, 4, figsize=(14, 7))
    for col, (title, image) in enumerate(images.items()):
        axes[0, col].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[0, col].set_title(title)
        if col:
            axes[1, col].imshow(np.abs(image - window.truth), cmap="magma", vmin=0, vmax=0.1)
            axes[1, col].set_title(f"|{title} - truth| (0..0.1)")
    axes[1, 0].imshow(window.lq[1], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[1, 0].set_title("Shimadzu frame t (noisy LR)")
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"Shimadzu frame {window.t}, Phantom {window.before}/{window.after}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


#: JSON name of each method -> what the fused events' scorer calls it.
_METHODS = {"model": "fused", "bicubic": "bicubic", "nearest_phantom": "nearest"}


def _score_windows(model, windows, batch: int = 4) -> dict[str, list[dict[str, float]]]:
    """Per-window psnr/ssim/aad of the model and both baselines (nearer Phantom: before on
    a tie), batched forward on the model's plain (non-streaming) path."""
    from _fast_quality import predict

    from xfusion_stream.fusion import by_candidate, score_against_truth

    preds = predict(model, windows, batch)
    out: dict[str, list[dict[str, float]]] = {method: [] for method in _METHODS}
    for pred, w in zip(preds, windows):
        nearer = 0 if w.t - w.before <= w.after - w.t else 1
        scores = by_candidate(score_against_truth(pred, w.truth, w.lq[1], w.hq, nearer))
        for method, candidate in _METHODS.items():
            out[method].append(scores[candidate])
    return out


def _by_distance(windows, scores) -> dict[str, dict[str, float]]:
    """Mean PSNR per distance (Shimadzu frames) to the nearer Phantom frame."""
    groups: dict[int, list[int]] = {}
    for i, w in enumerate(windows):
        groups.setdefault(min(w.t - w.before, w.after - w.t), []).append(i)
    return {
        str(d): {m: round(float(np.mean([scores[m][i]["psnr"] for i in idx])), 2) for m in scores}
        for d, idx in sorted(groups.items())
    }


def _spec(args: argparse.Namespace, fast_events=None):
    """The test set: one speed each (training drew them from ranges), the engine's defaults."""
    from xfusion_stream.simulation.training_set import TrainingSetSpec

    return TrainingSetSpec(
        seed=args.seed,
        clips=args.clips,
        val_clips=0,
        frames=args.frames,
        shimadzu_shape=tuple(args.shape),
        phantom_every=args.phantom_every,
        motion_px=(args.motion_px, args.motion_px),
        feature_px=(args.feature_px, args.feature_px),
        fast_events=fast_events,
        textures=args.textures,
    )


def _test_set(args: argparse.Namespace, seeds: list[int], photons: float | None) -> dict:
    return {
        "base_seed": args.seed,
        "scene_seeds": seeds,
        "frames": args.frames,
        "shimadzu_shape": list(args.shape),
        "phantom_every": args.phantom_every,
        "photons": photons,
        "stride": args.stride,
        "motion_px_per_phantom_frame": args.motion_px,
        "feature_px_per_phantom_frame": args.feature_px,
        "textures": args.textures,
    }


def _fast(args: argparse.Namespace, model, info: dict) -> dict:
    """The fast-events scenario (``_fast_quality``): continuous, every Shimadzu frame."""
    from _fast_quality import fast_report, predict, render_fast_windows

    from xfusion_stream.simulation import parse_fast_events
    from xfusion_stream.simulation.training_set import clip_seed

    events = parse_fast_events(args.fast_events)
    if events is None:
        raise SystemExit("--scenario fast needs fast events; --fast-events none has none")
    spec = _spec(args, events)
    photons = args.photons or None
    seeds = [clip_seed(args.seed, i) for i in range(args.clips)]
    windows, masks = render_fast_windows(spec, seeds, photons)
    preds = predict(model, windows)
    test_set = _test_set(args, seeds, photons) | {"fast_events": events.model_dump()}
    if args.png is not None:  # the frame with the most event area, far from a Phantom frame
        far = [i for i, w in enumerate(windows) if min(w.t - w.before, w.after - w.t) >= 5]
        _panel(args.png, windows[max(far or [0], key=lambda i: masks[i].sum())], model)
        test_set["png"] = str(args.png)
    return {
        **info,
        "scenario": "fast",
        "layout": "continuous",
        "fast": fast_report(preds, windows, masks, spec.ratio),
        "test_set": test_set,
    }


def _between(args: argparse.Namespace, model, info: dict) -> dict:
    """The between scenario (``_between_phantom``): continuous, every Shimadzu frame."""
    from _between_phantom import between_report, changed_windows, registration_residuals
    from _fast_quality import predict

    from xfusion_stream.simulation.training_set import clip_seed

    spec = _spec(args)
    photons = args.photons or None
    seeds = [clip_seed(args.seed, i) for i in range(args.clips)]
    amplitude = args.amplitude
    if amplitude is None:
        amplitude = {"flicker": 0.2, "plume": 0.4, "shake": 2.0, "offset": 0.5}[args.change]
    windows, preds, residuals = [], [], []
    for seed in seeds:  # each clip is a run: its residual measured as a fused run measures it
        clip = changed_windows(spec, [seed], photons, args.change, amplitude)
        measurements = registration_residuals(clip)
        for key in dict.fromkeys(repr(m.offset) for m in measurements):  # NaN-safe, in turn
            group = [(w, m) for w, m in zip(clip, measurements) if repr(m.offset) == key]
            windows += [w for w, _ in group]
            preds += predict(model, [w for w, _ in group], shimadzu=group[0][1], progress=False)
        residuals.append([round(v, 3) for v in measurements[-1].offset])
    test_set = _test_set(args, seeds, photons) | {"change": args.change, "amplitude": amplitude}
    return {
        **info,
        "scenario": "between",
        "layout": "continuous",
        "between": between_report(preds, windows),
        "shimadzu_offset_px": residuals,
        "test_set": test_set,
    }


def _smooth(args: argparse.Namespace, model, info: dict) -> dict:
    """Today's scenario: smooth motion, both layouts, every ``stride``-th frame."""
    from xfusion_models.training import LAYOUTS, scoring_windows, summarise
    from xfusion_stream.simulation.training_set import clip_seed, render_clip

    spec = _spec(args)
    photons = args.photons or None
    windows: dict[str, list] = {layout: [] for layout in LAYOUTS}
    seeds = [clip_seed(args.seed, i) for i in range(args.clips)]
    for seed in seeds:
        hr, lr = render_clip(spec, seed)
        for layout in LAYOUTS:
            windows[layout] += scoring_windows(
                hr,
                lr,
                args.phantom_every,
                layout=layout,
                photons=photons,
                seed=seed,
                stride=args.stride,
            )
    result = {**info, "layouts": {}}
    for layout, ws in windows.items():
        scores = _score_windows(model, ws)
        summary = summarise(scores)
        gain = summary["gain_db"]
        summary["targets_met"] = gain["vs_bicubic"] >= 3.0 and gain["vs_nearest_phantom"] >= 1.0
        if layout == "continuous":
            summary["psnr_by_phantom_distance"] = _by_distance(ws, scores)
        result["layouts"][layout] = summary
    if args.png is not None:
        pick = windows["continuous"][len(windows["continuous"]) // 2]
        _panel(args.png, pick, model)
        result["png"] = str(args.png)
    result["test_set"] = _test_set(args, seeds, photons)
    result["targets"] = {"vs_bicubic_db": 3.0, "vs_nearest_phantom_db": 1.0}
    return result


def main(argv: list[str] | None = None) -> int:
    import torch

    args = _parse(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, info = _model(args.weights)
    if info.get("training_set_seed") == args.seed:
        raise SystemExit(f"--seed {args.seed} is the training set's seed; pick another")
    every_frame = args.scenario in ("fast", "between")
    args.clips = args.clips if args.clips is not None else (2 if every_frame else 3)
    args.stride = 1 if every_frame else (args.stride if args.stride is not None else 3)
    run = {"fast": _fast, "between": _between, "smooth": _smooth}[args.scenario]
    result = run(args, model, info)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
