"""The figures of ``xfusion bench``: each measured thing is real and each check can fail."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from xfusion_stream.app._bench import TARGETS, _pipeline_figures, _targets_met
from xfusion_stream.app._bench_model import (
    flop_efficiency,
    matmul_peak,
    streaming_speedup,
    synthetic_job,
    time_windows,
)
from xfusion_stream.app._bench_persistence import (
    PERSISTENCE_PATHS,
    SHIPPED_RUNS,
    PersistenceCase,
    persistence_rates,
)
from xfusion_stream.app._bench_scaling import synthetic_run
from xfusion_stream.core import ThreadBudget
from xfusion_stream.fusion import FusionModel


@pytest.fixture(scope="module")
def tiny() -> FusionModel:
    import xfusion_models as xm

    torch.manual_seed(0)
    net = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4).eval()
    return FusionModel(net, "tiny_hrwarp", "edvr_stf", "0" * 64, torch.device("cpu"))


def test_caches_change_no_fused_frame_and_are_used(tiny):
    jobs = synthetic_run((12, 16), 5, phantom_every=5)  # one Phantom pair for all five
    figures = streaming_speedup(tiny, jobs, segments=3)
    assert figures["identical_output"] is True
    assert figures["windows"] == 5 and figures["segments"] == 3  # stretches of 2, 2, 1
    assert figures["streaming_speedup"] > 0
    # the cached path really reuses features: 3 LR + 2 HR the first window, 1 LR after
    _, cached = time_windows(tiny, jobs, cached=True)
    assert len(cached) == 5 and all(img.shape == (48, 64) for img in cached)
    # in one stretch, the same comparison
    whole = streaming_speedup(tiny, jobs, segments=1)
    assert whole["segments"] == 1 and whole["identical_output"] is True
    # by default the two take turns window by window
    turns = streaming_speedup(tiny, jobs)
    assert turns["segments"] == 5 and turns["identical_output"] is True


def test_flop_efficiency_counts_the_forward(tiny):
    peak = matmul_peak(torch.device("cpu"), n=256, repeats=2)
    small = flop_efficiency(tiny, synthetic_job((8, 8)), peak, repeats=1)
    large = flop_efficiency(tiny, synthetic_job((16, 16)), peak, repeats=1)
    assert peak > 1e8
    assert 0 < small["efficiency"] < 2
    # convolutions scale with the pixels: four times the pixels, about four times the FLOPs
    assert 3.5 < large["gflop_per_window"] / small["gflop_per_window"] < 4.5
    # the peak measured beside the window, one matmul per timed window
    beside = flop_efficiency(tiny, synthetic_job((8, 8)), repeats=2, matmul_n=128)
    assert beside["peak_gflops"] > 0.1 and beside["gflop_per_window"] == small["gflop_per_window"]
    # within what the JSON's rounding allows: efficiency to 4 places, GFLOP/s to 2 (a
    # loaded machine makes the tiny window slow, and 0.0014 vs 0.00137 is rounding)
    rounding = 5e-5 + 0.005 / beside["peak_gflops"] * (1 + beside["efficiency"])
    assert beside["efficiency"] == pytest.approx(
        beside["achieved_gflops"] / beside["peak_gflops"], rel=0.02, abs=rounding
    )


def test_persistence_measures_both_paths_of_every_case(tmp_path):
    cases = {
        "raw": PersistenceCase((25, 40), "camera", 3),
        "fused": PersistenceCase((32, 48), "fused", 2),
    }
    out = persistence_rates(tmp_path, cases)
    assert out["paths"] == PERSISTENCE_PATHS and set(out["paths"]) == {"shipped", "inline", "h5py"}
    assert set(out["cases"]) == {"raw", "fused"}
    for label, case in cases.items():
        rates = out["cases"][label]
        assert rates["shape"] == list(case.shape) and rates["frames"] == case.frames
        assert rates["dtype"] == ("uint16" if label == "raw" else "float32")
        shipped, inline = rates["shipped"], rates["inline"]
        # NaN: 0MQ lost messages; read_back: Tiled serves the last frame from the file
        for value in (rates["h5py_fps"], shipped["fps"], shipped["zmq_fps"], *inline.values()):
            assert math.isfinite(value) and value > 0, (label, rates)
        assert math.isfinite(shipped["one_frame_run_s"]) and shipped["one_frame_run_s"] > 0
        # NaN when a few frames ran faster than one (noise on tiny cases): no timing asserts
        assert math.isnan(shipped["sustained_fps"]) or shipped["sustained_fps"] > 0
        assert shipped["read_back"] is True, label
        ratio = shipped["fps"] / rates["h5py_fps"]  # rounded to 4 places in the JSON
        assert shipped["over_h5py"] == pytest.approx(ratio, rel=0.01, abs=1e-4)
        assert set(inline) == {"tiled_fps", "zmq_fps", "tiled_over_h5py", "zmq_over_h5py"}
    # camera: a StreamResource once, then a StreamDatum and an event per frame (+ run docs)
    assert out["cases"]["raw"]["shipped"]["documents_per_frame"] == pytest.approx(
        (3 * 2 + 4) / 3, abs=0.01
    )
    # the fused frame files sit beside the burst files, one per fused run (2 x 1 frame,
    # then SHIPPED_RUNS of the case, whose median is the figure)
    assert len(list((tmp_path / "persistence-frames").glob("fused_*.h5"))) == 2 + SHIPPED_RUNS
    for label in cases:
        shipped = out["cases"][label]["shipped"]
        each = sorted(shipped["fps_each"])
        assert len(each) == SHIPPED_RUNS and all(math.isfinite(v) and v > 0 for v in each)
        assert shipped["fps"] == pytest.approx(each[SHIPPED_RUNS // 2], rel=0.01)


def _figures(**changes):
    raw = {"shipped": {"fps": 250.0, "read_back": True}, "inline": {"tiled_fps": 50.0}}
    out = {
        "efficiency": {"a": {"efficiency": 0.6}},
        "streaming": {"streaming_speedup": 1.6, "identical_output": True},
        "pipeline": {"pipeline_ratio": 0.95, "sys_over_user": 0.05},
        "persistence": {"cases": {"raw_400x250_uint16": raw}},
        "precision": {"psnr_change_db": -0.05},
        "scaling": {"linear": True},
    }
    for path, value in changes.items():
        section, key = path.split("__")
        out[section][key] = value
    return out


def _live(frames: int, wall: float, status: str = "success") -> SimpleNamespace:
    """What ``_pipeline_figures`` reads of a live run: ``frames`` windows in ``wall`` s."""
    result = SimpleNamespace(frames=frames, model_seconds=0.1 * frames, exit_status=status)
    return SimpleNamespace(
        result=result,
        jobs=[None] * frames,
        wall_s=wall,
        user_s=1.5 * wall,
        sys_s=0.01 * wall,
        t0=0.0,
        fused_at=[0.5, wall - 0.1],
        acquired_s=wall / 2,
        memory_render_s=0.2,
        minor_faults=10,
    )


def test_the_pipeline_ratio_pools_the_live_and_bare_pairs():
    """Each live run against the bare model run after it, and all of them pooled: the
    pooled ratio is frames over total time on both sides, not a mean of ratios."""
    runs = [_live(100, 25.0), _live(100, 20.0)]
    bare = [(20.0, 38.0), (20.0, 39.0)]  # (wall, cpu) of the bare model on each run's windows
    got = _pipeline_figures(runs, bare)
    assert got["pipeline_ratio_runs"] == [0.8, 1.0]
    assert got["pipeline_ratio"] == round((200 / 45.0) / (200 / 40.0), 3)
    assert got["frames_fused"] == 200 and got["live_wall_s"] == [25.0, 20.0]
    assert got["bare_model_runs_s"] == [20.0, 20.0]
    assert got["exit_status"] == "success"
    assert got["sys_over_user"] == round(0.01 / 1.5, 4)
    failed = _pipeline_figures([_live(100, 25.0), _live(90, 20.0, "fail")], bare)
    assert failed["exit_status"] == "fail"


def test_targets_are_judged_one_by_one():
    assert all(_targets_met(_figures()).values())
    assert not _targets_met(_figures(streaming__identical_output=False))["streaming_speedup"]
    assert not _targets_met(_figures(pipeline__sys_over_user=0.5))["sys_over_user"]
    assert not _targets_met(_figures(precision__psnr_change_db=-0.2))["precision"]
    assert not _targets_met(_figures(efficiency__b={"efficiency": 0.1}))["efficiency"]
    assert not _targets_met(_figures(scaling__linear=False))["scaling_linear"]
    assert TARGETS["pipeline_ratio"] == 0.9


def test_persistence_is_judged_on_the_shipped_path():
    slow = {"shipped": {"fps": 150.0, "read_back": True}, "inline": {"tiled_fps": 900.0}}
    unread = {"shipped": {"fps": 900.0, "read_back": False}, "inline": {"tiled_fps": 900.0}}
    for raw in (slow, unread):
        figures = _figures(persistence__cases={"raw_400x250_uint16": raw})
        assert not _targets_met(figures)["persistence"]


def test_thread_budget_sets_torch_and_opencv(monkeypatch):
    import cv2

    before = (torch.get_num_threads(), cv2.getNumThreads())
    monkeypatch.setenv("XFUSION_TORCH_THREADS", "1")
    budget = ThreadBudget.for_this_process()
    assert budget.torch_threads == 1 and budget.opencv_threads == 1
    assert ThreadBudget.for_this_process(torch_threads=2).torch_threads == 2
    try:
        budget.apply()
        assert torch.get_num_threads() == 1
        assert cv2.getNumThreads() == 1
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
    with pytest.raises(ValueError, match="torch_threads"):
        ThreadBudget(0)


def test_thread_budget_reads_the_heap_policy(monkeypatch):
    assert ThreadBudget(1).retain_heap is True
    monkeypatch.setenv("XFUSION_RETAIN_HEAP", "0")
    assert ThreadBudget.for_this_process().retain_heap is False
    assert ThreadBudget.for_this_process(retain_heap=True).retain_heap is True
    assert ThreadBudget.for_this_process(retain_heap=True).as_dict()["retain_heap"] is True


_POLICY_THREADS = """
import os, sys, threading
if sys.argv[1] == "cli":
    import xfusion_stream.cli  # what `xfusion` imports first
