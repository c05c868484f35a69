"""The public test kit: what the test suite, the benchmarks and users' own tests share.

Never imported by runtime code (import-linter keeps it on top of the layers).
"""

from ._concurrent_runs import ConcurrentRuns, small_run, write_runs_at_once
from ._faults import TcpForwarder, flaky_tiled_client
from ._kit import (
    BEAMLINE_SCENE,
    FUSION_SCENE,
    DocumentLog,
    expected_table,
    feed,
    fused_frames,
    random_window_jobs,
    sim_cameras,
    wait_until,
)
from ._stock_tiled import StockTiled, stock_tiled

__all__ = [
    "BEAMLINE_SCENE",
    "ConcurrentRuns",
    "FUSION_SCENE",
    "DocumentLog",
    "StockTiled",
    "TcpForwarder",
    "expected_table",
    "feed",
    "flaky_tiled_client",
    "fused_frames",
    "random_window_jobs",
    "sim_cameras",
    "small_run",
    "stock_tiled",
    "wait_until",
    "write_runs_at_once",
]
