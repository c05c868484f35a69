"""The ``xfusion`` command line."""

from .._heap import retain_heap_early

# the thread budget's heap policy before anything starts a thread (xfusion_stream._heap
# says why): numpy's import starts OpenBLAS's pool, ophyd's a dozen Channel Access
# threads, each of which would keep an arena of its own
retain_heap_early()

from ._main import build_parser, main  # noqa: E402 - after the heap policy, on purpose

__all__ = ["main", "build_parser"]
