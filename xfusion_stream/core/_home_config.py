"""``xfusion.conf``: the INI file ``xfusion init`` writes and later commands update.

Lives in the home directory as the original's did; ``--home`` or ``XFUSION_HOME``
relocate it (tests, shared beamline accounts).
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from ._errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "MODEL_TYPES",
    "DATA_TYPES",
    "config_path",
    "read_config",
    "write_config",
    "update_config",
]

CONFIG_NAME = "xfusion.conf"
MODEL_TYPES = ("EDVRModel", "SwinIRModel")
DATA_TYPES = ("virtual", "actual")


def config_path(home: str | os.PathLike | None = None) -> Path:
    base = home or os.environ.get("XFUSION_HOME") or Path.home()
    return Path(base).expanduser() / CONFIG_NAME


def read_config(home: str | os.PathLike | None = None) -> configparser.ConfigParser:
    path = config_path(home)
    if not path.exists():
        raise ConfigError(f"{path}: not found; run `xfusion init` first")
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a valid INI file: {exc}") from exc
    general = parser["general"] if parser.has_section("general") else {}
    for key, allowed in (("model_type", MODEL_TYPES), ("data_type", DATA_TYPES)):
        value = general.get(key)
        if value not in allowed:
            raise ConfigError(f"{path}: [general] {key}: {value!r} is not one of {allowed}")
    return parser


def write_config(parser: configparser.ConfigParser, home: str | os.PathLike | None = None) -> Path:
    path = config_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".conf.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        parser.write(fh)
    tmp.replace(path)
    return path


def update_config(section: str, home: str | os.PathLike | None = None, **values: object) -> Path:
    """Record values a command used (e.g. the last calibration file) for later commands."""
    parser = read_config(home)
    if not parser.has_section(section):
        parser.add_section(section)
    for key, value in values.items():
        parser[section][key] = str(value)
    return write_config(parser, home)
