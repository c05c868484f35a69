"""Fixtures for the model tests: every test runs on CPU, and on CUDA when present."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _few_threads():
    """Two cores are shared with other work; keep each test on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_window():
    """Factory for reproducible (lq, hq) batches: ``make_window(b, h, w, seed=0, device=)``."""
    return random_window


def random_window(b: int, h: int, w: int, *, seed: int = 0, device="cpu", dtype=torch.float32):
    """A reproducible (lq, hq) window batch with intensities in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    lq = torch.rand(b, 3, 1, h, w, generator=gen, dtype=dtype)
    hq = torch.rand(b, 2, 1, 4 * h, 4 * w, generator=gen, dtype=dtype)
    return lq.to(device), hq.to(device)
