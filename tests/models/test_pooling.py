"""The HR branch's and TSA's 3x3 / stride 2 max pool: same values as torch's, faster."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xfusion_models.ops import HalvingMaxPool, halving_max_pool


@pytest.mark.parametrize(
    "shape", [(1, 1, 1, 1), (1, 1, 2, 2), (2, 3, 5, 7), (1, 4, 8, 6), (1, 2, 9, 16), (3, 4, 6)]
)
def test_values_equal_torchs_pool_for_odd_even_and_tiny_sides(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(len(shape)))
    with torch.no_grad():
        torch.testing.assert_close(
            halving_max_pool(x), F.max_pool2d(x, 3, stride=2, padding=1), rtol=0, atol=0
        )


def test_nan_and_infinities_come_through_as_in_torchs_pool():
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 2, 3] = float("nan")
    x[0, 0, 5, 0] = float("inf")
    x[0, 0, 0, 5] = -float("inf")
    with torch.no_grad():
        got, want = halving_max_pool(x), F.max_pool2d(x, 3, stride=2, padding=1)
    assert torch.equal(got.isnan(), want.isnan()) and got.isnan().any()
    torch.testing.assert_close(got.nan_to_num(), want.nan_to_num(), rtol=0, atol=0)


def test_training_takes_torchs_pool_and_its_gradients():
    x = torch.randn(1, 2, 7, 8, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    HalvingMaxPool()(x).sum().backward()
    F.max_pool2d(y, 3, stride=2, padding=1).sum().backward()
    assert x.grad is not None and torch.equal(x.grad, y.grad)


def test_the_hr_branch_uses_it():
    from xfusion_models.archs._blocks import PhantomBranch

    branch = PhantomBranch(1, 4).eval()
    assert isinstance(branch.pool, HalvingMaxPool)
    x = torch.rand(1, 1, 32, 48)
    with torch.no_grad():
        got = branch(x)
        y = branch.lrelu(branch.conv1(x))
        y = F.max_pool2d(branch.lrelu(branch.conv2(y)), 3, 2, 1)
        want = F.max_pool2d(branch.lrelu(branch.conv3(y)), 3, 2, 1)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
