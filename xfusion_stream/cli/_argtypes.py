"""Argument types shared by the commands: a bad value is argparse's one-line error."""

from __future__ import annotations

import argparse

__all__ = [
    "finite_float",
    "non_negative_float",
    "non_negative_int",
    "port",
    "positive_float",
    "positive_int",
    "process_count",
]


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is not >= {least}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1)


def process_count(text: str) -> int:
    """Worker processes: at least 1, at most 4 per core (``--workers 99999`` started that
    many interpreters and left the machine thrashing)."""
    from ..core import available_cores

    n = _whole(text, 1)
    cores = available_cores()
    if n > 4 * cores:
        raise argparse.ArgumentTypeError(f"{n} processes on {cores} cores; at most {4 * cores}")
    return n


def non_negative_int(text: str) -> int:
    return _whole(text, 0)


def finite_float(text: str) -> float:
    """A finite number: ``nan`` and ``inf`` parse as floats and then pass every comparison
    the wrong way (a timeout of nan never fires and never waits)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a positive number")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not >= 0")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"{value}: not a port (0 picks a free one)")
    return value
