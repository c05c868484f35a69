"""``xfusion.conf``: the INI file ``xfusion init`` writes and later commands update.

Lives in the home directory as the original's did; ``--home`` or ``XFUSION_HOME``
relocate it (tests, shared beamline accounts). The file stays INI (the original's
format); what is read is validated by :class:`HomeConfig` like every other config.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Literal, get_args

from pydantic import ConfigDict

from ._config import ConfigModel, load_config, read_small_text
from ._errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "MODEL_TYPES",
    "DATA_TYPES",
    "GeneralSection",
    "HomeConfig",
    "config_path",
    "read_config_if_any",
    "read_config",
    "write_config",
    "update_config",
]

CONFIG_NAME = "xfusion.conf"
ModelType = Literal["EDVRModel", "SwinIRModel"]
DataType = Literal["virtual", "actual"]
MODEL_TYPES: tuple[str, ...] = get_args(ModelType)
DATA_TYPES: tuple[str, ...] = get_args(DataType)


class GeneralSection(ConfigModel):
    """``[general]``: the model family and the data type ``xfusion init`` chose.

    Other keys are kept as text: files written by the original carry more of them.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]

    model_type: ModelType
    data_type: DataType
    arch: Literal["edvr_stf", "swin_xvr"] | None = None


class HomeConfig(ConfigModel):
    """The whole file: ``[general]`` checked, every other section free ``key = text`` pairs."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, str]]

    general: GeneralSection


def config_path(home: str | os.PathLike | None = None) -> Path:
    base = home or os.environ.get("XFUSION_HOME") or Path.home()
    return Path(base).expanduser() / CONFIG_NAME


def read_config(home: str | os.PathLike | None = None) -> configparser.ConfigParser:
    """The parsed file, after :class:`HomeConfig` accepted it (``ConfigError`` naming the key)."""
    path = config_path(home)
    if not path.exists():
        raise ConfigError(f"{path}: not found; run `xfusion init` first")
    # no interpolation: a % in a path is a character, not a reference to another key
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_small_text(path, "xfusion.conf"), source=str(path))
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not a valid INI file: {first}") from None
    sections = {name: dict(parser[name]) for name in parser.sections()}
    load_config(HomeConfig, sections, source=path)
    return parser


def read_config_if_any(home: str | os.PathLike | None = None) -> configparser.ConfigParser | None:
    """None when there is no ``xfusion.conf`` (the defaults apply); a damaged one is a
    ``ConfigError``, never silently the defaults (a fallback showed "needs --calibration"
    in place of the file's own fault)."""
    if not os.path.lexists(config_path(home)):
        return None
    return read_config(home)


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
