"""Errors that name the problem and where it is (file, field, document)."""

from __future__ import annotations

__all__ = [
    "XFusionError",
    "RecordedFormatError",
    "CalibrationError",
    "ConfigError",
    "DownloadError",
    "DocumentError",
]


class XFusionError(Exception):
    """Base of every error this package raises on purpose."""


class RecordedFormatError(XFusionError, ValueError):
    """A recorded-experiment file is malformed.

    The message always reads ``<file>: <field>: <problem>`` so a scientist can open the
    file and fix it.
    """

    def __init__(self, path: object, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: {field}: {problem}")


class CalibrationError(XFusionError, ValueError):
    """Calibration data cannot give a trustworthy result."""


class ConfigError(XFusionError, ValueError):
    """A configuration or profile file is invalid."""


class DownloadError(XFusionError, OSError):
    """A download failed or its content does not match what was expected."""


class DocumentError(XFusionError, ValueError):
    """A bluesky document is not what the fusion pipeline needs."""

    def __init__(self, doc_name: str, uid: str | None, problem: str) -> None:
        self.doc_name = doc_name
        self.uid = uid
        super().__init__(f"{doc_name} {uid or '?'}: {problem}")
