"""HR-context layouts: the live continuous bracket ``t - a, t - a + P`` and the mix."""

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from xfusion_models.data import SamplingConfig, VirtualClipDataset, bracket_context
from xfusion_models.training import load_options

FINETUNE_YAML = (
    Path(__file__).parents[2] / "xfusion_models/training/options/edvr_stf_small_finetune.yaml"
)


def _dataset(root, **cfg):
    return VirtualClipDataset(
        root / "train" / "lr",
        root / "train" / "hr",
        root / "train" / "meta_info.txt",
        SamplingConfig(lr_crop=8, **cfg),
        seed=3,
    )


@pytest.mark.parametrize("n", [48, 21, 12, 4])
def test_bracket_frames_straddle_the_centre_inside_the_clip(n):
    period = 20
    p = min(period, n - 1)
    for centre in range(n - 1):
        seen = set()
        for seed in range(300):
            before, after = bracket_context(centre, n, period, np.random.default_rng(seed))
            a = centre - before
            assert after - before == p and 0 <= a < p
            assert 0 <= before and after <= n - 1
            seen.add(a)
        low, high = max(0, centre + p - (n - 1)), min(p - 1, centre)
        assert seen == set(range(low, high + 1))  # every valid offset, nothing else


def test_bracket_is_deterministic_per_seed_and_rejects_the_last_frame():
    draws = [bracket_context(25, 48, 20, np.random.default_rng(s)) for s in range(10)]
    again = [bracket_context(25, 48, 20, np.random.default_rng(s)) for s in range(10)]
    assert draws == again and len({tuple(d) for d in draws}) > 1
    with pytest.raises(ValueError, match="no room"):
        bracket_context(47, 48, 20, np.random.default_rng(0))


def test_dataset_bracket_layout_puts_phantom_frames_at_s_minus_a(tiny_set):
    ds = _dataset(tiny_set, hr_layout="bracket", bracket_period=5)
    offsets = set()
    for index in range(len(ds)):
        picked = ds.pick_frames(index, np.random.default_rng([index, 1]))
        assert picked == ds.pick_frames(index, np.random.default_rng([index, 1]))
        _, lr_idx, (before, after), centre = picked
        assert after - before == 5 and 0 <= centre - before < 5
        assert 0 <= min(lr_idx + [before]) and max(lr_idx + [after]) < 12
        offsets.add(centre - before)
    assert offsets == set(range(5))  # a = 0 (target is a Phantom frame) included
    first, again = ds[3], ds[3]
    assert (first["hq"] == again["hq"]).all()


def test_mixed_layout_draws_both_kinds(tiny_set):
    def kinds(p_bracket):
        ds = _dataset(tiny_set, hr_layout="mixed", bracket_period=5, p_bracket=p_bracket)
        out = []
        for index in range(len(ds)):
            for seed in range(4):
                _, _, (before, after), centre = ds.pick_frames(
                    index, np.random.default_rng([seed, index])
                )
                # symmetric +-k spans an even 2k; the bracket spans the odd period 5
                if after - before == 5:
                    out.append("bracket")
                else:
                    assert centre - before == after - centre >= 1
                    out.append("symmetric")
        return set(out)

    assert kinds(1.0) == {"bracket"}
    assert kinds(0.0) == {"symmetric"}
    assert kinds(0.5) == {"bracket", "symmetric"}


def test_layout_options_are_validated_and_the_finetune_file_uses_mixed():
    with pytest.raises(ValidationError, match="hr_layout"):
        SamplingConfig(hr_layout="lopsided")
    with pytest.raises(ValidationError, match="bracket_period"):
        SamplingConfig(bracket_period=0)
    assert SamplingConfig().hr_layout == "symmetric"  # old options files unchanged
    data = load_options(FINETUNE_YAML).data
    assert data.hr_layout == "mixed" and data.bracket_period == 20
