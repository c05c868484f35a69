"""The model runner on its own: queue policy, batching, feature cache, failures."""

from __future__ import annotations

import threading

import h5py
import numpy as np
import pytest
import torch

from xfusion_stream.core import DocumentError
from xfusion_stream.documents import FrameFiller
from xfusion_stream.fusion import (
    FusedRunComposer,
    FusionModel,
    FusionWorker,
    WindowJob,
)
from xfusion_stream.testing import DocumentLog as Collector
from xfusion_stream.testing import random_window_jobs

H, W = 8, 12


def _jobs(n: int, seed: int = 0) -> list[WindowJob]:
    return random_window_jobs(n, (H, W), seed=seed)


def _run(model, jobs, **kw) -> tuple[Collector, FusionWorker]:
    out = Collector()
    worker = FusionWorker(model, FusedRunComposer([out], {"purpose": "fused"}), **kw)
    worker.start_run((4 * H, 4 * W), "fused")
    for job in jobs:
        worker.submit(job)
    worker.stop_run()
    assert worker.join(60)
    return out, worker


def test_feature_cache_and_batching_do_not_change_results(tiny_model):
    jobs = _jobs(12)
    plain, _ = _run(tiny_model, jobs, queue_size=64, when_full="block", feature_cache=False)
    cached, worker = _run(tiny_model, jobs, queue_size=64, when_full="block")
    assert worker.inference.feature_cache.hits > 0
    batched, _ = _run(tiny_model, jobs, queue_size=64, when_full="block", max_batch=4)
    for a, b, c in zip(plain.events(), cached.events(), batched.events(), strict=True):
        np.testing.assert_array_equal(a["data"]["fused_image"], b["data"]["fused_image"])
        np.testing.assert_allclose(a["data"]["fused_image"], c["data"]["fused_image"], atol=1e-5)
    # the cached path equals the model's own plain forward
    job = jobs[3]
    lq = torch.from_numpy(np.stack(job.lr_frames))[None, :, None]
    hq = torch.from_numpy(np.stack(job.hr_frames))[None, :, None]
    with torch.inference_mode():
        ref = tiny_model.net(lq, hq)[0, 0].clamp(0, 1).numpy()
    np.testing.assert_allclose(cached.events()[3]["data"]["fused_image"], ref, atol=1e-5)


class _GatedNet(torch.nn.Module):
    """Wraps the tiny net; ``fuse`` waits on a gate so the queue fills up."""

    def __init__(self, net, gate: threading.Event, fail_on: int | None = None):
        super().__init__()
        self.net, self.gate, self.fail_on, self.calls = net, gate, fail_on, 0

    @property
    def num_feat(self):
        return self.net.num_feat

    @property
    def needs_hr_frames(self):
        return self.net.needs_hr_frames

    def encode_lr(self, x):
        return self.net.encode_lr(x)

    def encode_hr(self, y):
        return self.net.encode_hr(y)

    def fuse(self, *a, **kw):
        self.gate.wait(30)
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.net.fuse(*a, **kw)


def _gated(tiny_model, gate, fail_on=None) -> FusionModel:
    return FusionModel(
        net=_GatedNet(tiny_model.net, gate, fail_on),
        name="gated",
        arch="edvr_stf",
        sha256="0" * 64,
        device=torch.device("cpu"),
    )


def test_skip_policy_records_gaps_instead_of_blocking(tiny_model):
    gate = threading.Event()
    out = Collector()
    worker = FusionWorker(
        _gated(tiny_model, gate), FusedRunComposer([out], {}), queue_size=2, when_full="skip"
    )
    worker.start_run((4 * H, 4 * W), "fused")
    accepted = [worker.submit(job) for job in _jobs(10)]
    gate.set()
    worker.stop_run()
    assert worker.join(60)
    assert not all(accepted) and any(accepted)
    gaps = [e["data"]["window_index"] for e in out.events("gaps")]
    fused = [e["data"]["window_index"] for e in out.events("fused")]
    assert sorted(gaps + fused) == list(range(10)) and gaps == worker.report.gaps
    assert out.of("stop")[0]["exit_status"] == "success"


def test_model_error_ends_fused_run_with_fail_and_reason(tiny_model):
    gate = threading.Event()
    gate.set()
    out, worker = _run(
        _gated(tiny_model, gate, fail_on=3), _jobs(6), queue_size=8, when_full="block"
    )
    (stop,) = out.of("stop")
    assert stop["exit_status"] == "fail" and "out of memory" in stop["reason"]
    assert len(out.events()) == 2


