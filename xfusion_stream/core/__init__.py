"""Shared ground of every room: errors, config loading, inter-camera optics, the home config."""

from ._config import (
    ConfigModel,
    format_validation_error,
    load_config,
    read_mapping,
    read_small_text,
)
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
    GeneralSection,
    HomeConfig,
    config_path,
    read_config,
    read_config_if_any,
    update_config,
    write_config,
)
from ._optics import InterCameraTransform
from ._secrets import SecretFilter, mask_secrets
from ._threads import (
    HEAP_ENV,
    ThreadBudget,
    available_cores,
    child_heap_env,
    heap_policy_threads,
    inherited_heap_policy,
    openmp_released,
    release_openmp_pool,
    retain_heap_early,
)

__all__ = [
    "HEAP_ENV",
    "child_heap_env",
    "openmp_released",
    "release_openmp_pool",
    "available_cores",
    "heap_policy_threads",
    "inherited_heap_policy",
    "retain_heap_early",
    "ThreadBudget",
    "CalibrationError",
    "CONFIG_NAME",
    "config_path",
    "read_config_if_any",
    "ConfigError",
    "ConfigModel",
    "DATA_TYPES",
    "DocumentError",
    "DownloadError",
    "format_validation_error",
    "GeneralSection",
    "HomeConfig",
    "InterCameraTransform",
    "load_config",
    "mask_secrets",
    "MODEL_TYPES",
    "read_config",
    "read_mapping",
    "read_small_text",
    "RecordedFormatError",
    "SecretFilter",
    "update_config",
    "write_config",
    "XFusionError",
]
