"""Virtual cameras over one sequence: frames, times, E flags, noise, crop, truth, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile
from pydantic import ValidationError

from xfusion_stream.app import identity_calibration
from xfusion_stream.calibration import Registration, pairing_table
from xfusion_stream.core import ConfigError, RecordedFormatError
from xfusion_stream.devices import (
    CameraBackend,
    VirtualCaseBackend,
    VirtualOptions,
    VirtualSequence,
)


def _read_all(backend: VirtualCaseBackend, limit=None):
    backend.arm()
    backend.trigger()
    return list(backend.readout(limit))


def test_phantom_sees_every_20th_frame_full_resolution_all_e(hr_folder, hr_stack):
    backend = VirtualCaseBackend(hr_folder, "phantom")
    assert isinstance(backend, CameraBackend)
    frames = _read_all(backend)
    assert [f.frame_number for f in frames] == [0, 1, 2]
    assert [f.time_ns for f in frames] == [0, 4000, 8000]
    assert all(f.e_flag for f in frames)
    for k, f in enumerate(frames):
        assert f.image.dtype == np.uint16 and f.image.shape == (64, 96)
        # 8-bit source -> 16-bit counts (x257), cropped at the top-left to 16-multiples
        expected = hr_stack[20 * k, :64, :96].astype(np.uint16) * 257
        np.testing.assert_array_equal(f.image, expected)
    s = backend.settings()
    assert s.frame_shape == (64, 96) and s.n_frames == 3
    assert s.frame_time_ns == 4000.0 and s.frame_rate_hz == pytest.approx(250_000.0)


def test_shimadzu_is_bicubic_x4_of_every_frame(hr_folder, hr_stack):
    frames = _read_all(VirtualCaseBackend(hr_folder, "shimadzu", photons=None))
    assert len(frames) == 41
    assert [f.frame_number for f in frames] == list(range(1, 42))
    assert [f.time_ns for f in frames] == [200 * k for k in range(41)]
    assert not any(f.e_flag for f in frames)
    hr = hr_stack[7, :64, :96].astype(np.float32) / 255.0
    lr = np.clip(cv2.resize(hr, (24, 16), interpolation=cv2.INTER_CUBIC), 0, 1)
    np.testing.assert_array_equal(frames[7].image, np.round(lr * 65535).astype(np.uint16))
    # Phantom and Shimadzu times coincide exactly every 20 Shimadzu frames
    phantom = _read_all(VirtualCaseBackend(hr_folder, "phantom"))
    assert [p.time_ns for p in phantom] == [frames[20 * k].time_ns for k in range(3)]


def test_area_mode_is_the_block_mean(hr_stack):
    seq = VirtualSequence(hr_stack, VirtualOptions(downsample="area", photons=None))
    hr = hr_stack[3, :64, :96].astype(np.float64) / 255.0
    block = hr.reshape(16, 4, 24, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(seq.shimadzu_clean(3), block, atol=1e-6)


def test_shot_noise_is_seeded_per_frame(hr_stack):
    a = VirtualSequence(hr_stack, VirtualOptions(photons=1000.0, seed=3))
    b = VirtualSequence(hr_stack, VirtualOptions(photons=1000.0, seed=3))
    c = VirtualSequence(hr_stack, VirtualOptions(photons=1000.0, seed=4))
    clean = VirtualSequence(hr_stack, VirtualOptions(photons=None))
    np.testing.assert_array_equal(a.shimadzu_frame(5), b.shimadzu_frame(5))
    assert not np.array_equal(a.shimadzu_frame(5), c.shimadzu_frame(5))
    assert not np.array_equal(a.shimadzu_frame(5), a.shimadzu_frame(6))
    # Poisson at b0 = 1000: relative noise ~ 1/sqrt(1000 * I); the mean stays put
    diff = a.shimadzu_frame(5).astype(float) - clean.shimadzu_frame(5).astype(float)
    assert 0.005 < diff.std() / 65535 < 0.05 and abs(diff.mean()) / 65535 < 0.005
    # a per-frame photon range draws b0 = 10**U(e0, e1) reproducibly
    r1 = VirtualSequence(hr_stack, VirtualOptions(photons=(1.0, 2.0)))
    r2 = VirtualSequence(hr_stack, VirtualOptions(photons=(1.0, 2.0)))
    np.testing.assert_array_equal(r1.shimadzu_frame(0), r2.shimadzu_frame(0))


def test_readout_matches_single_frame_regeneration(hr_folder):
    seq = VirtualSequence(hr_folder)
    frames = _read_all(VirtualCaseBackend(seq, "shimadzu"))
    np.testing.assert_array_equal(frames[12].image, seq.shimadzu_frame(12))
    assert len(_read_all(VirtualCaseBackend(seq, "shimadzu"), limit=5)) == 5


def test_ground_truth_is_the_hr_frame_and_the_phantom_frame(hr_folder, hr_stack):
    backend = VirtualCaseBackend(hr_folder, "shimadzu")
    truth = backend.ground_truth(13)
    np.testing.assert_array_equal(truth, hr_stack[13, :64, :96].astype(np.uint16) * 257)
    seq = backend.sequence
    np.testing.assert_array_equal(seq.ground_truth(40), seq.phantom_frame(2))


def test_sixteen_bit_tiff_sequence(tmp_path, hr_stack):
    folder = tmp_path / "tiffs"
    folder.mkdir()
    data = hr_stack.astype(np.uint16) * 200
    for k, frame in enumerate(data):
        tifffile.imwrite(folder / f"f{k:04d}.tif", frame)
    seq = VirtualSequence(folder, VirtualOptions(photons=None))
    np.testing.assert_array_equal(seq.phantom_frame(1), data[20, :64, :96])
    assert seq.shimadzu_frame(0).shape == (16, 24)


def test_lr_source_replaces_downsampling(tmp_path, hr_stack):
    lr = np.stack([cv2.resize(f, (25, 17), interpolation=cv2.INTER_AREA) for f in hr_stack])
    seq = VirtualSequence(hr_stack, VirtualOptions(photons=None), lr_source=lr)
    np.testing.assert_array_equal(seq.shimadzu_frame(4), lr[4, :16, :24].astype(np.uint16) * 257)


def test_both_traverse_modes_have_windows(hr_stack):
    seq = VirtualSequence(hr_stack)
    continuous = pairing_table(seq.phantom_timing(), seq.shimadzu_timing(), "continuous")
    assert len(continuous) == 40 and continuous.windows[0].hr == (0, 1)
    (window,) = pairing_table(seq.phantom_timing(), seq.shimadzu_timing(), "double").windows
    assert window.truth == 1 and window.hr == (0, 2) and window.shimadzu_index == 20


def test_identity_registration_is_exact(hr_stack):
    seq = VirtualSequence(hr_stack)
    record = identity_calibration(seq.lr_shape, seq.hr_shape)
    assert not record.mirror and record.crop.model_dump() == {
        "x": 0,
        "y": 0,
        "width": 96,
        "height": 64,
    }
    np.testing.assert_array_equal(record.matrix_array(), np.eye(3))
    reg = Registration(record)
    shimadzu = seq.shimadzu_frame(9)
    np.testing.assert_array_equal(reg.shimadzu_lr(shimadzu), shimadzu.astype(np.float32))
    phantom = seq.phantom_frame(1)
    np.testing.assert_array_equal(reg.phantom_hr(phantom), phantom.astype(np.float32))


def test_identity_calibration_rounds_down_and_checks_shapes():
    record = identity_calibration((25, 30), (100, 120))
    assert (record.crop.width, record.crop.height) == (112, 96)
    with pytest.raises(ConfigError, match="4 x shimadzu_shape"):
        identity_calibration((16, 24), (64, 100))


def test_too_short_sequence_names_the_need(hr_stack):
    with pytest.raises(ConfigError, match="needs at least 41"):
        VirtualSequence(hr_stack[:40])
    assert VirtualSequence(hr_stack[:21], VirtualOptions(phantom_every=10)).n_frames == 21


def test_bad_frames_name_the_file(hr_folder):
    colour = np.zeros((70, 100, 3), np.uint8)
    colour[..., 0] = 9  # not gray
    bad = hr_folder / "00000005.png"
    cv2.imwrite(str(bad), colour)
    seq = VirtualSequence(hr_folder)
    with pytest.raises(RecordedFormatError, match="00000005.png: image: expected one gray"):
        seq.shimadzu_frame(5)
    cv2.imwrite(str(bad), np.zeros((60, 100), np.uint8))
    with pytest.raises(RecordedFormatError, match=r"00000005.png: image: shape \(60, 100\)"):
        seq.ground_truth(5)


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (np.nan, "00000005.tif: image: 7000 pixels are NaN or infinite"),
        (np.inf, "00000005.tif: image: 7000 pixels are NaN or infinite"),
        (4095.0, r"00000005.tif: image: float pixels must be intensities in 0..1, found 4095"),
        (-0.25, r"found -0.25\.\."),
        (
            np.uint16,
            "00000005.tif: image: pixel type uint16 differs from the first frame's float32",
        ),
    ],
)
def test_frames_on_another_scale_are_refused_by_file(tmp_path, hr_stack, damage, words):
    """A NaN float frame, one of raw counts, or an 8-bit frame among 16-bit ones were
    clipped or scaled into plausible, wrong frames (fused ``ok: true``) or a traceback."""
    unit = (hr_stack / 255.0).astype(np.float32)
    for k, frame in enumerate(unit):
        tifffile.imwrite(tmp_path / f"{k:08d}.tif", frame)
    shape = unit.shape[1:]
    if damage is np.uint16:
        tifffile.imwrite(tmp_path / "00000005.tif", (unit[5] * 65535).astype(np.uint16))
    else:
        tifffile.imwrite(tmp_path / "00000005.tif", np.full(shape, damage, np.float32))
    seq = VirtualSequence(tmp_path, VirtualOptions(photons=None))
    assert seq.ground_truth(4).dtype == np.uint16  # the clip's own frames still read
    with pytest.raises(RecordedFormatError, match=words):
        seq.ground_truth(5)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"phantom_every": 1}, "phantom_every: .*greater than or equal to 2"),
        ({"photons": 0.0}, "photons: must be > 0"),
        ({"photons": (3.0, 1.0)}, "e0 <= e1"),
        ({"downsample": "nearest"}, "downsample"),
        ({"frame_ns": 0}, "frame_ns"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ConfigError, match=match):
        VirtualOptions(**options)


def test_missing_or_empty_folder(tmp_path, hr_stack):
    with pytest.raises(ConfigError, match="not found"):
        VirtualSequence(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no PNG/TIFF frames"):
        VirtualSequence(tmp_path)
    with pytest.raises(ConfigError, match="smaller than 16x16"):
        VirtualSequence(hr_stack[:, :10, :])


def test_shared_sequence_refuses_conflicting_options(hr_stack):
    seq = VirtualSequence(hr_stack, VirtualOptions(phantom_every=10))
    assert VirtualCaseBackend(seq, "phantom").settings().n_frames == 5
    with pytest.raises(ValueError, match="phantom_every=15"):
        VirtualCaseBackend(seq, "phantom", phantom_every=15)
    with pytest.raises(ValueError, match="camera must be"):
        VirtualCaseBackend(seq, "both")  # type: ignore[arg-type]


def test_shared_sequence_accepts_agreeing_options_and_refuses_unknown_ones(hr_stack):
    seq = VirtualSequence(hr_stack, VirtualOptions(phantom_every=10, photons=(1.0, 2.0)))
    backend = VirtualCaseBackend(seq, "shimadzu", phantom_every=10, photons=[1.0, 2.0])
    assert backend.sequence is seq
    with pytest.raises(ConfigError, match="VirtualOptions: phantom_evry: Extra inputs"):
        VirtualCaseBackend(seq, "phantom", phantom_evry=10)


def test_options_are_a_frozen_validated_config():
    options = VirtualOptions(photons=[1, 2])
    assert options.photons == (1.0, 2.0) and options.multiple == 16
    assert options.replace(seed=4) == VirtualOptions(photons=(1.0, 2.0), seed=4)
    with pytest.raises(ConfigError, match="ratio"):
        options.replace(ratio=0)
    with pytest.raises(ValidationError, match="frozen"):
        options.seed = 5  # type: ignore[misc]
