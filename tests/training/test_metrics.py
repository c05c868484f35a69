import math

import numpy as np
import pytest

from xfusion_models.metrics import aad, frame_metrics, psnr, ssim, to_uint8


def test_psnr_and_aad_known_values():
    a = np.zeros((16, 16), np.uint8)
    b = np.full((16, 16), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    assert aad(a, b) == pytest.approx(10.0)
    assert psnr(a, a) == math.inf


def test_float_input_is_quantised_to_8_bit_first():
    x = np.full((12, 12), 100 / 255, np.float32)
    y = x + 0.4 / 255  # rounds to the same grey level
    assert psnr(x, y) == math.inf
    assert to_uint8(np.array([[-0.2, 1.7]])).tolist() == [[0, 255]]
    with pytest.raises(TypeError, match="dtype"):
        to_uint8(np.zeros((2, 2), np.int32))


def test_ssim_of_flat_frames_is_the_luminance_term():
    # flat frames have no contrast or structure: SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b = 100.0, 110.0
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    x = np.full((20, 20), a, np.uint8)
    y = np.full((20, 20), b, np.uint8)
    assert ssim(x, y) == pytest.approx(expected, rel=1e-9)
    noise = np.random.default_rng(0).integers(0, 255, (32, 32)).astype(np.uint8)
    assert ssim(noise, noise) == pytest.approx(1.0)


def test_metrics_reject_mismatched_or_small_frames():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    assert set(frame_metrics(np.zeros((12, 12)), np.ones((12, 12)))) == {"psnr", "ssim", "aad"}
