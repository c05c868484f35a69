"""ProductWriter as the real FusionWorker's on_frame hook, with a tiny EDVR-STF."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import xfusion_models as xm
from xfusion_stream.fusion import FusedRunComposer, FusionModel, FusionWorker, WindowJob
from xfusion_stream.products import ProductWriter


@pytest.fixture(autouse=True)
def _one_thread():
    """Two cores are shared with other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_worker_feeds_products_in_window_order(tmp_path):
    torch.manual_seed(0)
    net = xm.edvr_stf("tiny").eval()
    model = FusionModel(
        net=net, name="tiny", arch="edvr_stf", sha256="0" * 64, device=torch.device("cpu")
    )
    docs: list[tuple[str, dict]] = []
    composer = FusedRunComposer([lambda name, doc: docs.append((name, doc))], {"purpose": "test"})
    writer = ProductWriter(tmp_path, traverse_mode="double", progress=False, progress_total=4)
    worker = FusionWorker(model, composer, queue_size=2, when_full="block", on_frame=writer)
    rng = np.random.default_rng(0)
    shimadzu = [rng.uniform(0.2, 0.8, (8, 8)).astype(np.float32) for _ in range(7)]
    phantom = [rng.uniform(0.2, 0.8, (32, 32)).astype(np.float32) for _ in range(7)]
    worker.start_run((32, 32), "fused")
    for k in range(4):
        s = k + 1
        worker.submit(
            WindowJob(
                index=k, shimadzu_index=s, shimadzu_time_ns=200 * s, lr=(s - 1, s, s + 1),
                hr=(k, k + 2), lr_frames=tuple(shimadzu[s - 1 : s + 2]),
                hr_frames=(phantom[k], phantom[k + 2]), truth_index=k + 1, truth=phantom[k + 1],
            )
        )  # fmt: skip
    worker.stop_run()
    assert worker.join(timeout=60)
    summary = writer.close()

    assert worker.report.failure == "" and summary["errors"] == []
    assert summary["n_frames"] == 4 == worker.report.frames
    with open(summary["metrics_csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["window_index"]) for r in rows] == [0, 1, 2, 3]
    events = [doc for name, doc in docs if name == "event"]
    for row, event in zip(rows, events):
        assert float(row["psnr"]) == event["data"]["psnr"]
        assert np.isclose(float(row["att_lr_centre"]), event["data"]["attention"][1])
    assert summary["mean"]["psnr"] == np.mean([e["data"]["psnr"] for e in events])
    assert summary["attention_png"] and summary["metrics_png"] and summary["gif"]
