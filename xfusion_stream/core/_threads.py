"""One deliberate budget per process: torch, OpenCV and OpenMP threads, and the heap.

Left alone, torch starts one intra-op thread per core plus an inter-op pool, OpenCV its
own pool of the same size, and OpenMP workers spin while they wait. Beside the fusion
worker and the RunEngine, that is three pools fighting over the same cores: on a 2-core
machine the process measured more time in the kernel than in user code. A budget gives
the model the cores, OpenCV one thread (its calls here are per-frame remaps and flows
between model calls, not concurrent with them), and tells OpenMP to sleep, not spin.

The rest of the kernel time was page faults, not threads (``xfusion bench``'s live
figure, 2 cores: 1.07 M minor faults, sys/user 0.165). glibc hands every block over its
dynamic mmap threshold back to the kernel when freed, so each forward's feature maps
are mapped, zero-filled page by page and unmapped again, frame after frame. With
``retain_heap`` freed blocks stay in the process for the next frame (179 k faults,
sys/user 0.06): the process keeps its peak heap, which the next frame needs anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

__all__ = ["HEAP_ENV", "ThreadBudget", "available_cores", "retain_freed_heap", "retain_heap_early"]

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


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def retain_freed_heap() -> bool:
    """Keep freed memory in this process (glibc only; once per process); True if set.

    Blocks up to 1 GiB come from the heap instead of fresh mappings, the heap is not
    trimmed back to the kernel, and every thread allocates from one arena (a second
    arena's heap is capped at 64 MiB, so a worker thread's large tensors would be
    mapped afresh each time). Later ``mallopt`` calls or ``MALLOC_*`` variables win.
    """
    global _HEAP_RETAINED
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
    return _HEAP_RETAINED


def retain_heap_early() -> bool:
    """``retain_freed_heap`` unless ``XFUSION_RETAIN_HEAP=0``: call it before the process
    starts any thread (the CLI does, first thing). Why early: a thread that allocated
    before it has an arena of its own, whose heap cannot grow past 64 MiB, so the
    full-sensor feature maps a fusion worker thread allocates there are mapped afresh
    every window whatever the settings (one 400x250 window measured 4.3 M page faults
    and 8.2 s in the kernel tuned late, 77 k and 0.18 s tuned early)."""
    return _env_flag("XFUSION_RETAIN_HEAP", True) and retain_freed_heap()


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "")


@dataclass(frozen=True)
class ThreadBudget:
    """Threads for torch's intra-op pool and OpenCV's pool, and the heap policy;
    ``apply`` sets them.

    ``XFUSION_TORCH_THREADS``, ``XFUSION_OPENCV_THREADS`` and ``XFUSION_RETAIN_HEAP``
    override the defaults; explicit arguments override both.
    """

    torch_threads: int
    opencv_threads: int = 1
    retain_heap: bool = True

    def __post_init__(self) -> None:
        if self.torch_threads < 1 or self.opencv_threads < 0:
            raise ValueError(
                f"a thread budget needs torch_threads >= 1 and opencv_threads >= 0, "
                f"got {self.torch_threads} and {self.opencv_threads}"
            )

    @classmethod
    def for_this_process(
        cls,
        torch_threads: int | None = None,
        opencv_threads: int | None = None,
        retain_heap: bool | None = None,
    ) -> ThreadBudget:
        """All available cores to torch, one thread to OpenCV, freed heap kept, unless
        told otherwise."""
        if torch_threads is None:
            torch_threads = int(os.environ.get("XFUSION_TORCH_THREADS", 0)) or available_cores()
        if opencv_threads is None:
            opencv_threads = int(os.environ.get("XFUSION_OPENCV_THREADS", 1))
        if retain_heap is None:
            retain_heap = _env_flag("XFUSION_RETAIN_HEAP", True)
        return cls(torch_threads, opencv_threads, retain_heap)

    def apply(self) -> ThreadBudget:
        """Set the pools and the heap policy now (cheap; safe to call again) and return
        self. The heap policy is process-wide and stays once set.

        OpenMP's wait policy is read when its runtime loads (with torch), so
        ``OMP_WAIT_POLICY`` set here reaches child processes only.
        """
        import cv2
        import torch

        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if self.retain_heap:
            retain_freed_heap()
        if torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        cv2.setNumThreads(self.opencv_threads)
        return self

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "torch_threads": self.torch_threads,
            "opencv_threads": self.opencv_threads,
            "retain_heap": self.retain_heap,
        }
