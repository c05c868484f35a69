import csv

import pytest
import torch
import yaml

import xfusion_models
from xfusion_models import load_checkpoint
from xfusion_models.archs import EDVR_STF_PRESETS, EDVRSTF
from xfusion_models.training import (
    CosineRestartSchedule,
    TrainData,
    WeightEMA,
    load_options,
    register_weights,
    train,
)
from xfusion_stream.cli import main

TINY = {
    "name": "tiny_run",
    "seed": 4,
    "model": {"arch": "edvr_stf", "preset": "tiny"},
    "data": {"lr_crop": 8, "max_context": 4, "independent_context": True},
    "train": {
        "iters": 4,
        "batch_size": 2,
        "lr": 1.0e-3,
        "scheduler": {"periods": [2, 2], "restart_weights": [1.0, 0.5]},
        "threads": 1,
    },
    "val": {"every": 2, "max_samples": 1},
    "checkpoint_every": 2,
}


def _argv(root, opt, out):
    split = {"train": root / "train", "val": root / "val"}
    return [
        "train", "--no-progress", "--json",
        "--dir-lo-train", str(split["train"] / "lr"), "--dir-hi-train", str(split["train"] / "hr"),
        "--dir-lo-val", str(split["val"] / "lr"), "--dir-hi-val", str(split["val"] / "hr"),
        "--path-train-meta-info-file", str(split["train"] / "meta_info.txt"),
        "--path-val-meta-info-file", str(split["val"] / "meta_info.txt"),
        "--opt", str(opt), "--out", str(out),
    ]  # fmt: skip


def test_train_resumes_to_the_same_weights_and_leaves_records(tiny_set, tmp_path):
    opt = tmp_path / "tiny.yaml"
    opt.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    assert main(_argv(tiny_set, opt, out)) == 0
    assert (out / "checkpoints" / "tiny_run_iter2.pth").is_file()  # end of cosine period 1
    assert main(_argv(tiny_set, opt, out) + ["--iters", "6", "--resume"]) == 0

    with (out / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["iter"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1]["val_psnr"] and float(rows[-1]["val_psnr"]) > 5.0
    assert (out / "training.png").stat().st_size > 1000

    # the same 6 iterations without interruption give the same weights
    data = TrainData(
        *(tiny_set / s / f for s in ("train",) for f in ("lr", "hr", "meta_info.txt")),
        *(tiny_set / s / f for s in ("val",) for f in ("lr", "hr", "meta_info.txt")),
    )
    options = load_options(opt)
    options.train.iters = 6
    summary = train(options, data, tmp_path / "straight", progress=False)
    resumed = EDVRSTF(**EDVR_STF_PRESETS["tiny"])
    straight = EDVRSTF(**EDVR_STF_PRESETS["tiny"])
    load_checkpoint(resumed, out / "tiny_run.pth")
    load_checkpoint(straight, summary["weights"])
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name

    # and the run's weights become a registry entry that the builders accept
    (tmp_path / "registry").mkdir()
    entry = register_weights(
        out / "tiny_run.pth", "tiny_test", folder=tmp_path / "registry", recipe={"iters": 6}
    )
    assert entry.preset == "tiny" and entry.recipe == {"iters": 6}
    rebuilt = xfusion_models.edvr_stf(weights=tmp_path / "registry" / "tiny_test.json")
    assert torch.equal(rebuilt.conv_last.weight, resumed.conv_last.weight)


def test_bad_options_name_file_and_field(tiny_set, tmp_path, capsys):
    opt = tmp_path / "bad.yaml"
    opt.write_text(yaml.safe_dump({**TINY, "train": {"lr": -1}}))
    assert main(_argv(tiny_set, opt, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "train.lr" in err
    with pytest.raises(ValueError, match="restart_weights"):
        load_options_from(tmp_path, {"train": {"scheduler": {"periods": [1, 2]}}})


def load_options_from(tmp_path, raw):
    path = tmp_path / "o.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_options(path)


def test_shipped_example_options_validate():
    from pathlib import Path

    import xfusion_models.training as training

    folder = Path(training.__file__).parent / "options"
    names = sorted(p.name for p in folder.glob("*.yaml"))
    assert names == [
        "edvr_stf_small.yaml",
        "edvr_stf_small_fast.yaml",
        "edvr_stf_small_finetune.yaml",
        "edvr_stf_small_hrgate.yaml",
        "edvr_stf_small_hrwarp.yaml",
        "edvr_stf_small_hrwarp_consistency.yaml",
        "swin_xvr_small.yaml",
    ]
    warp = load_options(folder / "edvr_stf_small_hrwarp.yaml")
    assert warp.model.overrides["hr_warp"] is True and warp.train.trainable == ["hr_warp"]
    through = load_options(folder / "edvr_stf_small_hrwarp_consistency.yaml")
    assert through.model.overrides["consistency"] is True
    assert through.train.trainable == ["hr_warp"]
    fast = load_options(folder / "edvr_stf_small_fast.yaml")  # the shipped default's recipe
    assert fast.model.overrides["consistency"] is True and fast.train.trainable is None
    finetune = load_options(folder / "edvr_stf_small_finetune.yaml")
    assert finetune.data.hr_layout == "mixed" and finetune.model.preset == "small"
    swin = load_options(folder / "swin_xvr_small.yaml")
    assert swin.train.loss == "l1" and swin.train.ema_decay == 0.999
    edvr = load_options(folder / "edvr_stf_small.yaml")
    assert edvr.train.loss == "charbonnier" and edvr.model.preset == "small"


def test_cosine_restarts_and_ema():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = CosineRestartSchedule(opt, [4, 4], [1.0, 0.5], eta_min=0.0)
    rates = []
    for _ in range(9):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:5] == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466, 0.5])
    assert rates[8] == 0.0
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = WeightEMA(model, 0.9)
    torch.nn.init.ones_(model.weight)
    ema.update(model)
    assert ema.model.weight.item() == pytest.approx(0.1)


