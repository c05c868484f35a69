"""--opt / --img-class: the testing-dataset YAML, clip discovery and its errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from xfusion_plans import virtual_experiment

from xfusion_stream.app import (
    find_virtual_sources,
    identity_calibration,
    load_virtual_datasets,
    virtual_windows,
)
from xfusion_stream.core import ConfigError
from xfusion_stream.devices import virtual_cameras


def _clip(folder: Path, stack: np.ndarray, n: int = 41) -> Path:
    folder.mkdir(parents=True)
    for k in range(n):
        cv2.imwrite(str(folder / f"{k:08d}.png"), stack[k])
    return folder


@pytest.fixture
def data_root(tmp_path, hr_stack):
    """data/hr/{a,b} (two clips), data/lr/a (ready-made LR), data/single (frames)."""
    _clip(tmp_path / "data" / "hr" / "a", hr_stack)
    _clip(tmp_path / "data" / "hr" / "b", hr_stack[::-1])
    lr = np.stack([cv2.resize(f, (25, 17), interpolation=cv2.INTER_AREA) for f in hr_stack])
    _clip(tmp_path / "data" / "lr" / "a", lr)
    _clip(tmp_path / "data" / "single", hr_stack)
    return tmp_path / "data"


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg" / "test.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


GOOD = """
datasets:
  dataset1:
    hr_dir: ../data/hr
    phantom_every: 20
    photons_log10: [3, 4]
    seed: 7
  dataset2:
    hr_dir: ../data/single
    lr_dir: ../data/single
    photons: null
