import numpy as np
import pytest
import torch

from xfusion_models.data import (
    ActualPairDataset,
    ClipEntry,
    SamplingConfig,
    VirtualClipDataset,
    read_frame,
    write_frame,
    write_meta_info,
)


def _virtual(root, split="train", **cfg):
    cfg.setdefault("lr_crop", 8)
    return VirtualClipDataset(
        root / split / "lr",
        root / split / "hr",
        root / split / "meta_info.txt",
        SamplingConfig(**cfg),
        seed=3,
    )


def test_virtual_sample_shapes_and_dtype(tiny_set):
    ds = _virtual(tiny_set, lr_crop=8)
    item = ds[5]
    assert item["lq"].shape == (3, 1, 8, 8) and item["hq"].shape == (2, 1, 32, 32)
    assert item["gt"].shape == (1, 32, 32)
    assert all(item[k].dtype == torch.float32 for k in ("lq", "hq", "gt"))
    whole = _virtual(tiny_set, lr_crop=None, augment=False)[0]
    assert whole["lq"].shape == (3, 1, 16, 16) and whole["gt"].shape == (1, 64, 64)


def test_virtual_sampling_is_seeded_per_epoch(tiny_set):
    ds = _virtual(tiny_set)
    a, b = ds[7], ds[7]
    assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])
    ds.set_epoch(1)
    c = ds[7]
    assert not torch.equal(a["lq"], c["lq"])


def test_frame_picking_follows_the_recipe(tiny_set):
    ds = _virtual(tiny_set, max_context=3, intervals=[1, 2, 3])
    for index in range(len(ds)):
        rng = np.random.default_rng(index)
        _, lr_idx, hr_idx, centre = ds.pick_frames(index, rng)
        interval = lr_idx[1] - lr_idx[0]
        assert interval in (1, 2, 3) and lr_idx == [centre - interval, centre, centre + interval]
        assert hr_idx[1] - centre == centre - hr_idx[0]  # symmetric by default
        assert 1 <= centre - hr_idx[0] <= 3
        assert 0 <= min(lr_idx + hr_idx) and max(lr_idx + hr_idx) < 12


def test_poisson_noise_touches_lr_only(tiny_set):
    clean = _virtual(tiny_set, noise_log10=None, augment=False, lr_crop=None)[4]
    noisy = _virtual(tiny_set, noise_log10=(2.0, 2.0), augment=False, lr_crop=None)[4]
    assert torch.equal(clean["hq"], noisy["hq"]) and torch.equal(clean["gt"], noisy["gt"])
    diff = (noisy["lq"] - clean["lq"]).abs().mean().item()
    assert 0.01 < diff < 0.2  # b0 = 100 photons: a few percent per pixel
    assert 0.0 <= noisy["lq"].min() and noisy["lq"].max() <= 1.0


def test_hr_must_be_four_times_lr(tmp_path):
    for sub, side in (("lr", 8), ("hr", 24)):
        (tmp_path / sub / "c").mkdir(parents=True)
        for k in range(3):
            write_frame(tmp_path / sub / "c" / f"{k:08d}.png", np.zeros((side, side)))
    write_meta_info(tmp_path / "meta.txt", [ClipEntry("c", 3, (24, 24, 1))])
    ds = VirtualClipDataset(tmp_path / "lr", tmp_path / "hr", tmp_path / "meta.txt")
    with pytest.raises(ValueError, match="not 4x"):
        ds[1]


def test_actual_pairs_use_neighbouring_pairs_as_context(actual_tree):
    tmp_path = actual_tree
    cfg = SamplingConfig(lr_crop=None, augment=False, noise_log10=None)
    ds = ActualPairDataset(
        tmp_path / "lr",
        tmp_path / "hr",
        tmp_path / "meta.txt",
        tmp_path / "ctx",
        tmp_path / "map.csv",
        cfg,
    )
    assert len(ds) == 2  # pairs 1 and 2 have a pair on each side
    item = ds[0]  # pair 1: hr 1, lr context frame 4
    assert item["gt"].mean().item() == pytest.approx(0.2, abs=1e-4)
    assert item["hq"][:, 0].mean(dim=(1, 2)).tolist() == pytest.approx([0.1, 0.3], abs=1e-4)
    expected = [read_frame(tmp_path / "ctx" / "run1" / f"{k:08d}.png") for k in (3, 4, 5)]
    assert np.allclose(item["lq"][:, 0].numpy(), np.stack(expected))


def test_actual_index_map_header_is_checked(actual_tree):
    tmp_path = actual_tree
    (tmp_path / "map.csv").write_text("clip,phantom,shimadzu\nrun1,0,1\n")
    with pytest.raises(ValueError, match="map.csv: header"):
        ActualPairDataset(
            tmp_path / "lr",
            tmp_path / "hr",
            tmp_path / "meta.txt",
            tmp_path / "ctx",
            tmp_path / "map.csv",
        )
