"""``bracket_min_offset``: the bracket never puts a Phantom frame on the target frame."""

import numpy as np
import pytest

from xfusion_models.data import SamplingConfig, bracket_context
from xfusion_models.training import load_options


@pytest.mark.parametrize("n", [48, 21])
def test_min_offset_one_never_draws_the_centre_but_reaches_every_other_offset(n):
    period, p = 20, min(20, n - 1)
    for centre in range(1, n - 1):
        seen = set()
        for seed in range(300):
            before, after = bracket_context(
                centre, n, period, np.random.default_rng(seed), min_offset=1
            )
            assert after - before == p and before != centre and 0 <= before and after <= n - 1
            seen.add(centre - before)
        low, high = max(1, centre + p - (n - 1)), min(p - 1, centre)
        assert seen == set(range(low, high + 1))


def test_impossible_min_offset_is_named():
    with pytest.raises(ValueError, match="no bracket offset >= 1 fits centre 0"):
        bracket_context(0, 48, 20, np.random.default_rng(0), min_offset=1)
    assert SamplingConfig().bracket_min_offset == 0  # the original layouts stay as they were


def test_gated_finetune_options_keep_phantom_frames_off_t():
    from pathlib import Path

    import xfusion_models

    yaml = Path(xfusion_models.__file__).parent / "training/options/edvr_stf_small_hrgate.yaml"
    opt = load_options(yaml)
    assert opt.data.bracket_min_offset == 1 and opt.data.hr_layout == "mixed"
    assert opt.model.overrides["hr_gate"] is True
