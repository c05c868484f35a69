"""What a command prints without ``--json``: a few lines a person reads.

What was made and where, the headline numbers, and the path of ``summary.json`` when
the command wrote one. Everything else is in ``--json`` (one line, every key).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._summary_base import Lines, _generic, _number, _pairs, _short
from ._summary_tools import (
    _bench_scripts,
    _convert,
    _download,
    _init,
    _ioc,
    _reprocess,
    _spool,
    _train,
    _train_calibration,
    _view,
)


def _fused(r: dict) -> Lines:
    """The headline of one fused run (``FusedRunResult.summary``)."""
    line = f"fused {r.get('frames_fused', 0)} frames"
    if r.get("gaps"):
        line += f", {r['gaps']} gaps"
    if r.get("wall_seconds") is not None:
        line += f" in {_number(r['wall_seconds'])} s"
    line += f" (exit status {r.get('exit_status')})"
    if r.get("reason"):
        line += f": {r['reason']}"
    lines = [line]
    if r.get("shimadzu_residual") is not None:
        p99 = r.get("shimadzu_residual_p99")
        extra = f", p99 {_number(p99)}" if p99 is not None else ""
        lines.append(
            f"residual vs Shimadzu: {_number(r['shimadzu_residual'])} noise sigma{extra}"
            " (~1: the fast camera supports the fused frames)"
        )
    if r.get("fused_uid"):
        lines.append(f"fused run {r['fused_uid']} (of raw run {r.get('raw_uid')})")
    return lines


def _score(means: dict, metric: str, source: str) -> Any:
    """A mean score: the fused one is ``psnr`` (products) or ``psnr_fused`` (demo)."""
    value = means.get(f"{metric}_{source}")
    return means.get(metric) if value is None and source == "fused" else value


def _scores(means: dict | None, label: str = "vs truth") -> Lines:
    """``PSNR vs truth: fused 31.2, bicubic 28.0, nearest 25.1 dB`` (and SSIM)."""
    lines = []
    for metric, unit in (("psnr", " dB"), ("ssim", "")):
        found = [(s, _score(means or {}, metric, s)) for s in ("fused", "bicubic", "nearest")]
        text = ", ".join(f"{s} {_number(v, 4)}" for s, v in found if v is not None)
        if text:
            lines.append(f"{metric.upper()} {label}: {text}{unit}")
    return lines


def _left_out(r: dict) -> Lines:
    """The frames a mean does not cover (PSNR inf: a frame identical to the truth)."""
    left = r.get("mean_left_out") or {}
    if not left:
        return []
    told = ", ".join(f"{k} {n} of {r.get('n_frames', '?')}" for k, n in sorted(left.items()))
    return [f"means leave out non-finite values (inf: identical to the truth): {told}"]


def _products(r: dict) -> Lines:
    keys = ("montage_png", "gif", "mp4", "metrics_csv", "metrics_png", "frames_dir")
    made = [Path(str(r[k])) for k in keys if r.get(k)]
    folders = {path.parent for path in made}
    if len(folders) == 1:  # one folder: name it once
        names = ", ".join(path.name for path in made)
        lines = [f"products in {folders.pop()}: {names}"]
    else:
        lines = [f"products: {', '.join(str(path) for path in made)}"] if made else []
    if r.get("errors"):
        lines.append(f"product errors: {len(r['errors'])}, first: {_short(r['errors'][0])}")
    return lines


def _summary_json(folder: Any) -> Lines:
    path = Path(str(folder)) / "summary.json" if folder else None
    return [f"summary: {path}"] if path is not None and path.is_file() else []


def _demo(r: dict) -> Lines:
    lines = [f"out: {r.get('out')}", *_fused(r), *_scores(r.get("metrics_vs_truth"))]
    cal = r.get("calibration") or {}
    if cal:
        lines.append(
            f"calibration {cal.get('uid')}: rotation error {cal.get('rotation_error_deg')} deg,"
            f" scale error {cal.get('scale_error_pct')} %"
        )
    heard = r.get("received_by_remote_dispatcher") or {}
    runs = heard.get("runs") or []
    if runs:
        events = sum(int((run.get("events") or {}).get("fused", 0)) for run in runs)
        lines.append(f"an independent 0MQ listener received {events} fused frames")
    tiled = r.get("tiled") or {}
    if tiled:
        lines.append(f"Tiled {tiled.get('uri')} holds {tiled.get('fused_in_tiled')} fused frames")
    lines += _products(r)
    if r.get("seconds") is not None:
        lines.append(f"took {_number(r['seconds'])} s")
    return lines + _summary_json(r.get("out"))


def _inference(r: dict) -> Lines:
    lines = [f"out: {r.get('out')} ({r.get('data_type')}, {r.get('traverse_mode')})"]
    for case in r.get("cases") or []:
        head = _fused(case)
        lines.append(f"{case.get('case')}: {head[0]}")
        lines += [f"  {line}" for line in head[1:2] + _scores(case.get("mean"))]
        lines += [f"  {line}" for line in _left_out(case)]
        lines += [f"  {line}" for line in _products(case)]
        lines += [f"  {line}" for line in _summary_json(case.get("out_dir"))]
    if len(r.get("cases") or []) > 1:
        lines += _scores(r.get("mean"), "over all cases")
    return lines


def _replay(r: dict) -> Lines:
    lines = _fused(r) + _pairs(r, ("calibration_uid",))
    products = r.get("products") or {}
    lines += _scores(products.get("mean")) + _left_out(products) + _products(products)
    return lines + _pairs(products, ("out_dir",))


def _serve(r: dict) -> Lines:
    lines = _pairs(r, ("stopped_by", "tiled_uri", "calibration_uid", "traverse_mode"))
    runs = r.get("runs") or []
    lines.append(f"raw runs fused: {len(runs)}")
    for run in runs:  # serve names the count "frames" (FusedRunResult: "frames_fused")
        run = {"frames_fused": run.get("frames", 0), **run}
        lines.append(f"{run.get('raw_uid')}: {_fused(run)[0]}")
        if run.get("ok") is False and run.get("problem"):
            lines.append(f"  not ok: {_short(run['problem'])}")
    processes = r.get("fusion_processes") or {}
    if processes:
        lines.append(
            f"fusion processes: {processes.get('processes')} (pids "
            f"{', '.join(str(p) for p in processes.get('pids') or [])}); replaced after dying: "
            f"{processes.get('replaced', 0)}, windows fused again: "
            f"{processes.get('windows_redone', 0)}"
        )
    if r.get("messages_rejected"):
        lines.append(f"messages rejected: {r['messages_rejected']} (one log line each)")
    if r.get("raw_losses"):
        lines.append(f"raw documents lost: {r['raw_losses']} (gaps of their fused runs)")
    spool = (r.get("delivery") or {}).get("spool") or {}
    if spool:
        lines.append(
            f"spool {spool.get('directory')}: {spool.get('documents_spooled', 0)} documents "
            f"spooled, {spool.get('runs_reingested', 0)} runs re-ingested into Tiled"
        )
    waiting = r.get("spool_waiting") or []
    if waiting:
        lines.append(
            f"{len(waiting)} fused runs wait in the spool for Tiled (the next serve or "
            f"`xfusion spool` writes them): {', '.join(waiting[:3])}"
            + (" ..." if len(waiting) > 3 else "")
        )
    return lines


def _listen(r: dict) -> Lines:
    runs = r.get("runs") or []
    lines = [f"fused runs received: {len(runs)} at {r.get('address')}"]
    for run in runs:
        residual = run.get("shimadzu_residual")
        lines.append(
            f"{run.get('uid')}: {run.get('frames')} frames ({run.get('exit_status')}), "
            f"shimadzu_residual {'n/a' if residual is None else _number(residual, 4)}"
        )
    return lines + _pairs(r, ("error",))


def _simulate(r: dict) -> Lines:
    shape = "x".join(str(n) for n in r.get("shimadzu_shape") or ())
    lines = [
        f"out: {r.get('out')}",
        f"{r.get('n_shimadzu')} Shimadzu frames ({shape} px), {r.get('n_phantom')} Phantom "
        f"frames, {r.get('fast_events', 0)} fast events",
    ]
    keys = ("experiment", "calibration", "truth", "preview", "movie")
    return lines + _pairs(r, keys)


def _calibrate(r: dict) -> Lines:
    lines = _pairs(r, ("record", "uid"))
    if r.get("png"):
        lines.append(f"overlay png: {r['png']} (both grids after registration, residuals)")
    numbers = ("rotation_deg", "scale_row", "scale_col", "n_pairs", "residual_mean_px")
    lines.append(", ".join(f"{k} {_number(r[k], 4)}" for k in numbers if r.get(k) is not None))
    if r.get("config_updated"):
        lines.append("xfusion.conf now names this record (inference uses it by default)")
    return lines + _pairs(r, ("intensity_problem", "config_problem", "note"))


def _bench(r: dict) -> Lines:
    """Each ratio beside its target; ``bench NAME``: a line of headline figures per script."""
    if "targets_met" not in r:
        return _bench_scripts(r) if "results" in r or "benchmarks" in r else _generic(r)
    met = r["targets_met"]
    pipe, stream = r.get("pipeline", {}), r.get("streaming", {})
    eff = {k: v.get("efficiency") for k, v in r.get("efficiency", {}).items()}
    rows = [
        ("efficiency", ", ".join(f"{k} {_number(v)}" for k, v in eff.items()), "efficiency"),
        ("streaming_speedup", _number(stream.get("streaming_speedup")), "streaming_speedup"),
        ("pipeline_ratio", _number(pipe.get("pipeline_ratio")), "pipeline_ratio"),
        ("sys_over_user", _number(pipe.get("sys_over_user")), "sys_over_user"),
        (
            "persistence (raw frames/s, HDF5 + documents to Tiled)",
            _number(
                ((r.get("persistence") or {}).get("cases") or {})
                .get("raw_400x250_uint16", {})
                .get("shipped", {})
                .get("fps")
            ),
            "persistence",
        ),
        (
            "precision (dB change)",
            _number(r.get("precision", {}).get("psnr_change_db")),
            "precision",
        ),
    ]
    lines = [f"model {r.get('model')} on {r.get('device')}, threads {r.get('threads')}"]
    for label, value, key in rows:
        lines.append(f"{label}: {value} ({'meets' if met.get(key) else 'misses'} its target)")
    scaling = r.get("scaling") or {}
    if scaling:
        lines.append(
            "scaling (log-log exponent, 1 = linear): pixels "
            f"{_number(scaling.get('pixel_exponent'))}, burst length "
            f"{_number(scaling.get('length_exponent'))} "
            f"({'meets' if met.get('scaling_linear') else 'misses'} its target)"
        )
        for row in scaling.get("by_pixels", []):
            lines.append(f"  {row['shimadzu_shape']}: {_number(row['s_per_frame'])} s/frame")
        for row in scaling.get("by_burst_length", []):
            lines.append(f"  {row['frames']} frames: {_number(row['s_per_frame'])} s/frame")
    burst = r.get("full_burst") or {}
    for name, row in (burst.get("models") or {}).items():
        lines.append(
            f"whole burst ({burst['frames']} frames of {burst['shimadzu_shape']}), {name}: "
            f"{_number(row['burst_s'])} s, {_number(row['frames_per_s'])} frames/s, "
            f"CPU-side share {_number(row['cpu_side_share'])}"
        )
    heap = (r.get("heap") or {}).get("refaulted_blocks_per_block")
    if heap:
        lines.append(
            "freed blocks mapped afresh: " + ", ".join(f"{k} {v}" for k, v in heap.items())
        )
    shares = r.get("stage_shares", {})
    lines.append("time per fused frame: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    return lines


SUMMARIES: dict[str, Callable[[dict], Lines]] = {
    "init": _init,
    "convert": _convert,
    "train": _train,
    "train_calibration": _train_calibration,
    "download": _download,
    "spool": _spool,
    "reprocess": _reprocess,
    "view": _view,
    "ioc": _ioc,
    "demo": _demo,
    "inference": _inference,
    "replay": _replay,
    "serve": _serve,
    "listen": _listen,
    "bench": _bench,
    "simulate": _simulate,
    "calibrate": _calibrate,
}


def summary_lines(command: str, result: dict) -> Lines:
    """The human summary of ``result``: a status line, then the command's few lines."""
    status = "done" if result.get("ok") is True else "failed"
    body = SUMMARIES.get(command, _generic)(result)
    return [f"xfusion {command}: {status}", *(f"  {line}" for line in body if line)]
