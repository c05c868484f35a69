"""What tests and benchmarks share: simulated cameras, a validating document log, the
pairing table a scene should give."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from event_model import DocumentNames, schema_validators

from ..calibration import PairingTable, pairing_table
from ..devices import PhantomTMX7510, ShimadzuHPVX2, SimBeam, SimPhantomBackend, SimShimadzuBackend
from ..fusion import WindowJob
from ..simulation import Scene, SceneConfig

__all__ = [
    "BEAMLINE_SCENE",
    "FUSION_SCENE",
    "DocumentLog",
    "expected_table",
    "feed",
    "fused_frames",
    "random_window_jobs",
    "sim_cameras",
    "wait_until",
]

# the small scenes the beamline and fusion rooms run (seconds per burst on 2 cores)
BEAMLINE_SCENE = SceneConfig(seed=3, shimadzu_shape=(32, 48), n_shimadzu=32)
FUSION_SCENE = SceneConfig(seed=5, shimadzu_shape=(24, 40), n_shimadzu=64)


class DocumentLog:
    """Validates every document against event-model's schemas and keeps it."""

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        schema_validators[DocumentNames[name]].validate(doc)
        self.docs.append((name, doc))

    def of(self, name: str) -> list[dict]:
        return [d for n, d in self.docs if n == name]

    def events(self, stream: str = "fused") -> list[dict]:
        uids = {d["uid"] for d in self.of("descriptor") if d["name"] == stream}
        return [e for e in self.of("event") if e["descriptor"] in uids]


def sim_cameras(
    config: SceneConfig, data_dir: Path | None, *, inline: bool = False, grid_frames: int = 32
) -> tuple[PhantomTMX7510, ShimadzuHPVX2, SimBeam]:
    """Both simulated cameras over one scene; HDF5 bursts go to ``data_dir``."""
    beam = SimBeam(config, grid_frames=grid_frames)
    raw = None if inline else data_dir
    phantom = PhantomTMX7510(
        "XF:TEST:PH:", name="phantom", backend=SimPhantomBackend(beam), data_dir=raw, inline=inline
    )
    shimadzu = ShimadzuHPVX2(
        "XF:TEST:HPV:",
        name="shimadzu",
        backend=SimShimadzuBackend(beam),
        data_dir=raw,
        inline=inline,
    )
    return phantom, shimadzu, beam


def expected_table(scene: Scene, mode: str) -> PairingTable:
    """The pairing table the file-based path gives for this scene's timelines."""
    return pairing_table(*scene.timings(), mode)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def feed(callback: Callable[[str, dict], Any], docs: Iterable[tuple[str, dict]]) -> None:
    """Hand every ``(name, doc)`` to ``callback`` in order."""
    for name, doc in docs:
        callback(name, doc)


def fused_frames(client: Any, uid: str) -> np.ndarray:
    """The fused images of a successful fused run in Tiled, (n, rows, cols)."""
    run = client[uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    return np.asarray(run["fused"]["fused_image"].read())


def random_window_jobs(
    n: int, shape: tuple[int, int] = (8, 12), *, seed: int = 0, phantom_every: int = 4
) -> list[WindowJob]:
    """``n`` consecutive continuous-mode windows of random frames (Shimadzu ``shape``,
    Phantom x4), a Phantom pair per ``phantom_every`` windows: model runners tested
    without a scene (the cost depends on sizes, not content)."""
    h, w = shape
    rng = np.random.default_rng(seed)
    lr = [rng.random((h, w), dtype=np.float32) for _ in range(n + 2)]
    hr = [rng.random((4 * h, 4 * w), dtype=np.float32) for _ in range(n // phantom_every + 2)]
    return [
        WindowJob(
            index=i,
            shimadzu_index=i,
            shimadzu_time_ns=200 * i,
            lr=(i, i + 1, i + 2),
            hr=(i // phantom_every, i // phantom_every + 1),
            lr_frames=(lr[i], lr[i + 1], lr[i + 2]),
            hr_frames=(hr[i // phantom_every], hr[i // phantom_every + 1]),
        )
        for i in range(n)
    ]
