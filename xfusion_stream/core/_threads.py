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

import contextlib
import ctypes
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._heap import (
    HEAP_ENV,
    child_heap_env,
    env_flag,
    heap_policy_threads,
    inherited_heap_policy,
    retain_freed_heap,
    retain_heap_early,
)

__all__ = [
    "HEAP_ENV",
    "child_heap_env",
    "ThreadBudget",
    "available_cores",
    "heap_policy_threads",
    "inherited_heap_policy",
    "openmp_released",
    "release_openmp_pool",
    "retain_freed_heap",
    "retain_heap_early",
]


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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
            retain_heap = env_flag("XFUSION_RETAIN_HEAP", True)
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

    def as_dict(self) -> dict[str, int | bool | None]:
        return {
            "torch_threads": self.torch_threads,
            "opencv_threads": self.opencv_threads,
            "retain_heap": self.retain_heap,
            "heap_policy_set_with_threads": heap_policy_threads(),
        }


#: omp_pause_soft (OpenMP 5.0): free the runtime's resources, keep its settings
_OMP_PAUSE_SOFT = 1


@functools.cache
def _openmp_runtime() -> ctypes.CDLL | None:
    """The OpenMP runtime torch loaded, when it can free a thread's pool (libgomp)."""
    import torch

    for path in sorted((Path(torch.__file__).parent / "lib").glob("libgomp*.so*")):
        try:  # the loader hands back the copy torch already loaded
            runtime = ctypes.CDLL(str(path))
        except OSError:
            continue
        if hasattr(runtime, "omp_pause_resource_all"):
            return runtime
    return None


def release_openmp_pool() -> bool:
    """Free the OpenMP worker threads the calling thread has gathered, if any.

    Every thread that ever ran a parallel torch operator keeps a pool of idle OpenMP
    threads. libgomp counts them all, and once they outnumber the cores it lets waiting
    threads spin only ~100 times before sleeping, so the fusion worker's threads sleep
    and wake between every small operator: measured on 2 cores, a worker fused 15-30%
    slower, cores 83% busy instead of 99%, while the main thread's pool from loading
    the model sat idle. Threads that do torch work beside fusion (loading, warm-up, the
    RunEngine's alignment checks) call this when done. False where the runtime is not
    libgomp or cannot pause (nothing to do or nothing possible).
    """
    runtime = _openmp_runtime()
    return runtime is not None and runtime.omp_pause_resource_all(_OMP_PAUSE_SOFT) == 0


@contextlib.contextmanager
def openmp_released() -> Iterator[None]:
    """Torch work in a thread other than the fusion worker's: its pool is freed after."""
    try:
        yield
    finally:
        release_openmp_pool()
