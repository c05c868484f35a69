"""Fuse recorded (actual) or virtual experiments offline, through the live callback.

Each case becomes a raw run (``recorded_experiment`` / ``virtual_experiment`` plan)
that the same FusionCallback fuses; frames, metrics CSV, montage PNG and GIF go to
``--out/<case>/``. The JSON reports, per case and over all cases, the mean residual of
the fused frames against their Shimadzu frames in noise units (``shimadzu_residual``,
~1: supported by the fast camera); in double mode also the mean PSNR/SSIM/AAD of the
fused frames and of the bicubic and nearest-Phantom-frame baselines on the same frames.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..core import CalibrationError, ConfigError
from ._argtypes import process_count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--data_type",
        "--data-type",
        choices=("actual", "virtual"),
        default=None,
        help="default: the data_type in xfusion.conf, else actual",
    )
    a("--input_dir", "--input-dir", type=Path, help="root of the recorded experiments (actual)")
    a("--case_list", "--case-list", nargs="+", default=None, help="experiment subfolders")
    a(
        "--traverse_mode",
        "--traverse-mode",
        choices=("continuous", "double"),
        default="double",
        help="continuous: a fused frame per Shimadzu frame; double: per Phantom frame, held out as truth",
    )
    a("--calibration", type=Path, default=None, help="record written by `xfusion calibrate`")
    a("--tfm_file", "--tfm-file", type=Path, default=None, help="original tfm_*.npy")
    a(
        "--meta_file_scale",
        "--meta-file-scale",
        type=Path,
        default=None,
        help="original scale_factor_*.npy",
    )
    a("--model_file", "--model-file", default=None, help="checkpoint or registry name")
    a(
        "--arch-opt",
        "--arch_opt",
        dest="arch_opt",
        type=Path,
        default=None,
        help="YAML (arch, preset, overrides) for an original XFusion checkpoint",
    )
    a("--opt", type=Path, default=None, help="virtual: testing dataset YAML")
    a(
        "--img-class",
        "--img_class",
        dest="img_class",
        default=None,
        help="virtual: dataset name in --opt (dataset1, dataset2) or a clip folder",
    )
    a("--machine", default=None, help="accepted for the original's command line; ignored")
    a("--out", type=Path, default=Path("xfusion-inference"), help="products, one folder per case")
    a("--device", default="cpu", help="cpu, cuda or cuda:N")
    a("--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="model precision")
    a(
        "--workers",
        type=process_count,
        default=1,
        help="fusion processes: N > 1 fuses the windows in N processes with cores / N torch "
        "threads each (the frames of 1 process at that thread count) (default: 1)",
    )
    a("--tiled-uri", default=None, help="also store raw and fused runs in this Tiled")
    a("--home", default=None, help="folder of xfusion.conf")
    a(
        "--overlay",
        choices=("residual",),
        default=None,
        help="residual: tint the GIF/MP4 fused frames where the Shimadzu frame does not "
        "support them (|residual| > 3 noise sigma)",
    )


def _data_type(args: argparse.Namespace) -> str:
    if args.data_type:
        return args.data_type
    from ..core import read_config_if_any

    conf = read_config_if_any(args.home)
    if conf is None or not conf.has_option("general", "data_type"):
        return "actual"
    return conf["general"]["data_type"]


def _calibration(args: argparse.Namespace, case) -> Any:
    from ..calibration import import_original, load_record

    if args.calibration is not None:
        return load_record(args.calibration)
    if args.tfm_file is not None or args.meta_file_scale is not None:
        if args.tfm_file is None or args.meta_file_scale is None:
            raise ConfigError("--tfm_file and --meta_file_scale go together")
        return import_original(
            args.tfm_file, args.meta_file_scale, case.shimadzu_shape, case.phantom_shape
        )
    from ..core import read_config_if_any

    conf = read_config_if_any(args.home)
    recorded = conf.get("calibrate", "record", fallback=None) if conf is not None else None
    if recorded:
        return load_record(recorded)
    raise ConfigError(
        "actual data needs --calibration RECORD (or --tfm_file + "
        "--meta_file_scale); run `xfusion calibrate` first"
    )


def _tiled_sinks(args: argparse.Namespace) -> tuple[list, list]:
    if not args.tiled_uri:
        return [], []
    from ..publishing import make_tiled_writer
    from ._tiled import connect

    client = connect(args.tiled_uri)
    return [make_tiled_writer(client)], [make_tiled_writer(client)]


def _fuse_case(
    args, name: str, plan, calibration, n_windows: int, model, config, pool=None
) -> dict:
    from ..app import FusionSession
    from ..core import ThreadBudget
    from ..products import ProductWriter

    out = args.out / name
    writer = ProductWriter(
        out,
        traverse_mode=config.traverse_mode,
        progress_total=n_windows,
        progress=not args.quiet,
        overlay=args.overlay,
    )
    raw_sinks, fused_sinks = _tiled_sinks(args)
    # with fusion processes, this one only registers frames: one torch thread
    threads = ThreadBudget(1) if pool is not None else None
    session = FusionSession(
        model, calibration, fused_sinks, config, on_frame=writer, executor=pool, threads=threads
    )
    try:
        result = session.run_plan(plan, raw_sinks=raw_sinks)
    finally:
        session.close()
    summary = {
        "case": name,
        "calibration_uid": calibration.uid,
        **result.summary(),
        **writer.close(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _actual_cases(args, model, config, pool=None) -> list[dict]:
    from xfusion_plans import recorded_experiment

    from ..calibration import pairing_table
    from ..devices import recorded_cameras
    from ..recorded import read_case

    if args.input_dir is None or not args.case_list:
        raise ConfigError("actual data needs --input_dir and --case_list")
    results = []
    for name in args.case_list:
        case = read_case(args.input_dir / name)
        calibration = _calibration(args, case)
        try:
            table = pairing_table(
                case.phantom, case.shimadzu, config.traverse_mode, config.tolerance_ns
            )
        except CalibrationError as exc:  # the two files whose times do not pair
            raise CalibrationError(f"{case.phantom_xml} and {case.shimadzu_ini}: {exc}") from None
        cameras = recorded_cameras(case.path, data_dir=args.out / name / "raw")
        plan = recorded_experiment(*cameras)
        n = len(table.windows)
        results.append(_fuse_case(args, name, plan, calibration, n, model, config, pool))
    return results


def _virtual_cases(args, model, config, pool=None) -> list[dict]:
    from xfusion_plans import virtual_experiment

    from ..app import find_virtual_sources, identity_calibration, virtual_windows
    from ..devices import virtual_cameras

    results = []
    for source in find_virtual_sources(args.opt, args.img_class, args.input_dir):
        cameras = virtual_cameras(
            source.path, **source.plan_kwargs(), data_dir=args.out / source.name / "raw"
        )
        plan = virtual_experiment(*cameras)
        calibration = identity_calibration(source.shimadzu_shape, source.phantom_shape)
        n = virtual_windows(source, config.traverse_mode)
        results.append(_fuse_case(args, source.name, plan, calibration, n, model, config, pool))
    return results


def run(args: argparse.Namespace) -> dict:
    from ..fusion import FusionConfig, WindowPool, load_fusion_model

    model = load_fusion_model(
        args.model_file, device=args.device, precision=args.precision, arch_opt=args.arch_opt
    )
    config = FusionConfig(traverse_mode=args.traverse_mode)
    data_type = _data_type(args)
    args.out.mkdir(parents=True, exist_ok=True)
    pool = WindowPool.for_command(model, args.workers)
    try:
        fuse = _actual_cases if data_type == "actual" else _virtual_cases
        cases = fuse(args, model, config, pool)
    finally:
        if pool is not None:
            pool.close()
    result: dict[str, Any] = {
        "data_type": data_type,
        "traverse_mode": args.traverse_mode,
        "model": model.metadata(),
        "out": str(args.out),
        "cases": cases,
    }
    result.update(_pooled_residual(cases))
    failed = [f"{c['case']}: {c['problem']}" for c in cases if not c.get("ok")]
    if not cases:
        failed.append("no case was fused")
    if failed:  # "ok": false and exit code 1 (cli._main)
        result["ok"] = False
        result["error"] = "; ".join(failed)
    if args.traverse_mode == "double":
        result["mean"] = _pooled_means(cases)
    return result


def _pooled_residual(cases: list[dict]) -> dict[str, float | None]:
    """Frame-weighted means over all cases of the residual against the Shimadzu frame."""
    out: dict[str, float | None] = {}
    for key in ("shimadzu_residual", "shimadzu_residual_p99"):
        pairs = [(c[key], int(c.get("frames_fused") or 0)) for c in cases if c.get(key) is not None]
        frames = sum(n for _, n in pairs)
        out[key] = round(sum(v * n for v, n in pairs) / frames, 3) if frames else None
    return out


def _pooled_means(cases: list[dict]) -> dict[str, float]:
    """Frame-weighted means over all cases of every metric the products reported."""
    totals: dict[str, float] = {}
    count = 0
    for case in cases:
        n = int(case.get("n_frames") or case.get("frames_fused") or 0)
        for key, value in (case.get("mean") or {}).items():
            totals[key] = totals.get(key, 0.0) + float(value) * n
        count += n
    return {k: v / count for k, v in totals.items()} if count else {}
