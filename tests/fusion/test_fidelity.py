"""The residual of a fused frame against the Shimadzu frame, in noise units (issue 10)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from xfusion_models.ops import ShimadzuMeasurement
from xfusion_stream.calibration import CalibrationRecord, IntensityMatch
from xfusion_stream.fusion import (
    FusedRunComposer,
    FusionWorker,
    WindowJob,
    shimadzu_measurement,
    shimadzu_residuals,
)
from xfusion_stream.fusion._fidelity import residual_map, residual_map_shape
from xfusion_stream.testing import DocumentLog

H, W = 40, 56  # Shimadzu frame; the fused frame is 4x
PHOTONS = 4000.0  # shot noise: photons at intensity 1
SPOT = (60, 150, 14)  # row, col, radius (fused px) of a particle the Shimadzu saw


def _scene() -> np.ndarray:
    """A textured sample with a dark particle, on the fused grid."""
    yy, xx = np.mgrid[0 : 4 * H, 0 : 4 * W].astype(np.float32)
    image = 0.5 + 0.15 * np.sin(xx / 13.0) * np.cos(yy / 19.0) + 0.1 * (xx > 2 * W)
    image[_spot()] = 0.2
    return image.astype(np.float32)


def _spot() -> np.ndarray:
    yy, xx = np.mgrid[0 : 4 * H, 0 : 4 * W]
    row, col, radius = SPOT
    return (yy - row) ** 2 + (xx - col) ** 2 < radius**2


def _shimadzu(truth: np.ndarray, blur_px: float = 0.0, seed: int = 0) -> np.ndarray:
    """What the Shimadzu records: area x4, its extra blur, shot noise."""
    lr = cv2.resize(truth, (W, H), interpolation=cv2.INTER_AREA)
    if blur_px:
        lr = cv2.GaussianBlur(lr, (0, 0), blur_px)
    rng = np.random.default_rng(seed)
    return (rng.poisson(lr * PHOTONS) / PHOTONS).astype(np.float32)


def test_the_true_state_is_supported_within_noise():
    truth = _scene()
    for seed in range(3):
        (r,) = shimadzu_residuals([truth], [_shimadzu(truth, seed=seed)], ShimadzuMeasurement())
        assert 0.8 < r.rms < 1.25, r.rms  # noise, in units of the noise
        assert 2.0 < r.p99 < 3.5, r.p99
        assert r.map.shape == (H, W) and r.map.dtype == np.float32


def test_a_wrong_state_is_flagged_where_it_differs():
    """The particle is not where the fused frame shows it (a ghost of another time)."""
    truth = _scene()
    wrong = truth.copy()
    wrong[_spot()] = truth[~_spot()].mean()  # particle gone ...
    wrong[20:50, 20:60] = 0.2  # ... and one where there is none
    (r,) = shimadzu_residuals([wrong], [_shimadzu(truth)], ShimadzuMeasurement())
    row, col, _ = SPOT
    assert r.map[row // 4, col // 4] < -10  # darker than the fused frame explains
    assert r.map[35 // 4, 40 // 4] > 10  # brighter
    untouched = r.map[20:, :24]
    assert np.sqrt(np.mean(untouched**2)) < 1.3
    assert r.rms > 3 and r.p99 > 10


def test_the_calibrated_blur_is_part_of_the_measurement():
    truth = _scene()
    shimadzu = _shimadzu(truth, blur_px=1.0)
    (sharp,) = shimadzu_residuals([truth], [shimadzu], ShimadzuMeasurement(4, 0.0))
    (blurred,) = shimadzu_residuals([truth], [shimadzu], ShimadzuMeasurement(4, 1.0))
    assert blurred.rms < 1.25 < sharp.rms

    record = CalibrationRecord.model_validate(
        {**_plain_record().model_dump(), "intensity": _match(extra_blur_px=0.7).model_dump()}
    )
    measured = shimadzu_measurement(record)
    assert (measured.ratio, measured.blur_px) == (4, 0.7)
    plain = shimadzu_measurement(_plain_record())
    assert (plain.ratio, plain.blur_px) == (4, 0.0)
    assert 0.9 < plain.noise_scale < 3.0  # registration resamples: the estimate reads low


def _plain_record() -> CalibrationRecord:
    from xfusion_stream.core import InterCameraTransform

    return CalibrationRecord.from_transform(InterCameraTransform(), (H, W), (4 * H, 4 * W))


def _match(extra_blur_px: float) -> IntensityMatch:
    return IntensityMatch(
        shimadzu_gain=1.0, shimadzu_offset_counts=0.0, r2=1.0, n_pixels=100,
        extra_blur_px=extra_blur_px,
    )  # fmt: skip


@pytest.mark.parametrize("shape", [(40, 56), (64, 64), (65, 30), (250, 400)])
def test_the_map_is_small_and_keeps_the_worst_pixel_of_each_block(shape):
    rng = np.random.default_rng(1)
    residual = rng.normal(0, 1, shape).astype(np.float32)
    residual[shape[0] - 1, 3] = -9.0  # one unsupported pixel at an edge
    small = residual_map(residual)
    assert small.shape == residual_map_shape((4 * shape[0], 4 * shape[1]))
    assert max(small.shape) <= 64 and small.dtype == np.float32
    k = -(-max(shape) // 64)
    assert small[-1, 3 // k] == -9.0  # the sign and size survive the reduction
    if k == 1:
        np.testing.assert_array_equal(small, residual)


def test_the_worker_measures_with_the_optics_it_is_given(tiny_model):
    rng = np.random.default_rng(2)
    lr = [rng.uniform(0.3, 0.7, (8, 12)).astype(np.float32) for _ in range(3)]
    hr = [rng.uniform(0.3, 0.7, (32, 48)).astype(np.float32) for _ in range(2)]
    job = WindowJob(0, 1, 200, (0, 1, 2), (0, 1), tuple(lr), tuple(hr))  # type: ignore[arg-type]
    optics = ShimadzuMeasurement(4, 0.7)
    log = DocumentLog()
    composer = FusedRunComposer([log], {"purpose": "test"})
    worker = FusionWorker(tiny_model, composer, queue_size=2, when_full="block", shimadzu=optics)
    worker.start_run((32, 48), "fused")
    worker.submit(job)
    worker.stop_run()
    assert worker.join(60) and worker.report.failure == ""
    (event,) = log.events("fused")
    data = event["data"]
    (expected,) = shimadzu_residuals([data["fused_image"]], [lr[1]], optics)
    (unblurred,) = shimadzu_residuals([data["fused_image"]], [lr[1]], ShimadzuMeasurement())
    assert data["shimadzu_residual_rms"] == expected.rms != unblurred.rms
    assert worker.report.residual_rms == [expected.rms]
    assert worker.report.residual_p99 == [expected.p99]
