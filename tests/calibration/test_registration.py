"""Registration with a record: the Shimadzu LR grid lands on the crop of the Phantom grid."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from xfusion_stream.calibration import CalibrationRecord, Registration
from xfusion_stream.core import CalibrationError, InterCameraTransform
from xfusion_stream.simulation import render_shimadzu

SHIMADZU, PHANTOM = (48, 80), (192, 320)


def _smooth_scene(shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(5)
    noise = rng.random((shape[0] // 32 + 1, shape[1] // 32 + 1)).astype(np.float32)
    scene = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(0.2 + 0.6 * scene, 0.0, 1.0)


@pytest.mark.parametrize("mirror", [True, False])
def test_shimadzu_lr_matches_area_downsampled_scene(mirror: bool) -> None:
    transform = InterCameraTransform(
        rotation_deg=2.2, translation_px=(5.5, -3.0), scale_col=1.015, scale_row=0.99,
        mirror=mirror,
    )  # fmt: skip
    scene = _smooth_scene(PHANTOM)
    frame = render_shimadzu(scene, transform, SHIMADZU, photons=None, rng=np.random.default_rng())
    record = CalibrationRecord.from_transform(transform, SHIMADZU, PHANTOM)
    registration = Registration(record)
    lr = registration.shimadzu_lr(frame)
    c = record.crop
    assert lr.dtype == np.float32 and lr.shape == (c.height // 4, c.width // 4)
    crop = scene[c.y : c.y + c.height, c.x : c.x + c.width]
    expected = crop.reshape(c.height // 4, 4, c.width // 4, 4).mean(axis=(1, 3))
    expected = expected * 0.9 * 65535  # to_counts scale
    error = np.abs(lr - expected) / expected.mean()
    assert error.mean() < 0.005
    assert error.max() < 0.03
    # the wrong mirror must be visibly wrong (the test can fail)
    wrong = CalibrationRecord.from_transform(
        InterCameraTransform(
            **{**transform.to_dict(), "translation_px": (5.5, -3.0), "mirror": not mirror}
        ),
        SHIMADZU,
        PHANTOM,
    )
    bad = Registration(wrong).shimadzu_lr(frame)
    bad_expected = expected[: bad.shape[0], : bad.shape[1]]
    assert np.abs(bad - bad_expected).mean() / expected.mean() > 0.05


def test_phantom_hr_is_the_crop_and_shapes_are_checked() -> None:
    record = CalibrationRecord.from_transform(InterCameraTransform(), SHIMADZU, PHANTOM)
    registration = Registration(record)
    frame = np.arange(np.prod(PHANTOM), dtype=np.uint16).reshape(PHANTOM)
    hr = registration.phantom_hr(frame)
    c = record.crop
    assert hr.dtype == np.float32 and hr.shape == (c.height, c.width)
    np.testing.assert_array_equal(hr, frame[c.y : c.y + c.height, c.x : c.x + c.width])
    with pytest.raises(CalibrationError, match="shimadzu frame shape"):
        registration.shimadzu_lr(np.zeros((10, 10), np.uint16))
    with pytest.raises(CalibrationError, match="phantom frame shape"):
        registration.phantom_hr(np.zeros(SHIMADZU, np.uint16))
