"""The fast-events benchmark's scoring (benchmarks/_fast_quality.py) on hand-made windows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from xfusion_models.metrics import to_uint8
from xfusion_models.training import ScoringWindow

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
fq = pytest.importorskip("_fast_quality")


def _windows(n: int = 6) -> tuple[list[ScoringWindow], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    windows, masks = [], []
    for t in range(1, n + 1):
        truth = rng.uniform(0.3, 0.7, (32, 32)).astype(np.float32)
        lr = truth.reshape(8, 4, 8, 4).mean(axis=(1, 3))
        noisy = np.clip(rng.poisson(lr * 1000) / 1000, 0, 1).astype(np.float32)
        hq = np.stack([truth * 0.9, truth * 1.1]).astype(np.float32)
        windows.append(ScoringWindow(np.stack([noisy] * 3), hq, truth, t, 0, 20))
        mask = np.zeros((32, 32), bool)
        if t % 2:
            mask[8:16, 8:20] = True
        masks.append(mask)
    return windows, masks


def test_masked_psnr_is_taken_over_the_mask_only_and_far_frames_are_grouped() -> None:
    windows, masks = _windows()
    preds = []
    for w in windows:
        pred = w.truth.copy()
        pred[8:16, 8:20] += 0.2  # wrong only where an event would be
        preds.append(pred)
    report = fq.fast_report(preds, windows, masks, ratio=4)
    assert report["n_frames"] == 6 and report["n_frames_with_events"] == 3
    w, m = windows[0], masks[0]
    diff = to_uint8(preds[0]).astype(float) - to_uint8(w.truth).astype(float)
    expected = 10 * np.log10(255.0**2 / np.mean(diff[m] ** 2))
    assert report["masked"]["fused"] == pytest.approx(expected, abs=0.01)
    assert report["whole"]["fused"] > report["masked"]["fused"] + 5
    far = report["far_from_phantom"]
    assert far["n_frames"] == 2 and far["min_distance"] == 5  # t = 5 and 6
    table = report["psnr_by_phantom_distance"]
    assert sorted(table, key=int) == ["1", "2", "3", "4", "5", "6"]
    assert table["2"]["fused"]["masked"] is None and table["1"]["n_frames"] == 1
    assert report["gain_db"]["masked_vs_bicubic"] == pytest.approx(
        report["masked"]["fused"] - report["masked"]["bicubic"], abs=0.02
    )


def test_residual_of_the_truth_is_the_tolerance_and_a_wrong_state_exceeds_it() -> None:
    windows, masks = _windows()
    right = fq.fast_report([w.truth for w in windows], windows, masks, ratio=4)
    residual = right["shimadzu_residual"]
    assert residual["fused"]["rms"] == residual["truth"]["rms"] == residual["tolerance"]["rms"]
    assert 0.5 < residual["truth"]["rms"] < 2.0, "pure shot noise is about 1 in noise units"
    assert all(residual["fused_within_tolerance"].values())
    wrong = [w.truth * 0.8 for w in windows]  # another state: 20 % darker everywhere
    bad = fq.fast_report(wrong, windows, masks, ratio=4)["shimadzu_residual"]
    assert bad["fused"]["rms"] > 3 * residual["truth"]["rms"]
    assert not any(bad["fused_within_tolerance"].values())


def test_quality_fast_scenario_end_to_end(capsys) -> None:
    import json

    import quality
    import torch

    argv = ["--scenario", "fast", "--clips", "1", "--frames", "23", "--shape", "16", "16"]
    threads = torch.get_num_threads()
    try:
        assert quality.main(argv + ["--threads", "1"]) == 0
        result = json.loads(capsys.readouterr().out)
        with pytest.raises(SystemExit, match="training set's seed"):
            quality.main(["--seed", str(result["training_set_seed"]), "--threads", "1"])
    finally:
        torch.set_num_threads(threads)  # quality.main sets it for the whole process
    fast = result["fast"]
    # Phantom frames at 0 and 20 bracket Shimadzu frames 1..19; all scored (stride 1)
    assert fast["n_frames"] == 19 and result["test_set"]["stride"] == 1
    assert result["test_set"]["fast_events"]["keyholes"] == 1
    assert set(fast["whole"]) == set(fast["masked"]) == {"fused", "bicubic", "nearest"}
    assert fast["n_frames_with_events"] > 0 and 0 < fast["mask_fraction"] < 0.5
    assert fast["far_from_phantom"]["n_frames"] == 19 - 8  # distances 1..4 from either end
    assert "tolerance" in fast["shimadzu_residual"]
