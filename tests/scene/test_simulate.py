"""`xfusion simulate` end to end: recorded folders that read back, and a usable truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xfusion_stream.cli import main
from xfusion_stream.recorded import read_case, read_frame
from xfusion_stream.simulation import g400_grid_image

ARGS = ["--frames", "48", "--shimadzu-shape", "16", "24", "--seed", "11"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sim") / "out"
    code = main(["simulate", "--out", str(out), "--json", *ARGS])
    assert code == 0
    return out, json.loads((out / "truth.json").read_text())


def test_cli_json_result(simulated, capsys) -> None:
    out, _ = simulated
    # a second run into the same folder refuses to overwrite and names the path
    code = main(["simulate", "--out", str(out), "--json", *ARGS])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(line)
    assert code == 2 and result["ok"] is False and "sim_experiment" in result["error"]


def test_experiment_case_reads_back(simulated) -> None:
    out, truth = simulated
    case = read_case(out / "sim_experiment")
    assert case.shimadzu.n_frames == 48 and case.shimadzu.frame_ns == 200
    assert case.shimadzu_shape == (16, 24) and case.phantom_shape == (64, 96)
    scene = truth["experiment"]["scene"]
    np.testing.assert_array_equal(case.shimadzu.times_ns, scene["shimadzu_times_ns"])
    np.testing.assert_array_equal(case.phantom.frame_numbers, scene["phantom_frame_numbers"])
    np.testing.assert_array_equal(case.phantom.e_flags, scene["phantom_e_flags"])
    assert case.phantom.frame_rate_hz == pytest.approx(250e3)
    # recorded Phantom times (10 ns resolution) still pair with Shimadzu frames within 10 ns
    times = case.phantom.times_ns
    for i, k in enumerate(scene["phantom_shimadzu_index"]):
        if k >= 0:
            assert abs(times[i] - case.shimadzu.times_ns[k]) < 10
    assert np.abs(times - np.asarray(scene["phantom_times_ns"])).max() <= 5


def test_ground_truth_matches_cameras(simulated) -> None:
    out, truth = simulated
    gt = tifffile.imread(out / truth["ground_truth"]["file"])
    assert gt.shape == (48, 64, 96) and gt.dtype == np.uint16
    assert gt.shape == tuple(truth["ground_truth"]["shape"])
    case = read_case(out / "sim_experiment")
    pairing = truth["experiment"]["scene"]["phantom_shimadzu_index"]
    i = pairing.index(20)
    phantom = read_frame(case.phantom_frames[i]).astype(np.float64)
    paired = np.corrcoef(phantom.ravel(), gt[20].ravel())[0, 1]
    other = np.corrcoef(phantom.ravel(), gt[0].ravel())[0, 1]
    assert paired > 0.9 and paired > other  # the held-out truth is the right instant
    assert (out / truth["preview"]).stat().st_size > 0
    assert (out / truth["movie"]).stat().st_size > 0


def test_calibration_case_shows_the_grid(simulated) -> None:
    out, truth = simulated
    case = read_case(out / "sim_calibration_grid")
    mean = np.mean([read_frame(p) for p in case.phantom_frames], axis=0)
    cal = truth["calibration"]["scene"]["config"]
    pitch = truth["calibration"]["grid_pitch_px"]
    assert pitch == pytest.approx(62.0 / 3.2)
    expected = g400_grid_image(
        (64, 96), pitch, cal["grid_bar_fraction"], cal["grid_angle_deg"], cal["grid_offset_px"]
    )
    assert np.corrcoef(mean.ravel(), expected.ravel())[0, 1] > 0.8
    assert truth["transform"]["mirror"] is True and truth["pixel_ratio"] == 4


@pytest.fixture(scope="module")
def simulated_fast(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sim_fast") / "out"
    argv = ["--frames", "24", "--shimadzu-shape", "12", "16", "--seed", "3"]
    code = main(["simulate", "--out", str(out), "--json", "--fast-events", "mixed", *argv])
    assert code == 0
    return out, json.loads((out / "truth.json").read_text())


def test_simulate_writes_one_event_mask_per_shimadzu_frame(simulated_fast) -> None:
    from xfusion_stream.simulation import FAST_EVENT_PRESETS, Scene, SceneConfig, read_event_masks

    out, truth = simulated_fast
    record = truth["experiment"]["scene"]
    assert record["config"]["fast_events"] == FAST_EVENT_PRESETS["mixed"].model_dump()
    assert {e["kind"] for e in record["fast_events"]} >= {"keyhole"}
    masks = read_event_masks(out / truth["event_masks"]["file"])
    assert masks.shape == (24, 48, 64) and masks.dtype == bool
    assert truth["event_masks"]["shape"] == [24, 48, 64]
    scene = Scene(SceneConfig.from_dict(record["config"]))
    for k in (0, 7, 13, 23):
        np.testing.assert_array_equal(masks[k], scene.shimadzu_event_mask(k))
    assert masks.any(axis=(1, 2)).sum() == truth["event_masks"]["frames_with_events"] > 0


def test_simulate_without_fast_events_writes_empty_masks(simulated) -> None:
    from xfusion_stream.simulation import read_event_masks

    out, truth = simulated
    masks = read_event_masks(out / truth["event_masks"]["file"])
    assert masks.shape == (48, 64, 96) and not masks.any()
    assert "fast_events" not in truth["experiment"]["scene"]["config"]


def test_simulate_refuses_unknown_fast_events(tmp_path, capsys) -> None:
    from xfusion_stream.cli._simulate import FAST_EVENTS_HELP
    from xfusion_stream.simulation import FAST_EVENTS_HELP as ENGINE_HELP

    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--out", str(tmp_path), "--fast-events", "sparks=2"])
    assert exc.value.code == 2 and "unknown kind 'sparks'" in capsys.readouterr().err
    assert FAST_EVENTS_HELP == ENGINE_HELP  # the CLI's copy names the engine's presets


def test_truth_preview_is_titled_and_labelled() -> None:
    from xfusion_stream.simulation import Scene, SceneConfig
    from xfusion_stream.simulation._simulation_cases import preview_figure

    scene = Scene(SceneConfig(seed=1, shimadzu_shape=(16, 24), n_shimadzu=8))
    fig = preview_figure(scene, 4)
    images = [ax for ax in fig.axes if ax.get_images() and ax.get_title()]
    titles = [ax.get_title() for ax in images]
    assert len(images) == 3
    assert titles[0].startswith("truth") and "Phantom frame" in titles[1]
    assert "Shimadzu frame 4" in titles[2]
    assert all(ax.get_xlabel() for ax in images) and images[0].get_ylabel()
    assert fig.get_suptitle()