else:  # a library user that tunes after a thread exists
    threading.Thread(target=threading.Event().wait, daemon=True).start()
    from xfusion_stream._heap import retain_freed_heap
    retain_freed_heap()
from xfusion_stream._heap import heap_policy_threads
print(heap_policy_threads(), len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt, /proc")
@pytest.mark.parametrize("env", [{}, {"XFUSION_RETAIN_HEAP": "0"}], ids=["default", "off"])
def test_the_cli_sets_the_heap_policy_before_any_thread(env):
    """A thread that allocates before the policy keeps an arena of its own, whose large
    blocks are mapped afresh every window (core._threads): `xfusion` must set it while
    the process has one thread, although importing its commands starts a dozen."""

    def run(how: str) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", _POLICY_THREADS, how],
            capture_output=True, text=True, timeout=120, env={**os.environ, **env},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        policy, threads = out.stdout.split()
        return policy, int(threads)

    policy, threads_after_import = run("cli")
    assert policy == ("None" if env else "1")
    assert threads_after_import > 1  # the import did start threads: the order matters
    if not env:
        assert run("late")[0] == "2"  # the count sees a thread started before


def test_children_inherit_the_heap_policy_and_the_parent_keeps_its_environment(monkeypatch):
    from xfusion_stream.core import HEAP_ENV, inherited_heap_policy

    for name in HEAP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALLOC_TOP_PAD_", "4096")  # the user's own setting wins
    with inherited_heap_policy():
        seen = dict(os.environ)
    assert seen["MALLOC_ARENA_MAX"] == "1" and seen["MALLOC_TOP_PAD_"] == "4096"
    assert "MALLOC_ARENA_MAX" not in os.environ and os.environ["MALLOC_TOP_PAD_"] == "4096"
    monkeypatch.setenv("XFUSION_RETAIN_HEAP", "0")
    with inherited_heap_policy():
        assert "MALLOC_ARENA_MAX" not in os.environ


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_heap_figure_measures_every_case():
    """The bench's heap figure (its numbers depend on the machine; tests/bench checks
    what they mean, the bench reports them). glibc maps every block over 32 MiB afresh
    without the policy, on any machine."""
    from xfusion_stream.app._bench_heap import heap_refaults

    figure = heap_refaults(mib=40, warm=1, rounds=2)
    per_block = figure["refaulted_blocks_per_block"]
    assert set(per_block) == {
        "main_default", "main_retained", "worker_policy_late", "worker_policy_early"
    }  # fmt: skip
    assert all(0.0 <= v <= 1.5 for v in per_block.values())
    assert per_block["main_default"] >= 0.9


def test_scaling_table_fuses_each_size_and_length(tiny):
    from xfusion_stream.app._bench_scaling import LINEAR_EXPONENT_MAX, scaling_table

    table = scaling_table(tiny, shapes=((8, 12), (16, 24)), lengths=(6, 12),
                          length_shape=(8, 12), windows_per_shape=4)  # fmt: skip
    assert [r["shimadzu_shape"] for r in table["by_pixels"]] == [[8, 12], [16, 24]]
    assert [r["frames"] for r in table["by_burst_length"]] == [6, 12]
    assert all(r["s_per_frame"] > 0 for r in table["by_pixels"] + table["by_burst_length"])
    worst = max(table["pixel_exponent"], table["length_exponent"])
    assert table["linear"] is (worst <= LINEAR_EXPONENT_MAX)


def test_the_scaling_exponent_tells_linear_from_quadratic():
    from xfusion_stream.app._bench_scaling import _exponent

    sizes = [32, 64, 128, 256]
    assert _exponent(sizes, [0.1 * n for n in sizes]) == pytest.approx(1.0)
    assert _exponent(sizes, [0.1 * n + 1e-3 * n * n for n in sizes]) > 1.2
    assert _exponent(sizes, [5.0 + 0.1 * n for n in sizes]) < 1.0  # a fixed cost per run


def test_synthetic_runs_share_frames_like_a_continuous_run():
    from xfusion_stream.app._bench_scaling import synthetic_run

    jobs = synthetic_run((8, 12), 9, phantom_every=4)
    assert [j.lr for j in jobs[:2]] == [(0, 1, 2), (1, 2, 3)]
    assert jobs[0].lr_frames[1] is jobs[1].lr_frames[0]  # one frame, seen by three windows
    assert [j.hr for j in jobs[3:5]] == [(0, 1), (1, 2)]
    assert len({id(f) for j in jobs for f in j.lr_frames}) == 9 + 2


def test_the_full_burst_figure_times_each_model_and_is_judged_on_its_own_burst(tiny):
    from xfusion_stream.app._bench import _burst_target
    from xfusion_stream.app._bench_burst import full_burst

    figure = full_burst({"a": tiny, "b": tiny}, shape=(8, 12), frames=5, profiled_windows=2)
    assert set(figure["models"]) == {"a", "b"} and figure["frames"] == 5
    for row in figure["models"].values():
        # burst_s is rounded to the millisecond: compare on its scale (a tiny burst of
        # 36 ms made frames/s read 1 % off its rounded time)
        assert row["burst_s"] > 0 and 5 / row["frames_per_s"] == pytest.approx(
            row["burst_s"], abs=6e-4
        )
        assert sum(row["stage_shares"].values()) == pytest.approx(1.0, abs=0.01)
    assert _burst_target({"full_burst": figure}) == {}  # not the burst the target names
    named = {"frames": 256, "shimadzu_shape": [250, 400]}
    for seconds, met in ((4.2, True), (6.0, False)):
        models = {"edvr_stf_paper": {"burst_s": seconds}}
        assert _burst_target({"full_burst": {**named, "models": models}}) == {
            "paper_burst_under_5s": met
        }


def test_each_step_leaves_the_figures_so_far_and_a_failing_step_its_name(tmp_path):
    """What a one-shot device run relies on: a run cut short still leaves its figures."""
    import json

    from xfusion_stream.app._bench import _Steps

    partial = tmp_path / "bench_partial.json"
    steps = _Steps(["matmul", "live", "streaming"], progress=False, partial=partial)
    out = {"device": "cuda"}
    steps.track(out)
    with steps.step("matmul"):
        out["matmul_gflops"] = 51234.5
    written = json.loads(partial.read_text())
    assert written == {
        "device": "cuda",
        "matmul_gflops": 51234.5,
        "partial": {"completed": ["matmul"]},
    }
    with pytest.raises(RuntimeError, match="out of memory"), steps.step("live"):
        out["pipeline"] = {"half": "done"}
        raise RuntimeError("CUDA out of memory")
    written = json.loads(partial.read_text())
    assert written["partial"] == {
        "completed": ["matmul"],
        "failed": "live",
        "error": "RuntimeError: CUDA out of memory",
    }
    assert written["matmul_gflops"] == 51234.5 and not list(tmp_path.glob("*.tmp"))
    steps.close()


def test_a_whole_burst_figure_runs_right_after_the_matmul():
    from xfusion_stream.app._bench import BenchSettings, _step_names

    cpu = _step_names(BenchSettings(full_burst_frames=0))
    gpu = _step_names(BenchSettings(device="cuda", full_burst_frames=256))
    assert "full burst" not in cpu and cpu[0] == "matmul" and cpu[-1] == "heap"
    assert gpu[:2] == ["matmul", "full burst"] and gpu[2:] == cpu[1:]


def test_a_failing_step_keeps_its_own_error_when_the_partial_file_cannot_be_written(tmp_path):
    from xfusion_stream.app._bench import _Steps

    partial = tmp_path / "gone" / "bench_partial.json"  # its folder vanished mid-run
    steps = _Steps(["live"], progress=False, partial=partial)
    steps.track({})
    with pytest.raises(RuntimeError, match="device lost") as info, steps.step("live"):
        raise RuntimeError("device lost")
    assert any("not written" in note for note in getattr(info.value, "__notes__", []))
    steps.close()


def test_the_full_burst_warms_each_model_before_timing_it(tiny, monkeypatch):
    """It runs right after the matmul on a GPU: a model's first window (kernels loading)
    is kept out of the burst's time, as a fusion server is warm before a burst."""
    import xfusion_stream.app._bench_burst as burst

    order = []
    real_time_windows, real_timed_run = burst.time_windows, burst.timed_run

    def warm(model, jobs, *, cached):
        order.append(("warm", len(jobs), cached))
        return real_time_windows(model, jobs, cached=cached)

    def timed(model, jobs, skip):
        order.append(("burst", len(jobs), skip))
        return real_timed_run(model, jobs, skip)

    monkeypatch.setattr(burst, "time_windows", warm)
    monkeypatch.setattr(burst, "timed_run", timed)
    burst.full_burst({"a": tiny, "b": tiny}, shape=(8, 12), frames=4, profiled_windows=1)
    assert order == [("warm", 1, False), ("burst", 4, 2)] * 2