"""


def test_dataset_name_selects_its_clips(tmp_path, data_root):
    opt = _yaml(tmp_path, GOOD)
    sources = find_virtual_sources(opt, "dataset1", None)
    assert [s.name for s in sources] == ["a", "b"]
    a = sources[0]
    assert a.path == data_root / "hr" / "a" and a.lr_path is None
    assert a.plan_kwargs()["photons"] == (3.0, 4.0) and a.plan_kwargs()["seed"] == 7
    assert a.shimadzu_shape == (16, 24) and a.phantom_shape == (64, 96)
    assert virtual_windows(a, "double") == 1 and virtual_windows(a, "continuous") == 40
    (single,) = find_virtual_sources(opt, "dataset2", None)
    assert single.name == "single" and single.lr_path == data_root / "single"
    assert single.plan_kwargs()["photons"] is None


def test_clip_name_and_clip_list(tmp_path, data_root):
    opt = _yaml(tmp_path, GOOD)
    (b,) = find_virtual_sources(opt, "b", None)
    assert b.path == data_root / "hr" / "b" and b.options.seed == 7
    listed = _yaml(tmp_path, "datasets:\n  d:\n    hr_dir: ../data/hr\n    clips: [b]\n")
    assert [s.name for s in find_virtual_sources(listed, None, None)] == ["b"]
    with_lr = _yaml(
        tmp_path,
        "datasets:\n  d:\n    hr_dir: ../data/hr\n    lr_dir: ../data/lr\n    clips: [a]\n",
    )
    (a,) = find_virtual_sources(with_lr, "d", None)
    assert a.lr_path == data_root / "lr" / "a"


def test_input_dir_without_yaml(data_root):
    assert [s.name for s in find_virtual_sources(None, None, data_root / "hr")] == ["a", "b"]
    (s,) = find_virtual_sources(None, "single", data_root)
    assert s.plan_kwargs() == {
        "phantom_every": 20,
        "ratio": 4,
        "photons": pytest.approx(10**3.5),
        "seed": 0,
        "frame_ns": 200,
        "downsample": "bicubic",
        "lr_source": None,
    }
    with pytest.raises(ConfigError, match="needs --opt"):
        find_virtual_sources(None, "dataset1", None)


def test_source_runs_as_a_plan(RE, collector, tmp_path, data_root):
    (source,) = find_virtual_sources(_yaml(tmp_path, GOOD), "dataset2", None)
    log = collector()
    RE.subscribe(log)
    RE(virtual_experiment(*virtual_cameras(source.path, **source.plan_kwargs(), inline=True)))
    start = log.of("start")[0]
    assert start["virtual"]["lr_source"] == str(data_root / "single")
    record = identity_calibration(source.shimadzu_shape, source.phantom_shape)
    assert record.crop.width == 96 and len(log.events("shimadzu")) == 41


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("datasets: [1, 2", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("datasets: {}\n", "datasets: "),
        ("datasets:\n  d:\n    lr_dir: x\n", r"datasets\.d\.hr_dir: Field required"),
        ("datasets:\n  d:\n    hr_dir: x\n    colour: red\n", r"datasets\.d\.colour: Extra"),
        ("datasets:\n  d:\n    hr_dir: x\n    phantom_every: 1\n", r"datasets\.d\.phantom_every"),
        (
            "datasets:\n  d:\n    hr_dir: x\n    photons: 100\n    photons_log10: [1, 2]\n",
            "not both",
        ),
        ("datasets:\n  d:\n    hr_dir: x\n    photons_log10: [5, 2]\n", "must be"),
        ("datasets:\n  d:\n    hr_dir: x\n    downsample: nearest\n", r"d\.downsample"),
    ],
)
def test_bad_yaml_names_file_and_field(tmp_path, text, match):
    opt = _yaml(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_virtual_datasets(opt)
    assert str(opt) in str(info.value)


def test_selection_errors_name_file_and_field(tmp_path, data_root):
    opt = _yaml(tmp_path, GOOD)
    with pytest.raises(
        ConfigError, match=r"must name one of the datasets \['dataset1', 'dataset2'\]"
    ):
        find_virtual_sources(opt, None, None)
    with pytest.raises(ConfigError, match="neither a dataset"):
        find_virtual_sources(opt, "dataset9", None)
    missing = _yaml(tmp_path, "datasets:\n  d:\n    hr_dir: ../data/hr\n    clips: [a, zz]\n")
    with pytest.raises(ConfigError, match=r"test.yaml: datasets\.d\.clips\[1\]: .*zz not found"):
        find_virtual_sources(missing, "d", None)
    gone = _yaml(tmp_path, "datasets:\n  d:\n    hr_dir: ../nowhere\n")
    with pytest.raises(ConfigError, match=r"datasets\.d\.hr_dir: folder .*nowhere not found"):
        find_virtual_sources(gone, "d", None)
    no_lr = _yaml(tmp_path, "datasets:\n  d:\n    hr_dir: ../data/hr\n    lr_dir: ../data/lr\n")
    with pytest.raises(ConfigError, match=r"datasets\.d\.lr_dir: .*lr/b not found"):
        find_virtual_sources(no_lr, "d", None)
    with pytest.raises(ConfigError, match="virtual dataset YAML not found"):
        find_virtual_sources(tmp_path / "none.yaml", "d", None)


def test_shipped_example_parses():
    import xfusion_profiles

    example = Path(xfusion_profiles.__file__).with_name("virtual_example.yaml")
    config = load_virtual_datasets(example)
    assert set(config.datasets) == {"dataset1", "dataset2"}
    assert config.datasets["dataset2"].photons == (3.0, 4.0)  # photons_log10 in the file
    assert config.datasets["dataset1"].hr_dir == example.parent / "tomobank" / "rad_00001"


def test_dataset_options_are_the_virtual_options(tmp_path, data_root):
    """The dataset declares no option of its own: the plan sees VirtualOptions' fields."""
    from xfusion_stream.devices import VirtualOptions

    opt = _yaml(tmp_path, GOOD)
    ds = load_virtual_datasets(opt).datasets["dataset1"]
    assert isinstance(ds, VirtualOptions)
    (a, _) = find_virtual_sources(opt, "dataset1", None)
    assert type(a.options) is VirtualOptions
    assert a.options == VirtualOptions(phantom_every=20, photons=(3.0, 4.0), seed=7)
    kwargs = a.plan_kwargs()
    assert set(kwargs) == {*VirtualOptions.model_fields, "lr_source"}
