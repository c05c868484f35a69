"""Human summaries of the set-up and service commands: init, convert, train,
train_calibration, download, spool, reprocess, view, ioc and the benchmark scripts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._summary_base import _SCALARS, Lines, _generic, _number, _short


def _files_in(folder: Any, names: Iterable[str]) -> Lines:
    """``in <folder>: a, b`` for those of ``names`` that exist there."""
    if not folder:
        return []
    there = [name for name in names if (Path(str(folder)) / name).exists()]
    return [f"in {folder}: {', '.join(there)}"] if there else []


def _init(r: dict) -> Lines:
    return [
        f"wrote {r.get('config')}",
        f"model_type {r.get('model_type')}, data_type {r.get('data_type')} (the defaults "
        "of convert, train, calibrate and inference; run init again to change them)",
    ]


def _convert(r: dict) -> Lines:
    lines = []
    for label, name in (("lo", "LR"), ("hi", "HR")):
        part = r.get(label)
        if isinstance(part, dict):
            lines.append(
                f"gray {name} clips: {part.get('clips')} clips, {part.get('frames')} frames "
                f"in {part.get('out_dir')}"
            )
            lines.append(f"  meta info: {part.get('meta_info')}")
    return lines


def _train(r: dict) -> Lines:
    lines = [f"weights: {r.get('weights')}"]
    iters = f"{r.get('iters')} iterations"
    if r.get("resumed_from"):
        iters += f" (resumed from {r['resumed_from']})"
    lines.append(iters)
    scores = [
        f"PSNR {_number(r['val_psnr'], 4)} dB" if r.get("val_psnr") is not None else "",
        f"SSIM {_number(r['val_ssim'], 4)}" if r.get("val_ssim") is not None else "",
    ]
    if any(scores):
        lines.append("last validation: " + ", ".join(x for x in scores if x))
    files = ("metrics.csv", "training.png", "checkpoints/latest.pth")
    lines += _files_in(r.get("out"), files)
    if r.get("out"):
        lines.append("continue it with --resume (the state is checkpoints/latest.pth)")
    return lines


def _train_calibration(r: dict) -> Lines:
    def loss(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k} {_number(v, 4)}" for k, v in value.items())
        return _number(value, 4)

    lines = [f"checkpoint: {r.get('checkpoint')}"]
    lines.append(f"{r.get('iters')} iterations on {r.get('n_images')} images")
    if r.get("first_loss") is not None:
        lines.append(f"loss: first {loss(r['first_loss'])}; last {loss(r.get('last_loss'))}")
    evaluator = "the fusion model's reconstruction" if r.get("evaluator") else "flow error only"
    lines.append(f"loss terms: {evaluator}")
    return lines


def _download(r: dict) -> Lines:
    size = r.get("size")
    mb = f"{size / 1e6:.1f} MB" if isinstance(size, int | float) else "? MB"
    digest = str(r.get("sha256") or "")[:16]
    lines = [f"archive: {r.get('archive')} ({mb}, sha256 {digest}...)"]
    if r.get("resumed_from"):
        lines.append(f"resumed from byte {r['resumed_from']}")
    if r.get("extracted_to"):
        lines.append(f"unpacked {r.get('members')} files into {r['extracted_to']}")
    else:
        lines.append("kept packed (--no-extract)")
    return lines


_SPOOL_KEYS = {
    "spool_dir",
    "files",
    "runs_reingested",
    "documents_reingested",
    "failed",
    "left_in_spool",
    "error",
}


def _spool(r: dict) -> Lines:
    folder = r.get("spool_dir")
    if "files" in r:  # --list
        files = r.get("files") or []
        lines = [f"spool {folder}: {len(files)} files waiting"]
        return lines + [f"  {name}" for name in files[:20]]
    lines = [
        f"re-ingested {r.get('runs_reingested', 0)} fused runs "
        f"({r.get('documents_reingested', 0)} documents) from {folder} into Tiled",
        f"left in the spool: {r.get('left_in_spool', 0)} (partial runs: `xfusion serve` "
        "completes them at start)",
    ]
    for uid, why in (r.get("failed") or {}).items():
        lines.append(f"failed {uid}: {_short(why)}")
    if "backup_runs_reingested" in r:  # raw runs the beamline's TiledWriter backed up
        lines.append(
            f"re-ingested {len(r['backup_runs_reingested'])} raw runs "
            f"({r.get('backup_documents', 0)} documents) from TiledWriter backups; "
            f"{len(r.get('backup_runs_already_in_tiled') or [])} were in Tiled already"
        )
        problems = {**(r.get("backup_files_left") or {}), **(r.get("backup_files_failed") or {})}
        lines += [f"not written: {name}: {_short(why)}" for name, why in problems.items()]
    rest = {
        k: v
        for k, v in r.items()
        if k not in _SPOOL_KEYS and k != "ok" and not k.startswith("backup_")
    }
    return lines + _generic(rest)


def _reprocess(r: dict) -> Lines:
    lines = [
        f"{r.get('runs', 0)} raw runs: {r.get('runs_fused', 0)} fused, "
        f"{r.get('runs_skipped', 0)} skipped (fused alike already), "
        f"{r.get('runs_failed', 0)} failed; {r.get('frames_fused', 0)} frames on "
        f"{r.get('workers', 0)} workers in {_number(r.get('seconds'))} s",
    ]
    for run in r.get("fused") or []:
        lines.append(f"fused {run.get('raw_uid')} -> {run.get('fused_uid')}")
        ranges = run.get("window_ranges") or []
        if ranges:
            places = len({where for *_, where in ranges})
            lines.append(f"  split: {len(ranges)} window ranges on {places} workers")
    for run in r.get("failed") or []:
        lines.append(f"failed {run.get('raw_uid')}: {_short(run.get('problem'))}")
    return lines


def _view(r: dict) -> Lines:
    source = r.get("zmq") or f"{r.get('tiled_uri')} run {r.get('uid')}"
    return [
        f"served {r.get('url')} for {_number(r.get('seconds'))} s, fed from {source}",
        f"{r.get('frames', 0)} fused frames of {r.get('runs', 0)} runs shown, "
        f"{r.get('skipped_documents', 0)} documents skipped",
    ]


def _ioc(r: dict) -> Lines:
    prefixes = r.get("prefixes") or {}
    named = ", ".join(f"{camera} {prefix}" for camera, prefix in prefixes.items())
    return [
        f"served {r.get('pvs')} PVs ({named}) on 127.0.0.1",
        f"HDF5 files written under {r.get('data_dir')}",
    ]


def _bench_scripts(r: dict) -> Lines:
    if "benchmarks" in r:  # --list
        return [f"benchmarks: {', '.join(r['benchmarks'])}"]
    lines = []
    for name, found in (r.get("results") or {}).items():
        if isinstance(found, dict):
            numbers = [f"{k} {_number(v)}" for k, v in found.items() if isinstance(v, _SCALARS)][:8]
            lines.append(f"{name}: {_short(', '.join(numbers))}")
        else:
            lines.append(f"{name}: {_short(found)}")
    return lines + ["every figure of each script: --json"]
