import numpy as np

from xfusion_models.data import frame_paths, read_frame, read_meta_info
from xfusion_stream.core import ConfigError
from xfusion_stream.simulation.training_set import TrainingSetSpec, clip_seed, main, render_clip


def test_layout_meta_info_and_lr_is_area_average(tiny_set):
    entries = read_meta_info(tiny_set / "train" / "meta_info.txt")
    assert [(e.folder, e.nframes, e.shape) for e in entries] == [
        ("000", 12, (64, 64, 1)),
        ("001", 12, (64, 64, 1)),
    ]
    hr = read_frame(frame_paths(tiny_set / "train" / "hr" / "001")[3])
    lr = read_frame(frame_paths(tiny_set / "train" / "lr" / "001")[3])
    assert lr.shape == (16, 16)
    assert np.abs(hr.reshape(16, 4, 16, 4).mean(axis=(1, 3)) - lr).max() < 2e-4


def test_rendering_is_deterministic_and_seeds_are_disjoint():
    spec = TrainingSetSpec(seed=2, clips=1, val_clips=0, frames=4, shimadzu_shape=(8, 8))
    a_hr, a_lr = render_clip(spec, clip_seed(2, 0))
    b_hr, b_lr = render_clip(spec, clip_seed(2, 0))
    assert np.array_equal(a_hr, b_hr) and np.array_equal(a_lr, b_lr)
    train = {clip_seed(1, i) for i in range(400)} | {
        clip_seed(1, i, validation=True) for i in range(400)
    }
    test = {clip_seed(7, i) for i in range(400)}
    assert not train & test


def test_module_command_line(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--seed", "9", "--clips", "1", "--val-clips", "0"]
    assert main(argv + ["--frames", "3", "--shape", "8", "8", "--no-progress"]) == 0
    assert len(frame_paths(tmp_path / "train" / "hr" / "000")) == 3
    assert '"val_scene_seeds": []' in capsys.readouterr().out


def test_speed_ranges_reach_the_scene_and_bad_ranges_are_refused(tmp_path, capsys):
    import json

    import pytest

    argv = ["--out", str(tmp_path), "--seed", "9", "--clips", "1", "--val-clips", "0"]
    argv += ["--frames", "3", "--shape", "8", "8", "--no-progress"]
    assert main(argv + ["--motion-px", "10", "12", "--feature-px", "20", "30"]) == 0
    spec = json.loads(capsys.readouterr().out)["spec"]
    assert spec["motion_px"] == [10.0, 12.0] and spec["feature_px"] == [20.0, 30.0]
    slow = TrainingSetSpec(seed=9, clips=1, val_clips=0, frames=3, shimadzu_shape=(8, 8))
    fast = slow.replace(motion_px=(10.0, 12.0))
    (slow_hr, _), (fast_hr, _) = render_clip(slow, 9000), render_clip(fast, 9000)
    assert np.abs(fast_hr[2] - fast_hr[0]).mean() > np.abs(slow_hr[2] - slow_hr[0]).mean()
    with pytest.raises(
        ConfigError, match=r"motion_px: must be a range 0 <= lo <= hi, got \(3.0, 2.0\)"
    ):
        TrainingSetSpec(motion_px=(3.0, 2.0))


def test_spec_refuses_empty_sets_and_too_many_clips():
    import pytest

    with pytest.raises(ConfigError, match="at least one clip"):
        TrainingSetSpec(clips=0, val_clips=0)
    with pytest.raises(ConfigError, match="clips: .*less than or equal to 500"):
        TrainingSetSpec(clips=501)
    with pytest.raises(ConfigError, match="frames: .*greater than or equal to 3"):
        TrainingSetSpec(frames=2)


def test_fast_events_option_reaches_the_clips_and_is_recorded(tmp_path, capsys):
    import json

    argv = ["--out", str(tmp_path), "--seed", "9", "--clips", "1", "--val-clips", "0"]
    argv += ["--frames", "12", "--shape", "8", "8", "--no-progress"]
    assert main(argv + ["--fast-events", "mixed,particles=3"]) == 0
    printed = json.loads(capsys.readouterr().out)["spec"]["fast_events"]
    recorded = json.loads((tmp_path / "training_set.json").read_text())["spec"]["fast_events"]
    assert printed == recorded and recorded["particles"] == 3.0 and recorded["keyholes"] == 1
    plain = TrainingSetSpec(seed=9, clips=1, val_clips=0, frames=12, shimadzu_shape=(8, 8))
    fast = TrainingSetSpec.model_validate({**plain.model_dump(), "fast_events": recorded})
    (plain_hr, _), (fast_hr, _) = render_clip(plain, 9000), render_clip(fast, 9000)
    assert not np.array_equal(plain_hr, fast_hr)
    assert plain.fast_events is None


def test_fast_events_option_refuses_unknown_kinds(tmp_path, capsys):
    import pytest

    argv = ["--out", str(tmp_path), "--fast-events", "mixed,sparks=1"]
    with pytest.raises(SystemExit):
        main(argv)
    assert "unknown kind 'sparks'" in capsys.readouterr().err