def test_train_on_actual_pairs(actual_tree, tmp_path):
    options = load_options_from(tmp_path, {**TINY, "data": {"lr_crop": 4, "noise_log10": None}})
    options.train.iters = 2
    root = actual_tree
    data = TrainData(
        root / "lr", root / "hr", root / "meta.txt", root / "lr", root / "hr", root / "meta.txt",
        context_root=root / "ctx", index_map=root / "map.csv",
    )  # fmt: skip
    summary = train(options, data, tmp_path / "actual", progress=False)
    assert summary["iters"] == 2 and summary["val_psnr"] > 0


def test_pretrained_weights_are_loaded_or_refused(tiny_set, tmp_path, capsys):
    start = xfusion_models.edvr_stf("tiny")
    torch.nn.init.constant_(start.conv_last.bias, 0.25)
    xfusion_models.save_checkpoint(start, tmp_path / "start.pth")
    raw = {**TINY, "train": {**TINY["train"], "iters": 1, "lr": 1e-9}}
    opt = tmp_path / "pre.yaml"
    opt.write_text(yaml.safe_dump(raw))
    argv = _argv(tiny_set, opt, tmp_path / "run")
    assert main(argv + ["--pretrain_network_g", str(tmp_path / "start.pth")]) == 0
    trained = xfusion_models.edvr_stf(weights=tmp_path / "run" / "tiny_run.pth")
    assert trained.conv_last.bias.item() == pytest.approx(0.25, abs=1e-6)

    other = xfusion_models.edvr_stf("tiny", num_feat=4)
    xfusion_models.save_checkpoint(other, tmp_path / "other.pth")
    argv = _argv(tiny_set, opt, tmp_path / "run2")
    assert main(argv + ["--pretrain_network_g", str(tmp_path / "other.pth")]) == 2
    assert "other.pth" in capsys.readouterr().err


def _tiny_data(root) -> TrainData:
    return TrainData(
        *(root / "train" / f for f in ("lr", "hr", "meta_info.txt")),
        *(root / "val" / f for f in ("lr", "hr", "meta_info.txt")),
    )


def test_trainable_prefixes_train_the_gate_and_freeze_the_rest(tiny_set, tmp_path):
    torch.manual_seed(8)
    plain = EDVRSTF(**EDVR_STF_PRESETS["tiny"])
    xfusion_models.save_checkpoint(plain, tmp_path / "plain.pth")
    raw = {**TINY, "model": {"arch": "edvr_stf", "preset": "tiny",
                             "overrides": {"hr_warp": True, "hr_warp_feat": 4}}}  # fmt: skip
    raw["train"] = {**TINY["train"], "iters": 2, "trainable": ["hr_warp"]}
    (tmp_path / "gate.yaml").write_text(yaml.safe_dump(raw))
    options = load_options(tmp_path / "gate.yaml")
    summary = train(
        options, _tiny_data(tiny_set), tmp_path / "run", pretrain=tmp_path / "plain.pth",
        progress=False,
    )  # fmt: skip
    trained = xfusion_models.build_model(summary["weights"])
    before = plain.state_dict()
    changed = {k for k, v in trained.state_dict().items() if k not in before or
               not torch.equal(v, before[k])}  # fmt: skip
    assert changed and all(k.startswith("hr_warp.") for k in changed)
    assert any(k.startswith("hr_warp.logits") for k in changed)

    raw["train"]["trainable"] = ["no_such_module"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"\['no_such_module'\] matches no parameter.*hr_warp"):
        train(load_options(tmp_path / "bad.yaml"), _tiny_data(tiny_set), tmp_path / "bad",
              progress=False)  # fmt: skip
