import numpy as np

from xfusion_models.data import frame_paths, read_frame, read_meta_info
from xfusion_stream.training_set import TrainingSetSpec, clip_seed, main, render_clip


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
