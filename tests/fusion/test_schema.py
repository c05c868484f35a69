"""The fused-frame schema: the default fields are today's, and a new one is one declaration."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from xfusion_models.ops import ShimadzuMeasurement
from xfusion_stream.fusion import (
    FUSED_FRAME,
    FrameField,
    FrameSchema,
    FusedFrame,
    FusedRunComposer,
    FusionWorker,
    WindowJob,
    by_candidate,
    metric_key,
    score_against_truth,
    shimadzu_residuals,
)
from xfusion_stream.products import ProductWriter
from xfusion_stream.testing import DocumentLog

H, W = 8, 12


def _jobs(n: int, *, truth: bool = False) -> list[WindowJob]:
    rng = np.random.default_rng(3)
    lr = [rng.uniform(0.2, 0.8, (H, W)).astype(np.float32) for _ in range(n + 2)]
    hr = [rng.uniform(0.2, 0.8, (4 * H, 4 * W)).astype(np.float32) for _ in range(n + 3)]
    return [
        WindowJob(
            index=i,
            shimadzu_index=i + 1,
            shimadzu_time_ns=200 * (i + 1),
            lr=(i, i + 1, i + 2),
            hr=(i, i + 2),
            lr_frames=(lr[i], lr[i + 1], lr[i + 2]),
            hr_frames=(hr[i], hr[i + 2]),
            truth_index=i + 1 if truth else -1,
            truth=hr[i + 1] if truth else None,
        )
        for i in range(n)
    ]


def _fuse(model, jobs, schema: FrameSchema, products: ProductWriter | None = None):
    docs = DocumentLog()
    composer = FusedRunComposer([docs], {"purpose": "schema test"}, schema=schema)
    worker = FusionWorker(model, composer, queue_size=8, when_full="block", on_frame=products)
    worker.start_run((4 * H, 4 * W), "fused")
    for job in jobs:
        worker.submit(job)
    worker.stop_run()
    assert worker.join(60) and worker.report.failure == ""
    return docs


# The fused stream as it was before the schema existed, plus the residual against the
# Shimadzu frame (issue 10): keep it this way.
_ARRAY = {"source": "xfusion", "dtype": "array"}
_INT = {"source": "xfusion", "dtype": "integer", "shape": []}
_NUMBER = {"source": "xfusion", "dtype": "number", "shape": []}
_SIGMA = "shot-noise sigma"
DATA_KEYS = {
    "fused_image": {
        **_ARRAY, "dtype_numpy": "<f4", "shape": [4 * H, 4 * W], "dims": ["row", "col"],
        "units": "intensity",
    },
    "window_index": _INT,
    "shimadzu_index": _INT,
    "shimadzu_time_ns": {**_INT, "units": "ns"},
    "lr_indices": {**_ARRAY, "dtype_numpy": "<i8", "shape": [3]},
    "hr_indices": {**_ARRAY, "dtype_numpy": "<i8", "shape": [2]},
    "truth_index": _INT,
    "attention": {**_ARRAY, "dtype_numpy": "<f4", "shape": [5]},
    "tau": _NUMBER,
    "blend_weights": {**_ARRAY, "dtype_numpy": "<f4", "shape": [4]},
    "shimadzu_residual_rms": {**_NUMBER, "units": _SIGMA},
    "shimadzu_residual_p99": {**_NUMBER, "units": _SIGMA},
    "shimadzu_residual_map": {
        **_ARRAY, "dtype_numpy": "<f4", "shape": [H, W], "dims": ["residual_row", "residual_col"],
        "units": _SIGMA,
    },
    **{
        f"{m}{s}": _NUMBER
        for s in ("", "_bicubic", "_nearest") for m in ("psnr", "ssim", "aad")
    },
}  # fmt: skip
CSV_COLUMNS = (
    "window_index shimadzu_index shimadzu_time_ns lr_prev lr_centre lr_next hr_before "
    "hr_after truth_index tau w_network w_phantom_before w_phantom_after w_shimadzu "
    "att_lr_prev att_lr_centre att_lr_next att_hr_before att_hr_after "
    "shimadzu_residual_rms shimadzu_residual_p99"
).split()
METRICS = tuple(f"{m}{s}" for s in ("", "_bicubic", "_nearest") for m in ("psnr", "ssim", "aad"))


def test_default_schema_is_the_fused_stream_as_it_was():
    assert FUSED_FRAME.data_keys((4 * H, 4 * W)) == DATA_KEYS
    assert list(FUSED_FRAME.csv_columns) == CSV_COLUMNS
    assert FUSED_FRAME.metric_names == METRICS
    assert [FUSED_FRAME[n].source for n in ("window_index", "tau", "psnr")] == [
        "job",
        "output",
        "truth",
    ]
    assert all(f.description for f in FUSED_FRAME)


def test_worker_events_follow_the_schema(tiny_model):
    jobs = _jobs(3, truth=True)
    docs = _fuse(tiny_model, jobs, FUSED_FRAME)
    (descriptor,) = [d for d in docs.of("descriptor") if d["name"] == "fused"]
    assert descriptor["data_keys"] == DATA_KEYS
    for job, event in zip(jobs, docs.events("fused"), strict=True):
        data = event["data"]
        assert set(data) == set(DATA_KEYS)
        assert data["window_index"] == job.index and type(data["window_index"]) is int
        np.testing.assert_array_equal(data["lr_indices"], job.lr)
        assert data["lr_indices"].dtype == np.int64
        assert data["attention"].dtype == np.float32 and np.isnan(data["tau"])
        expected = score_against_truth(
            data["fused_image"], job.truth, job.lr_frames[1], job.hr_frames
        )
        assert {k: data[k] for k in METRICS} == expected
        # the residual against Shimadzu frame t, of the frame the event carries
        (residual,) = shimadzu_residuals(
            [data["fused_image"]], [job.lr_frames[1]], ShimadzuMeasurement()
        )
        assert data["shimadzu_residual_rms"] == residual.rms > 0
        assert data["shimadzu_residual_p99"] == residual.p99 >= 0
        assert data["shimadzu_residual_map"].dtype == np.float32
        np.testing.assert_array_equal(data["shimadzu_residual_map"], residual.map)


def _centre_mean(job: WindowJob) -> float:
    return float(job.lr_frames[1].mean())


def test_an_added_field_reaches_descriptor_events_and_csv(tiny_model, tmp_path):
    """The whole change for a new per-frame scalar: one FrameField."""
    schema = FUSED_FRAME.extended(
        FrameField(
            "shimadzu_centre_mean", "<f8", "job", _centre_mean, units="intensity",
            description="mean of Shimadzu frame t, for drift checks",
        )
    )  # fmt: skip
    jobs = _jobs(4)
    products = ProductWriter(tmp_path, progress=False, video=False, schema=schema)
    docs = _fuse(tiny_model, jobs, schema, products)
    summary = products.close()
    assert summary["errors"] == [] and summary["n_frames"] == 4

    (descriptor,) = [d for d in docs.of("descriptor") if d["name"] == "fused"]
    assert descriptor["data_keys"] == {
        **DATA_KEYS,
        "shimadzu_centre_mean": {
            "source": "xfusion", "dtype": "number", "shape": [], "units": "intensity",
        },
    }  # fmt: skip
    events = docs.events("fused")
    assert len(events) == 4
    for job, event in zip(jobs, events, strict=True):
        assert event["data"]["shimadzu_centre_mean"] == _centre_mean(job)

    with open(summary["metrics_csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [*CSV_COLUMNS, "shimadzu_centre_mean"]
    assert [float(r["shimadzu_centre_mean"]) for r in rows] == [_centre_mean(j) for j in jobs]
    for key in ("shimadzu_residual_rms", "shimadzu_residual_p99"):
        assert [float(r[key]) for r in rows] == [e["data"][key] for e in events]
    rms = [e["data"]["shimadzu_residual_rms"] for e in events]
    assert summary["shimadzu_residual"] == round(float(np.mean(rms)), 3)


def test_array_field_expands_to_labelled_columns():
    schema = FUSED_FRAME.extended(
        FrameField(
            "hr_means", "<f4", "job", lambda job: [f.mean() for f in job.hr_frames],
            shape=(2,), labels=("before", "after"), column_prefix="hr_mean_",
            description="mean of each Phantom input",
        )
    )  # fmt: skip
    assert schema.csv_columns[-2:] == ("hr_mean_before", "hr_mean_after")
    assert schema.data_keys((4, 4), ["hr_means"]) == {
        "hr_means": {"source": "xfusion", "dtype": "array", "dtype_numpy": "<f4", "shape": [2]}
    }
    frame = FusedFrame(
        {
            "fused_image": np.zeros((4, 4), np.float32),
            "window_index": 0, "shimadzu_index": 1, "shimadzu_time_ns": 200,
            "lr_indices": (0, 1, 2), "hr_indices": (0, 1), "truth_index": -1,
            "attention": np.full(5, np.nan, np.float32), "hr_means": [0.25, 0.5],
        },
        schema,
    )  # fmt: skip
    row = schema.csv_row(frame, ["psnr"])
    assert row[-3:] == [0.25, 0.5, ""]
    with pytest.raises(ValueError, match="hr_means must have 2 values"):
        schema.csv_row(frame.replace(hr_means=[1.0, 2.0, 3.0]), [])


@pytest.mark.parametrize(
    "bad",
    [
        dict(name="tau"),  # taken
        dict(name="lr_prev"),  # a column of lr_indices
        dict(name="x", shape=(2,), labels=("a",)),  # one label short
        dict(name="x", source="model"),
        dict(name="x", dtype="<U4"),
        dict(name="not a name"),
    ],
)
def test_bad_fields_are_refused(bad):
    spec = dict(dtype="<f8", source="job", get=_centre_mean, description="d") | bad
    with pytest.raises(ValueError):
        FUSED_FRAME.extended(FrameField(**spec))


def test_record_needs_its_fields_and_defaults_the_optional_ones():
    values = {
        "fused_image": np.zeros((4, 4), np.float32), "window_index": 0, "shimadzu_index": 1,
        "shimadzu_time_ns": 200, "lr_indices": (0, 1, 2), "hr_indices": (0, 1),
        "truth_index": -1, "attention": np.full(5, np.nan, np.float32),
    }  # fmt: skip
    frame = FusedFrame(values)
    assert math.isnan(frame.tau) and frame.blend_weights.shape == (4,)
    # a frame-dependent array defaults to NaN of its shape in this frame's run
    assert np.isnan(frame["shimadzu_residual_map"]).all()
    assert frame["shimadzu_residual_map"].shape == (1, 1)
    assert frame.metrics == {} and "psnr" not in frame and math.isnan(frame["psnr"])
    scored = frame.replace(psnr=30.0)
    assert scored.metrics == {"psnr": 30.0} and scored.image is frame.image
    with pytest.raises(KeyError, match="attention"):
        FusedFrame({k: v for k, v in values.items() if k != "attention"})
    with pytest.raises(KeyError, match="brightness"):
        FusedFrame({**values, "brightness": 1.0})


def test_one_truth_scorer_one_vocabulary():
    from xfusion_models.metrics import psnr

    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.8, (32, 32)).astype(np.float32)
    before, after = truth + 0.05, np.clip(truth - 0.01, 0, 1)
    centre = rng.uniform(0.2, 0.8, (8, 8)).astype(np.float32)
    scores = score_against_truth(truth * 0.9, truth, centre, (before, after), nearer=1)
    assert tuple(scores) == FUSED_FRAME.metric_names
    assert scores["psnr"] == psnr(truth * 0.9, truth)
    assert scores["psnr_nearest"] == psnr(after, truth)
    assert score_against_truth(truth, truth, centre, (before, after))["psnr_nearest"] == psnr(
        before, truth
    )
    grouped = by_candidate(scores)
    assert list(grouped) == ["fused", "bicubic", "nearest"]
    assert grouped["nearest"]["aad"] == scores[metric_key("aad", "nearest")]
    with pytest.raises(KeyError):
        metric_key("mse", "fused")
