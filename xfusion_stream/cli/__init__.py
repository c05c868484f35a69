"""The ``xfusion`` command line."""

from ..core import retain_heap_early

# the thread budget's heap policy before anything starts a thread (core._threads says
# why): importing the commands imports ophyd, whose Channel Access client starts a dozen
# threads at import, each of which would keep an arena of its own
retain_heap_early()

from ._main import build_parser, main  # noqa: E402 - after the heap policy, on purpose

__all__ = ["main", "build_parser"]
