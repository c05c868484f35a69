"""Idle OpenMP pools outside the fusion worker are freed (libgomp throttles every pool's
spinning once the process's OpenMP threads outnumber its cores)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# torch 2 threads in a fresh process: each thread that runs a parallel operator keeps a
# pool of one more OS thread; /proc/self/task counts them
_SCRIPT = r"""
import json, os, sys, threading
import numpy as np
import torch
from xfusion_stream.core import openmp_released, release_openmp_pool
from xfusion_models.ops import ShimadzuMeasurement
from xfusion_stream.fusion._alignment import AlignmentMonitor

torch.set_num_threads(2)
tasks = lambda: len(os.listdir("/proc/self/task"))
out = {"start": tasks()}
torch.randn(1500, 1500).sum()
out["pooled"] = tasks()
out["released"] = release_openmp_pool()
out["after_release"] = tasks()
with openmp_released():
    torch.randn(1500, 1500).sum()
out["after_block"] = tasks()

rng = np.random.default_rng(0)
hr = rng.random((256, 384), dtype=np.float32)
lr = hr.reshape(64, 4, 96, 4).mean(axis=(1, 3))
monitor = AlignmentMonitor(ShimadzuMeasurement(), tolerance_ns=10)

def document_thread():
    torch.set_num_threads(2)
    before = tasks()
    monitor.add("phantom", 1000, hr)  # measured on the Shimadzu grid: a parallel op
    monitor.add("shimadzu", 1004, lr)
    out["document_thread_grew_by"] = tasks() - before

t = threading.Thread(target=document_thread)
t.start(); t.join()
out["checks"] = len(monitor.checks)
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/task")
def test_pools_outside_the_worker_are_freed_after_their_torch_work():
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["released"] is True  # torch's CPU wheel brings libgomp
    assert out["pooled"] > out["start"]  # the parallel op gathered a pool ...
    assert out["after_release"] == out["start"]  # ... and releasing freed it
    assert out["after_block"] == out["start"]
    assert out["checks"] == 1  # the alignment check ran, and left no pool behind
    assert out["document_thread_grew_by"] == 0


def test_a_session_frees_its_threads_pool_when_built_and_before_each_plan(monkeypatch):
    import xfusion_stream.app._session as session_module

    calls: list[int] = []
    monkeypatch.setattr(session_module, "release_openmp_pool", lambda: calls.append(1) or True)

    class Engine:
        def subscribe(self, cb):
            return 1

        def unsubscribe(self, token):
            pass

        def __call__(self, plan):
            assert len(calls) == 2  # freed before the plan starts
            raise RuntimeError("stop here")

    session = session_module.FusionSession.__new__(session_module.FusionSession)
    threads = session_module.ThreadBudget(1, retain_heap=False)
    monkeypatch.setattr(session_module.ThreadBudget, "apply", lambda self: self)
    session_module.FusionSession.__init__(session, None, None, threads=threads)
    assert calls == [1]
    session._subscription = (Engine(), 0)
    with pytest.raises(RuntimeError, match="stop here"):
        session.run_plan([], RE=session._subscription[0])
