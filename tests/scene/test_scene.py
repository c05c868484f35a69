"""Scene engine: timing, determinism, camera geometry, motion and the G400 grid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from xfusion_stream.core import ConfigError, InterCameraTransform
from xfusion_stream.simulation import Scene, SceneConfig, g400_grid_image

SMALL = dict(shimadzu_shape=(32, 48), n_shimadzu=64)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene(SceneConfig(seed=3, **SMALL))


def test_shapes_and_dtypes(scene: Scene) -> None:
    assert scene.phantom_shape == (128, 192)
    truth = scene.truth(1234.5)
    assert truth.dtype == np.float32 and truth.shape == (128, 192)
    assert 0.0 <= truth.min() and truth.max() <= 1.0 and truth.std() > 0.02
    s = scene.shimadzu_frame(0)
    p = scene.phantom_frame(0)
    assert s.dtype == np.uint16 and s.shape == (32, 48)
    assert p.dtype == np.uint16 and p.shape == (128, 192)
    assert scene.shimadzu_times_ns().dtype == np.int64
    assert scene.phantom_times_ns().dtype == np.int64
    assert scene.phantom_e_flags().dtype == bool
    with pytest.raises(IndexError):
        scene.shimadzu_frame(64)


def test_frames_deterministic_in_any_order() -> None:
    a = Scene(SceneConfig(seed=7, **SMALL))
    b = Scene(SceneConfig(seed=7, **SMALL))
    first_a = [a.shimadzu_frame(9), a.shimadzu_frame(2), a.phantom_frame(4), a.phantom_frame(1)]
    first_b = [b.phantom_frame(1), b.phantom_frame(4), b.shimadzu_frame(2), b.shimadzu_frame(9)]
    for x, y in zip(first_a, first_b[::-1]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.phantom_times_ns(), b.phantom_times_ns())


def test_different_seeds_differ() -> None:
    a = Scene(SceneConfig(seed=1, **SMALL))
    b = Scene(SceneConfig(seed=2, **SMALL))
    assert np.abs(a.truth(0.0) - b.truth(0.0)).mean() > 0.02
    assert not np.array_equal(a.shimadzu_frame(3), b.shimadzu_frame(3))


def test_noise_differs_between_frames_of_a_static_scene() -> None:
    grid = Scene(SceneConfig(content="grid", **SMALL))
    np.testing.assert_array_equal(grid.truth(0.0), grid.truth(5000.0))
    assert not np.array_equal(grid.shimadzu_frame(0), grid.shimadzu_frame(1))


def test_timeline_relations(scene: Scene) -> None:
    cfg = scene.config
    s_times = scene.shimadzu_times_ns()
    np.testing.assert_array_equal(s_times, np.arange(cfg.n_shimadzu) * cfg.shimadzu_frame_ns)
    numbers = scene.phantom_frame_numbers()
    times = scene.phantom_times_ns()
    e = scene.phantom_e_flags()
    assert list(numbers[: cfg.n_pre_trigger]) == [-2, -1]
    assert np.all(np.diff(numbers) == 1)
    assert np.all(times[numbers < 0] < 0) and times[numbers == 0][0] == 0
    assert np.all(np.diff(times) > 0)
    assert not e[numbers < 0].any() and e[numbers == 0][0]
    e_idx = np.flatnonzero(e)
    assert np.all(np.diff(e_idx) == 1), "E frames are one contiguous block"
    assert not e[-cfg.n_post_trigger :].any()
    # every phantom_every-th Shimadzu frame has an E frame within 10 ns
    for k in range(0, cfg.n_shimadzu, cfg.phantom_every):
        assert np.min(np.abs(times[e] - s_times[k])) < 10
    # every Shimadzu frame is bracketed by E frames (continuous mode covers them all)
    assert times[e].min() <= s_times[0] and times[e].max() >= s_times[-1]
    assert scene.phantom_frame_rate_hz == pytest.approx(250e3)
    pairing = scene.phantom_shimadzu_index()
    for i in np.flatnonzero(pairing >= 0):
        assert abs(times[i] - s_times[pairing[i]]) < 10


def _manual_shimadzu(truth: np.ndarray, transform: InterCameraTransform, shape) -> np.ndarray:
    """Independent reference: sample the truth at M q for each HR point, average blocks."""
    r = transform.ratio
    rows, cols = shape
    m = transform.matrix(shape, truth.shape)
    ys, xs = np.mgrid[0 : rows * r, 0 : cols * r].astype(np.float64)
    px = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    py = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    hr = ndimage.map_coordinates(truth.astype(np.float64), [py, px], order=1, mode="nearest")
    return hr.reshape(rows, r, cols, r).mean(axis=(1, 3))


@pytest.mark.parametrize("mirror", [True, False])
def test_shimadzu_is_transformed_downsampled_truth(mirror: bool) -> None:
    # scale < 1 keeps every sample inside the Phantom field, where the truth is known
    transform = InterCameraTransform(
        rotation_deg=2.0, translation_px=(1.5, -1.0), scale_col=0.9, scale_row=0.9, mirror=mirror
    )
    cfg = SceneConfig(seed=5, transform=transform, shimadzu_photons=None, **SMALL)
    sc = Scene(cfg)
    k = 10
    expected = _manual_shimadzu(sc.shimadzu_truth(k), transform, cfg.shimadzu_shape)
    got = sc.shimadzu_frame(k).astype(np.float64) / (0.9 * 65535)
    assert np.abs(got - expected).max() < 2e-3
    # the other mirror setting is clearly different: the test can fail
    other = InterCameraTransform(**{**transform.to_dict(), "mirror": not mirror})
    wrong = _manual_shimadzu(sc.shimadzu_truth(k), other, cfg.shimadzu_shape)
    assert np.abs(got - wrong).mean() > 10 * np.abs(got - expected).mean()


def test_mirror_flips_left_right() -> None:
    plain = InterCameraTransform(mirror=False)
    flipped = InterCameraTransform(mirror=True)
    a = Scene(SceneConfig(seed=4, transform=plain, shimadzu_photons=None, **SMALL))
    b = Scene(SceneConfig(seed=4, transform=flipped, shimadzu_photons=None, **SMALL))
    fa = a.shimadzu_frame(3)[:, ::-1].astype(np.int64)
    fb = b.shimadzu_frame(3).astype(np.int64)
    assert np.abs(fa - fb).max() <= 1  # float summation order only
    assert np.abs(fa[:, ::-1] - fb).mean() > 100  # the scene is not itself symmetric


def test_motion_is_real_and_smooth(scene: Scene) -> None:
    motion = scene.motion
    d = [np.stack(motion.coarse_displacement(tau)) for tau in (2.0, 3.0)]
    step = np.hypot(*(d[1] - d[0]))
    assert 2.0 < step.max() <= 12.0, "several Phantom pixels per Phantom frame"
    # one Shimadzu step is 1/20 of a Phantom period: velocity nearly constant across it
    taus = 2.0 + np.arange(3) / scene.config.phantom_every
    f = [np.stack(motion.coarse_displacement(t)) for t in taus]
    first = np.abs(f[1] - f[0]).max()
    second = np.abs(f[2] - 2 * f[1] + f[0]).max()
    assert second < 0.05 * first
    # the truth changes a little between Shimadzu frames, much more between Phantom frames
    near = np.abs(scene.truth(200.0) - scene.truth(0.0)).mean()
    far = np.abs(scene.truth(4000.0) - scene.truth(0.0)).mean()
    assert 0 < near < 0.3 * far


@pytest.mark.parametrize("angle", [0.0, 3.0])
def test_grid_period_matches_pitch(angle: float) -> None:
    pitch = 62.0 / 3.2
    image = g400_grid_image((512, 512), pitch, 0.25, angle, (1.3, -0.7))
    assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
    window = np.outer(np.hanning(512), np.hanning(512))
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2((image - image.mean()) * window)))
    freqs = np.fft.fftshift(np.fft.fftfreq(512))
    fy, fx = np.meshgrid(freqs, freqs, indexing="ij")
    radius = np.hypot(fx, fy)
    spectrum[radius < 0.5 / pitch] = 0  # keep the fundamental, drop DC and low-order leakage
    spectrum[radius > 1.5 / pitch] = 0
    iy, ix = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    # sub-bin peak: power-weighted centroid of the 5x5 neighbourhood
    near = (slice(iy - 2, iy + 3), slice(ix - 2, ix + 3))
    w = spectrum[near] ** 2
    px, py = (fx[near] * w).sum() / w.sum(), (fy[near] * w).sum() / w.sum()
    assert 1.0 / np.hypot(px, py) == pytest.approx(pitch, rel=0.01)
    peak_angle = np.rad2deg(np.arctan2(py, px)) % 90.0
    assert min(abs(peak_angle - angle), 90 - abs(peak_angle - angle)) < 0.5


def test_grid_bar_width_fraction() -> None:
    image = g400_grid_image((200, 200), 20.0, 0.25, 0.0, (0.0, 0.0), bar_transmission=0.0)
    # fraction of open area of a square lattice with bar fraction f is (1 - f)^2
    assert image.mean() == pytest.approx(0.75**2, abs=0.02)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="ratio"):
        SceneConfig(ratio=3)
    with pytest.raises(ConfigError, match="content"):
        SceneConfig(content="bubbles")  # type: ignore[arg-type]


def test_config_round_trips_through_dict() -> None:
    cfg = SceneConfig(seed=9, content="grid", grid_offset_px=(1.0, 2.0))
    assert SceneConfig.from_dict(cfg.to_dict()) == cfg


def test_config_is_a_frozen_hashable_validated_model() -> None:
    import json

    cfg = SceneConfig(seed=2)
    assert cfg.replace(seed=3) == SceneConfig(seed=3) and hash(cfg) == hash(SceneConfig(seed=2))
    with pytest.raises(ConfigError, match="SceneConfig: shimadzu_jitter_ns: .*less than 5"):
        cfg.replace(shimadzu_jitter_ns=5.0)
    with pytest.raises(ConfigError, match=r"SceneConfig: shimadzu_shape: .*\[3, 8\]"):
        SceneConfig(shimadzu_shape=(3, 8))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["transform"]["translation_px"] == [3.5, -2.0] and d["shimadzu_shape"] == [250, 400]


def test_held_out_textures_never_share_a_photograph_with_training() -> None:
    """A quality figure on ``held_out`` is on samples the shipped weights never saw."""
    from xfusion_stream.simulation._sample_images import TEXTURE_SETS

    training = set().union(*TEXTURE_SETS["training"])
    held_out = set().union(*TEXTURE_SETS["held_out"])
    assert training and held_out and not training & held_out


def test_held_out_textures_make_another_sample_from_the_same_seed() -> None:
    small = {"shimadzu_shape": (16, 24), "n_shimadzu": 4, "phantom_every": 2, "seed": 5}
    trained = Scene(SceneConfig(**small)).truth(0.0)
    unseen = Scene(SceneConfig(**small, textures="held_out")).truth(0.0)
    assert np.isfinite(unseen).all() and unseen.std() > 0.01
    assert not np.allclose(trained, unseen, atol=0.01)
    # everything else of the scene (beam, motion, timeline) is drawn as before
    assert SceneConfig(**small, textures="held_out").to_dict()["textures"] == "held_out"
