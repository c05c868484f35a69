"""EvenSample: an evenly spaced, bounded pick from a stream of unknown length."""

from __future__ import annotations

import numpy as np
import pytest

from xfusion_stream.products import EvenSample


@pytest.mark.parametrize("n", [1, 7, 8, 9, 17, 100, 1000])
def test_unknown_total_stays_bounded_and_even(n):
    sample: EvenSample[int] = EvenSample(8)
    for k in range(n):
        sample.offer(lambda k=k: k)
        assert sample.held <= 2 * 8 + 1
    picks = [k for k, _ in sample.picks()]
    assert picks[0] == 0 and len(picks) == min(n, 8)
    assert [v for _, v in sample.picks()] == picks
    steps = np.diff(picks)
    assert steps.size == 0 or steps.max() - steps.min() <= sample.stride
    if n >= 100:  # the picks span the stream, not just its start
        assert picks[-1] >= n - n // 4


def test_known_total_builds_only_what_it_keeps():
    built = []
    sample: EvenSample[int] = EvenSample(4, total=40)
    for k in range(40):
        sample.offer(lambda k=k: built.append(k) or k)
    assert built == [0, 10, 20, 30]
    assert [k for k, _ in sample.picks()] == built


def test_capacity_one_keeps_the_first():
    sample: EvenSample[str] = EvenSample(1)
    for k in range(5):
        sample.offer(lambda k=k: f"f{k}")
    assert sample.picks() == [(0, "f0")]
    with pytest.raises(ValueError, match="capacity"):
        EvenSample(0)
