"""One deliberate thread budget per process: torch, OpenCV and OpenMP together.

Left alone, torch starts one intra-op thread per core plus an inter-op pool, OpenCV its
own pool of the same size, and OpenMP workers spin while they wait. Beside the fusion
worker and the RunEngine, that is three pools fighting over the same cores: on a 2-core
machine the process measured more time in the kernel than in user code. A budget gives
the model the cores, OpenCV one thread (its calls here are per-frame remaps and flows
between model calls, not concurrent with them), and tells OpenMP to sleep, not spin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ThreadBudget", "available_cores"]


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadBudget:
    """Threads for torch's intra-op pool and OpenCV's pool; ``apply`` sets both.

    ``XFUSION_TORCH_THREADS`` and ``XFUSION_OPENCV_THREADS`` override the defaults;
    explicit arguments override both.
    """

    torch_threads: int
    opencv_threads: int = 1

    def __post_init__(self) -> None:
        if self.torch_threads < 1 or self.opencv_threads < 0:
            raise ValueError(
                f"a thread budget needs torch_threads >= 1 and opencv_threads >= 0, "
                f"got {self.torch_threads} and {self.opencv_threads}"
            )

    @classmethod
    def for_this_process(
        cls, torch_threads: int | None = None, opencv_threads: int | None = None
    ) -> ThreadBudget:
        """All available cores to torch, one thread to OpenCV, unless told otherwise."""
        if torch_threads is None:
            torch_threads = int(os.environ.get("XFUSION_TORCH_THREADS", 0)) or available_cores()
        if opencv_threads is None:
            opencv_threads = int(os.environ.get("XFUSION_OPENCV_THREADS", 1))
        return cls(torch_threads, opencv_threads)

    def apply(self) -> ThreadBudget:
        """Set the pools now (cheap; safe to call again) and return self.

        OpenMP's wait policy is read when the runtime starts, so ``OMP_WAIT_POLICY`` is
        only set for child processes here; the CLI sets it before torch is imported.
        """
        import cv2
        import torch

        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        cv2.setNumThreads(self.opencv_threads)
        return self

    def as_dict(self) -> dict[str, int]:
        return {"torch_threads": self.torch_threads, "opencv_threads": self.opencv_threads}
