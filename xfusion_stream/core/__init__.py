"""Shared ground of every room: the error hierarchy, inter-camera optics, the home config file."""

from ._errors import (
    CalibrationError,
    ConfigError,
    DocumentError,
    DownloadError,
    RecordedFormatError,
    XFusionError,
)
from ._home_config import (
    CONFIG_NAME,
    DATA_TYPES,
    MODEL_TYPES,
    config_path,
    read_config,
    update_config,
    write_config,
)
from ._optics import InterCameraTransform, hr_to_lr_coordinate, lr_centre_to_hr

__all__ = [
    "CalibrationError",
    "CONFIG_NAME",
    "config_path",
    "ConfigError",
    "DATA_TYPES",
    "DocumentError",
    "DownloadError",
    "hr_to_lr_coordinate",
    "InterCameraTransform",
    "lr_centre_to_hr",
    "MODEL_TYPES",
    "read_config",
    "RecordedFormatError",
    "update_config",
    "write_config",
    "XFusionError",
]
