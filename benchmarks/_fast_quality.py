"""The fast-events scenario of ``quality.py``: is a fused frame right where things happen fast?

Every Shimadzu frame strictly between two Phantom frames is scored (continuous layout,
stride 1) against the true scene, on the whole frame and inside the fast-event masks
(the region each event changes: its footprint now and at both bracketing Phantom
frames, dilated 2 px), overall, far from a Phantom frame, and per distance to the
nearer Phantom frame. PSNR is the original's 8-bit PSNR; inside a mask the MSE is taken
over the masked pixels only.

The second measure needs no truth: the residual of a frame against the Shimadzu frame in
noise units, ``xfusion_models.ops.residual_in_noise_units`` (area x4 of the frame minus
the noisy Shimadzu frame, over the shot noise estimated from it). The noise-free truth
gives pure noise there, so its RMS / p99 (and RMS inside the masks, taken to the
Shimadzu grid) are the tolerance: a fused frame the Shimadzu supports is within that of
the bicubic baseline's residual, on the whole frame and where the events are.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FAR_FROM_PHANTOM", "fast_report", "predict", "render_fast_windows"]

#: "far from a Phantom frame": at least this many Shimadzu frames from both
FAR_FROM_PHANTOM = 5
_CANDIDATES = ("fused", "bicubic", "nearest")
#: PSNR of a masked region that a candidate matches exactly (MSE 0) is reported as this
_PSNR_CAP_DB = 99.0


def predict(model, windows, batch: int = 4, progress: bool = True, shimadzu=None) -> list:
    """The model's frame for each window, batched on its plain (non-streaming) path;
    ``shimadzu`` (an EDVR-STF's ``ShimadzuMeasurement``) for its consistency step."""
    import torch
    from tqdm import tqdm

    preds: list[np.ndarray] = []
    model.eval()
    starts = range(0, len(windows), batch)
    with torch.no_grad():
        for start in tqdm(starts, desc="fusing", unit="batch", disable=not progress):
            chunk = windows[start : start + batch]
            lq = torch.from_numpy(np.stack([w.lq for w in chunk]))[:, :, None]
            hq = torch.from_numpy(np.stack([w.hq for w in chunk]))[:, :, None]
            out = model(lq, hq) if shimadzu is None else model(lq, hq, shimadzu)
            preds += list(out[:, 0].clamp(0, 1).numpy())
    return preds


def render_fast_windows(spec, seeds, photons, progress: bool = True) -> tuple[list, list]:
    """Continuous windows at every Shimadzu frame of each clip, and each one's event mask."""
    from tqdm import tqdm

    from xfusion_models.training import scoring_windows
    from xfusion_stream.simulation.training_set import clip_scene, render_clip

    windows: list = []
    masks: list[np.ndarray] = []
    for seed in tqdm(seeds, desc="rendering clips", unit="clip", disable=not progress):
        hr, lr = render_clip(spec, seed)
        scene = clip_scene(spec, seed)
        clip = scoring_windows(
            hr, lr, spec.phantom_every, layout="continuous", photons=photons, seed=seed
        )
        windows += clip
        masks += [scene.shimadzu_event_mask(w.t) for w in clip]
    return windows, masks


def _psnr(a8: np.ndarray, b8: np.ndarray, mask: np.ndarray | None = None) -> float:
    diff = a8.astype(np.float64) - b8.astype(np.float64)
    mse = float(np.mean(diff[mask] ** 2 if mask is not None else diff**2))
    return _PSNR_CAP_DB if mse == 0 else min(10 * np.log10(255.0**2 / mse), _PSNR_CAP_DB)


def _frame_psnrs(preds, windows, masks) -> list[dict]:
    """Per window: distance to the nearer Phantom frame, whole and masked PSNR per candidate."""
    from xfusion_models.metrics import to_uint8
    from xfusion_models.training import bicubic_x4

    rows = []
    for pred, w, mask in zip(preds, windows, masks):
        distance = min(w.t - w.before, w.after - w.t)
        nearer = 0 if w.t - w.before <= w.after - w.t else 1
        images = {"fused": pred, "bicubic": bicubic_x4(w.lq[1]), "nearest": w.hq[nearer]}
        truth8 = to_uint8(w.truth)
        row: dict = {"distance": distance, "has_events": bool(mask.any())}
        for name, image in images.items():
            image8 = to_uint8(image)
            row[name] = _psnr(image8, truth8)
            row[f"{name}_masked"] = _psnr(image8, truth8, mask) if row["has_events"] else None
        rows.append(row)
    return rows


def _means(rows: list[dict]) -> dict:
    """Mean PSNR per candidate, whole frame and inside the masks (frames with events)."""
    masked = [r for r in rows if r["has_events"]]
    out: dict = {"n_frames": len(rows), "n_frames_with_events": len(masked)}
    out["whole"] = {c: round(float(np.mean([r[c] for r in rows])), 2) for c in _CANDIDATES}
    out["masked"] = {
        c: round(float(np.mean([r[f"{c}_masked"] for r in masked])), 2) if masked else None
        for c in _CANDIDATES
    }
    return out


def _gain(means: dict, where: str) -> float | None:
    fused, bicubic = means[where]["fused"], means[where]["bicubic"]
    return None if fused is None or bicubic is None else round(fused - bicubic, 2)


def _by_distance(rows: list[dict]) -> dict:
    """Distance (Shimadzu frames to the nearer Phantom frame) -> mean PSNR whole / masked."""
    table = {}
    for d in sorted({r["distance"] for r in rows}):
        at = _means([r for r in rows if r["distance"] == d])
        table[str(d)] = {
            "n_frames": at["n_frames"],
            **{c: {"whole": at["whole"][c], "masked": at["masked"][c]} for c in _CANDIDATES},
        }
    return table


def _residual_stats(hr: np.ndarray, lr: np.ndarray, lr_masks: np.ndarray, ratio: int) -> dict:
    """Mean over frames of the residual's RMS and 99th percentile of |r|, and RMS in masks."""
    import torch

    from xfusion_models.ops import residual_in_noise_units

    r = residual_in_noise_units(
        torch.from_numpy(hr[:, None].astype(np.float32)),
        torch.from_numpy(lr[:, None].astype(np.float32)),
        ratio=ratio,
    )[:, 0].numpy()
    flat = r.reshape(len(r), -1)
    out = {
        "rms": round(float(np.sqrt((flat**2).mean(axis=1)).mean()), 3),
        "p99": round(float(np.percentile(np.abs(flat), 99, axis=1).mean()), 3),
    }
    inside = [np.sqrt(np.mean(f[m] ** 2)) for f, m in zip(r, lr_masks) if m.any()]
    out["rms_in_masks"] = round(float(np.mean(inside)), 3) if inside else None
    return out


def _residuals(preds, windows, masks, ratio: int) -> dict:
    """Residual against the Shimadzu frame for fused, bicubic and the truth (the noise)."""
    from xfusion_models.training import bicubic_x4

    lr = np.stack([w.lq[1] for w in windows])
    rows, cols = lr.shape[1:]
    lr_masks = np.stack(masks).reshape(len(masks), rows, ratio, cols, ratio).any(axis=(2, 4))
    frames = {
        "fused": np.stack(preds),
        "bicubic": np.stack([bicubic_x4(w.lq[1], ratio) for w in windows]),
        "truth": np.stack([w.truth for w in windows]),
    }
    out = {name: _residual_stats(hr, lr, lr_masks, ratio) for name, hr in frames.items()}
    keys = [k for k in ("rms", "p99", "rms_in_masks") if out["truth"][k] is not None]
    tolerance = {k: out["truth"][k] for k in keys}
    out["tolerance"] = {
        **tolerance,
        "derivation": "residual of the noise-free truth: pure Shimadzu noise in noise units",
    }
    out["fused_within_tolerance"] = {
        k: out["fused"][k] <= out["bicubic"][k] + tolerance[k] for k in keys
    }
    return out


def fast_report(preds, windows, masks, ratio: int) -> dict:
    """Everything the fast scenario reports, JSON-ready."""
    rows = _frame_psnrs(preds, windows, masks)
    overall = _means(rows)
    far = _means([r for r in rows if r["distance"] >= FAR_FROM_PHANTOM])
    gains = {
        "whole_vs_bicubic": _gain(overall, "whole"),
        "masked_vs_bicubic": _gain(overall, "masked"),
        "far_whole_vs_bicubic": _gain(far, "whole"),
        "far_masked_vs_bicubic": _gain(far, "masked"),
    }
    targets = {"whole_vs_bicubic": 3.0, "masked_vs_bicubic": 1.0, "far_masked_vs_bicubic": 1.0}
    residual = _residuals(preds, windows, masks, ratio)
    met = {k: gains[k] is not None and gains[k] >= v for k, v in targets.items()}
    met["shimadzu_residual"] = all(residual["fused_within_tolerance"].values())
    return {
        **overall,
        "mask_fraction": round(float(np.mean([m.mean() for m in masks])), 4),
        "far_from_phantom": {"min_distance": FAR_FROM_PHANTOM, **far},
        "gain_db": gains,
        "psnr_by_phantom_distance": _by_distance(rows),
        "shimadzu_residual": residual,
        "targets_db": targets,
        "targets_met": met,
    }
