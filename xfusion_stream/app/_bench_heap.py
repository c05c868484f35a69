"""``xfusion bench``'s heap figure: page faults per freed-and-reallocated block.

Why a figure and not a test: how many pages glibc hands back and maps afresh depends
on the allocator's history in the process (what else was allocated between two
blocks), the C library and the kernel. One machine measured 0 to 1 refaulted blocks
of 4 with the policy, a CI machine 3 of 4 in the same four-block sequence; both were
still growing the heap to its working size. What a
test can check for certain is that the policy is set, and set before the first thread
(tests/bench); what it saves on a given machine is measured here, in fresh processes,
after the heap has reached its working size.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

__all__ = ["heap_refaults"]

#: a block about the size of a full-sensor feature map, allocated by torch as the model
#: does; ``warm`` rounds grow the heap to its working size, ``rounds`` are measured.
#: argv: policy (default | early | late), thread (main | worker), block MiB, warm, rounds
_PROBE = """
import resource, sys, threading
from xfusion_stream._heap import retain_freed_heap
policy, where, mib, warm, rounds = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
if policy == "early":  # as `xfusion` does: before numpy's import starts OpenBLAS's pool
    assert retain_freed_heap()
import torch
threading.Thread(target=lambda: bytearray(1 << 20)).start()  # a thread with an arena
if policy == "late":
    assert retain_freed_heap()
size = mib << 20
out = []
def work():
    for _ in range(warm):
        torch.ones(size, dtype=torch.uint8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        torch.ones(size, dtype=torch.uint8)
    out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
if where == "main":
    work()
else:
    for _ in range(2):  # the worker threads of two runs, one after the other
        t = threading.Thread(target=work); t.start(); t.join()
print(out[-1])
"""


def _faults(policy: str, where: str, mib: int, warm: int, rounds: int) -> int:
    env = {**os.environ, "XFUSION_RETAIN_HEAP": "0"}
    for name in [k for k in env if k.startswith("MALLOC_")]:
        del env[name]  # the probe sets its own policy, nothing inherited
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, policy, where, str(mib), str(warm), str(rounds)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"heap probe ({policy}, {where}) failed: {run.stderr.strip()[-400:]}")
    return int(run.stdout.split()[-1])


def heap_refaults(mib: int = 64, warm: int = 12, rounds: int = 8) -> dict[str, Any]:
    """Blocks mapped afresh per reallocated ``mib`` MiB block (faults / pages of a block):
    1.0 means every block came back as fresh zeroed pages, 0 that the process kept
    them. ``warm`` blocks first: with the policy the heap reaches its working size only
    after several (8 to 9 blocks of 64 MiB measured here), which a model's thousands of
    allocations per window pass at once. ``main_*``: the allocating thread is the main one; ``worker_*``: a thread
    started after another thread already allocated (as a fusion worker beside the
    RunEngine), with the policy set before (``early``, what ``xfusion`` does) or after
    (``late``) that first thread."""
    pages = (mib << 20) // os.sysconf("SC_PAGE_SIZE")
    cases = {
        "main_default": ("default", "main"),
        "main_retained": ("early", "main"),
        "worker_policy_late": ("late", "worker"),
        "worker_policy_early": ("early", "worker"),
    }
    per_block = {
        name: round(_faults(policy, where, mib, warm, rounds) / (pages * rounds), 3)
        for name, (policy, where) in cases.items()
    }
    return {"block_mib": mib, "rounds": rounds, "refaulted_blocks_per_block": per_block}
