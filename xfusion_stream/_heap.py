"""The process's heap policy, set before its first thread (stdlib only, on purpose).

``core.ThreadBudget`` says why the policy exists. It lives here, outside ``core``, so
that ``xfusion`` can set it before importing anything else: importing numpy starts
OpenBLAS's thread pool, and a thread that allocated before the policy keeps an arena
of its own, which ``M_ARENA_MAX`` set later may even hand to the fusion worker thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator

__all__ = [
    "HEAP_ENV",
    "child_heap_env",
    "heap_policy_threads",
    "inherited_heap_policy",
    "retain_freed_heap",
    "retain_heap_early",
]

#: the same policy for processes started by this one (Dask workers): glibc reads these
#: when a process starts, before any thread has an arena of its own
HEAP_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
    "MALLOC_TRIM_THRESHOLD_": str((1 << 31) - 1),
    "MALLOC_TOP_PAD_": str(64 << 20),
}

# mallopt(3) parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_HEAP_RETAINED = False
_THREADS_AT_POLICY: int | None = None


def retain_freed_heap() -> bool:
    """Keep freed memory in this process (glibc only; once per process); True if set.

    Blocks up to 1 GiB come from the heap instead of fresh mappings, the heap is not
    trimmed back to the kernel, and every thread allocates from one arena (a second
    arena's heap is capped at 64 MiB, so a worker thread's large tensors would be
    mapped afresh each time). Later ``mallopt`` calls or ``MALLOC_*`` variables win.
    """
    global _HEAP_RETAINED, _THREADS_AT_POLICY
    if _HEAP_RETAINED:
        return True
    name = ctypes.util.find_library("c")
    if name is None or not os.uname().sysname == "Linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        return False
    settings = {
        _M_MMAP_THRESHOLD: 1 << 30,
        _M_TRIM_THRESHOLD: (1 << 31) - 1,  # mallopt takes a C int
        _M_TOP_PAD: 64 << 20,
        _M_ARENA_MAX: 1,
    }
    _HEAP_RETAINED = all(mallopt(key, value) == 1 for key, value in settings.items())
    if _HEAP_RETAINED:
        _THREADS_AT_POLICY = _os_threads()
    return _HEAP_RETAINED


def _os_threads() -> int | None:
    """Threads of this process as the kernel counts them (native ones included)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def heap_policy_threads() -> int | None:
    """How many threads the process had when ``retain_freed_heap`` set the policy (None:
    not set, or not countable). 1 is the aim: a thread started before has an arena of
    its own that the policy cannot reach. A process that got it as ``MALLOC_*``
    variables had it from its start, whatever this says."""
    return _THREADS_AT_POLICY if _HEAP_RETAINED else None


def retain_heap_early() -> bool:
    """``retain_freed_heap`` unless ``XFUSION_RETAIN_HEAP=0``: call it before the process
    starts any thread (the CLI does, first thing). Why early: a thread that allocated
    before it has an arena of its own, whose heap cannot grow past 64 MiB, so the
    full-sensor feature maps a fusion worker thread allocates there are mapped afresh
    every window whatever the settings (one 400x250 window measured 4.3 M page faults
    and 8.2 s in the kernel tuned late, 77 k and 0.18 s tuned early)."""
    return env_flag("XFUSION_RETAIN_HEAP", True) and retain_freed_heap()


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "")


def child_heap_env() -> dict[str, str]:
    """The ``MALLOC_*`` variables a child process should start with: the policy, less
    what the user set themselves; none with ``XFUSION_RETAIN_HEAP=0``."""
    if not env_flag("XFUSION_RETAIN_HEAP", True):
        return {}
    return {k: v for k, v in HEAP_ENV.items() if k not in os.environ}


@contextlib.contextmanager
def inherited_heap_policy() -> Iterator[None]:
    """Processes started inside get ``child_heap_env`` (glibc reads it before the child
    runs any code); the parent's environment is restored after. For children whose
    first imports start threads (a multiprocessing spawn child imports its target's
    module first). The variables are process-wide while inside: another thread's child
    started meanwhile gets them too, which does it no harm."""
    added = child_heap_env()
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
