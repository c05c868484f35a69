"""``benchmarks/bench_event_loop.py`` (``xfusion bench event_loop``): one JSON line with
the stall beside its target, on a tiny burst. Its own process (the CA client reads its
ports once per process); no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_event_loop.py"


@pytest.mark.timeout(120)
def test_bench_event_loop_prints_its_json():
    argv = [sys.executable, str(SCRIPT), "--bursts", "1", "--frames", "8",
            "--shimadzu-shape", "16", "24", "--tiled", "embedded"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=100, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = proc.stdout.strip().splitlines()
    result = json.loads(line)
    assert result["benchmark"] == "event_loop" and result["target_ms"] == 50.0
    for measured in (result, result["without_raw_writer"]):
        assert len(measured["burst_s"]) == 1 and measured["probes"] > 0
        assert measured["max_stall_ms"] >= measured["p99_stall_ms"] >= 0
        for phase in ("acquiring", "recording"):  # the stall split at the first StreamResource
            assert 0 <= measured[f"max_stall_{phase}_ms"] <= measured["max_stall_ms"]
    assert isinstance(result["within_target"], bool) and result["tiled"] == "embedded"
    assert isinstance(result["within_target_acquiring"], bool)
    assert "burst 1/1" in proc.stderr  # progress on stderr


def test_bench_finds_it_without_the_prefix():
    from xfusion_stream.cli._bench import _script_name

    available = ["bench_event_loop", "soak"]
    assert _script_name("event_loop", available) == "bench_event_loop"
    assert _script_name("soak", available) == "soak"
