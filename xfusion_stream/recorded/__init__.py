"""Recorded-experiment folders (the original's "actual" layout): read, validate, write.

A case holds one Shimadzu INI, ``TIFF16/<subdir>/*.tif`` Shimadzu frames, and one
Phantom folder with an XML header and ``img_NNNNNN.tif`` frames. Everything malformed
raises :class:`xfusion_stream.core.RecordedFormatError` naming file and field.
"""

from ._case import DEFAULT_START, RecordedCase, read_case, write_case
from ._frames import frame_header, read_frame, read_tiff, write_frame
from ._phantom_xml import (
    PhantomTiming,
    format_phantom_date,
    format_phantom_time,
    parse_phantom_date,
    parse_phantom_time,
    read_phantom_xml,
)
from ._shimadzu_ini import ShimadzuTiming, parse_rec_speed, read_shimadzu_ini

__all__ = [
    "DEFAULT_START",
    "PhantomTiming",
    "RecordedCase",
    "ShimadzuTiming",
    "format_phantom_date",
    "format_phantom_time",
    "frame_header",
    "parse_phantom_date",
    "parse_phantom_time",
    "parse_rec_speed",
    "read_case",
    "read_frame",
    "read_tiff",
    "read_phantom_xml",
    "read_shimadzu_ini",
    "write_case",
    "write_frame",
]