def test_failing_sink_is_dropped_and_reported(tiny_model):
    def broken(name, doc):
        if name == "event":
            raise ConnectionError("Tiled went away")

    good = Collector()
    worker = FusionWorker(
        tiny_model, FusedRunComposer([broken, good], {}), queue_size=8, when_full="block"
    )
    worker.start_run((4 * H, 4 * W), "fused")
    for job in _jobs(3):
        worker.submit(job)
    worker.stop_run()
    assert worker.join(60)
    assert len(good.events()) == 3
    assert "Tiled went away" in good.of("stop")[0]["reason"]


def test_filler_reads_legacy_resource_datum(tmp_path):
    path = tmp_path / "frames.h5"
    frames = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    with h5py.File(path, "w") as h5:
        h5["/entry/data/data"] = frames
    filler = FrameFiller()
    filler.resource(
        {
            "uid": "r1",
            "spec": "AD_HDF5",
            "root": str(tmp_path),
            "resource_path": "frames.h5",
            "resource_kwargs": {},
            "path_semantics": "posix",
        }
    )
    filler.datum({"datum_id": "r1/2", "resource": "r1", "datum_kwargs": {"point_number": 2}})
    event = {"uid": "e", "seq_num": 3, "data": {"cam_image": "r1/2"}}
    np.testing.assert_array_equal(filler.frame("d", "s", "cam_image", event, 2), frames[2])
    with pytest.raises(DocumentError, match="no data and no asset"):
        filler.frame("d", "s", "cam_image", {"uid": "e2", "seq_num": 4, "data": {}}, 3)
    filler.close()


def test_model_needing_hr_frames_streams_like_its_plain_forward():
    """EDVR-STF with hr_gate: the runner passes the raw Phantom frames to ``fuse``."""
    import xfusion_models as xm

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = xm.edvr_stf("tiny", hr_gate=True, hr_gate_feat=4).eval()
    with torch.no_grad():  # the start init barely looks at hq; make the gate matter
        net.hr_gate.logits.weight.normal_(0, 0.5)
    model = FusionModel(
        net=net, name="gated", arch="edvr_stf", sha256="0" * 64, device=torch.device("cpu")
    )
    jobs = _jobs(8)
    cached, worker = _run(model, jobs, queue_size=64, when_full="block", max_batch=3)
    assert worker.inference.feature_cache.hits > 0
    events = cached.events()
    assert len(events) == len(jobs)
    for job, event in zip(jobs, events, strict=True):
        lq = torch.from_numpy(np.stack(job.lr_frames))[None, :, None]
        hq = torch.from_numpy(np.stack(job.hr_frames))[None, :, None]
        with torch.inference_mode():
            ref = net(lq, hq)[0, 0].clamp(0, 1).numpy()
        np.testing.assert_allclose(event["data"]["fused_image"], ref, atol=1e-5)


def test_motion_compensated_model_reports_tau_and_blend_weights():
    """EDVR-STF with hr_warp: every fused event carries the time fraction the model placed
    frame t at and how much of the frame each source gave; a plain model gives NaN."""
    import xfusion_models as xm

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = xm.edvr_stf("tiny", hr_warp=True, hr_warp_feat=4).eval()
    model = FusionModel(
        net=net, name="warp", arch="edvr_stf", sha256="0" * 64, device=torch.device("cpu")
    )
    jobs = _jobs(4)
    docs, worker = _run(model, jobs, queue_size=64, when_full="block", max_batch=2)
    motion = worker.inference.motion_cache  # the worker's own: 4 windows, 1 Phantom pair
    assert (motion.misses, motion.hits) == (1, 3)
    for job, event in zip(jobs, docs.events(), strict=True):
        data = event["data"]
        weights = np.asarray(data["blend_weights"])
        assert weights.shape == (4,) and abs(float(weights.sum()) - 1) < 1e-4
        assert 0.0 <= data["tau"] <= 1.0
        lq = torch.from_numpy(np.stack(job.lr_frames))[None, :, None]
        hq = torch.from_numpy(np.stack(job.hr_frames))[None, :, None]
        with torch.inference_mode():
            lr = net.encode_lr(lq.flatten(0, 1)).unflatten(0, (1, 3))
            hr = net.encode_hr(hq.flatten(0, 1)).unflatten(0, (1, 2))
            fused = net.fuse(lr, hr, lq[:, 1], hr_frames=hq)
        assert data["tau"] == pytest.approx(float(fused.tau[0]))
        np.testing.assert_allclose(weights, fused.blend_weights[0].numpy(), atol=1e-6)
    plain = FusionModel(
        net=xm.edvr_stf("tiny").eval(), name="plain", arch="edvr_stf", sha256="0" * 64,
        device=torch.device("cpu"),
    )  # fmt: skip
    docs, _ = _run(plain, _jobs(2), queue_size=64, when_full="block", max_batch=1)
    event = docs.events()[0]["data"]
    assert np.isnan(event["tau"]) and np.isnan(event["blend_weights"]).all()
