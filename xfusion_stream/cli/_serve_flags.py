"""What ``xfusion serve`` takes from its flags, else from its profile, else defaults:
addresses, calibration, fusion settings, model, Tiled, data roots and spool."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..core import ConfigError

_IN, _OUT = "tcp://127.0.0.1:5577", "tcp://127.0.0.1:5578"


def _profile(args: argparse.Namespace) -> Any:
    if not args.profile:
        return None
    from ..app import load_profile

    return load_profile(args.profile)


def _addresses(args: argparse.Namespace, profile: Any) -> tuple[str, str, str]:
    """(IN, OUT, fused) from the flags, else the profile, else the defaults."""
    from ..publishing import check_address

    zmq = getattr(profile, "zmq", None)
    in_address = args.in_address or (zmq.raw_in if zmq else _IN)
    out_address = args.out_address or (zmq.raw_out if zmq else _OUT)
    fused = args.fused_address or (zmq.fused if zmq and zmq.fused else in_address)
    check_address(in_address, "--in-address")
    check_address(out_address, "--out-address")
    check_address(fused, "--fused-address")
    return in_address, out_address, fused


def _calibration(args: argparse.Namespace, profile: Any):
    from ..app import profile_calibration
    from ..calibration import load_record

    if args.calibration:
        return load_record(args.calibration)
    if profile is None:
        raise ConfigError("serve needs --calibration RECORD or --profile PROFILE")
    return profile_calibration(profile)


def _config(args: argparse.Namespace, profile: Any):
    from ..fusion import FusionConfig

    base = profile.fusion_config() if profile is not None else FusionConfig()
    given = {
        "fused_data_dir": str(Path(args.fused_data_dir).expanduser().resolve())
        if args.fused_data_dir
        else None,
        "traverse_mode": args.traverse_mode,
        "queue_size": args.queue_size,
        "when_full": args.when_full,
        "viewer_inputs": args.viewer_inputs,
    }
    return FusionConfig.model_validate(
        {**base.model_dump(), **{k: v for k, v in given.items() if v is not None}}
    )


def _load_model(args: argparse.Namespace, profile: Any):
    from ..app import profile_model_spec
    from ..fusion import load_fusion_model

    spec = args.model_file or (profile_model_spec(profile) if profile is not None else None)
    flag = "--model_file" if args.model_file else "profile model"
    try:
        return load_fusion_model(spec, device=args.device, precision=args.precision)
    except ConfigError as exc:
        raise ConfigError(f"{flag} {spec}: {exc}") from exc


def _tiled_client(args: argparse.Namespace, profile: Any):
    uri, api_key = args.tiled_uri, args.api_key
    if not uri and profile is not None and profile.tiled.uri != "embedded":
        uri = profile.tiled.uri  # an embedded Tiled lives in the beamline's process
        env = profile.tiled.api_key_env
        api_key = api_key or (os.environ.get(env) if env else None)
    if not uri:
        return None, None
    from ._tiled import connect

    return connect(uri, api_key=api_key), uri


def _data_roots(args: argparse.Namespace, profile: Any) -> list[str] | None:
    """Folders the raw documents' files may be read from: the flags, else the profile's
    raw folder (the beamline writes its HDF5 bursts there)."""
    if args.data_root:
        return list(args.data_root)
    if profile is not None:
        return [str(profile.resolved_data_dir() / "raw")]
    return None


def _spool_dir(args: argparse.Namespace, profile: Any, client: Any) -> str | None:
    if args.spool_dir:
        return str(args.spool_dir)
    if profile is not None and client is not None:
        return str(profile.resolved_spool_dir())
    return None


def _waiting(spool_dir: str | None) -> list[str]:
    """Fused run uids the spool still holds (Tiled has not confirmed them)."""
    from ..publishing import SPOOL_SUFFIX, spool_files

    if spool_dir is None:
        return []
    return [path.name.removesuffix(SPOOL_SUFFIX) for path in spool_files(spool_dir)]


def _check_prefix(flag: str, text: str) -> bytes:
    if not text or " " in text:
        raise ConfigError(f"{flag} {text!r}: must be non-empty and contain no space")
    return text.encode()
