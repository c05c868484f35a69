"""Golden outputs: seeded ``tiny`` builders on a fixed window give recorded statistics.

If an architecture changes on purpose, regenerate these numbers with the same recipe
(torch.manual_seed(0); builder("tiny"); window from Generator seed 0, 8x12) and say so
in the commit.
"""

from __future__ import annotations

import pytest
import torch

import xfusion_models as xm

GOLDEN = {
    # mean, std, first pixel, last pixel
    "edvr_stf": [0.3223334848880768, 0.2051328420639038, 0.6294437646865845, 0.7239882946014404],
    "swin_xvr": [0.006185037549585104, 0.05736750736832619, 0.04192067682743072, -0.0352938584983],
}
EDVR_ATTENTION = [0.49521148, 0.49520549, 0.49520993, 0.49526104, 0.49526062]


@pytest.mark.parametrize("arch", sorted(GOLDEN))
def test_seeded_tiny_builder_reproduces_golden_output(arch, device):
    torch.manual_seed(0)
    model = getattr(xm, arch)("tiny").to(device).eval()
    gen = torch.Generator().manual_seed(0)
    lq = torch.rand(1, 3, 1, 8, 12, generator=gen).to(device)
    hq = torch.rand(1, 2, 1, 32, 48, generator=gen).to(device)
    with torch.no_grad():
        out, attention = model.forward_with_attention(lq, hq)
    stats = torch.stack([out.mean(), out.std(), out[0, 0, 0, 0], out[0, 0, -1, -1]]).cpu()
    torch.testing.assert_close(stats, torch.tensor(GOLDEN[arch]), rtol=1e-4, atol=1e-5)
    if arch == "edvr_stf":
        torch.testing.assert_close(
            attention.cpu(), torch.tensor([EDVR_ATTENTION]), rtol=1e-4, atol=1e-6
        )
