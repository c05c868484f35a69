"""Spatial calibration on simulated G400 grids with known transforms."""

from __future__ import annotations

import numpy as np
import pytest

from xfusion_stream.calibration import calibrate_grid
from xfusion_stream.core import CalibrationError, InterCameraTransform
from xfusion_stream.simulation import (
    Scene,
    SceneConfig,
    g400_grid_image,
    render_phantom,
    render_shimadzu,
)

SHIMADZU_SHAPE = (64, 96)


def _random_transform(rng: np.random.Generator, mirror: bool = True) -> InterCameraTransform:
    return InterCameraTransform(
        rotation_deg=float(rng.uniform(0.0, 3.0)),
        translation_px=tuple(float(v) for v in rng.uniform(-30.0, 30.0, 2)),
        scale_col=float(rng.uniform(0.98, 1.03)),
        scale_row=float(rng.uniform(0.98, 1.03)),
        mirror=mirror,
        ratio=4,
    )


def _grid_case(seed: int, transform: InterCameraTransform) -> tuple[list, list]:
    config = SceneConfig(
        seed=seed,
        shimadzu_shape=SHIMADZU_SHAPE,
        content="grid",
        transform=transform,
        n_shimadzu=10,
        grid_angle_deg=float(np.random.default_rng(seed).uniform(-3, 3)),
    )
    scene = Scene(config)
    phantom = [scene.phantom_frame(i) for i in range(min(4, scene.n_phantom))]
    shimadzu = [scene.shimadzu_frame(k) for k in range(scene.n_shimadzu)]
    return phantom, shimadzu


def _corner_error(record, transform: InterCameraTransform) -> float:
    """Largest disagreement (Phantom px) of the two matrices over the Shimadzu field."""
    rows, cols = record.shimadzu_shape
    r = record.ratio
    corners = np.array([[0, 0, 1], [cols * r - 1, 0, 1], [0, rows * r - 1, 1]], float)
    corners = np.vstack([corners, [cols * r - 1, rows * r - 1, 1]])
    truth = transform.matrix(record.shimadzu_shape, record.phantom_shape)
    got = record.matrix_array()
    return float(np.abs(corners @ (got - truth).T).max())


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_recovers_known_transform(seed: int) -> None:
    transform = _random_transform(np.random.default_rng(100 + seed))
    phantom, shimadzu = _grid_case(seed, transform)
    result = calibrate_grid(phantom, shimadzu, source=f"seed {seed}")
    record = result.record
    assert abs(record.rotation_deg - transform.rotation_deg) < 0.05
    assert abs(record.scale_col / transform.scale_col - 1) < 0.002
    assert abs(record.scale_row / transform.scale_row - 1) < 0.002
    assert record.residuals[-1].mean < 0.3
    assert [p.name for p in record.residuals] == ["euclidean", "per_axis_scale"]
    assert record.residuals[-1].mean < record.residuals[0].mean
    assert _corner_error(record, transform) < 0.5
    assert record.n_pairs > 100
    # the convention is the simulator's: the record's parameters rebuild its matrix
    np.testing.assert_allclose(
        record.transform().matrix(record.shimadzu_shape, record.phantom_shape),
        record.matrix_array(),
        atol=1e-9,
    )
    crop = record.crop
    assert crop.width % 16 == 0 and crop.height % 16 == 0
    assert crop.x + crop.width <= record.phantom_shape[1]
    assert crop.y + crop.height <= record.phantom_shape[0]
    assert crop.width * crop.height > 0.6 * np.prod(record.phantom_shape)
    assert 3.0 < record.pixel_size_um.phantom < 3.4  # scene default: 3.2 um per Phantom px


def test_without_mirror_and_large_translation() -> None:
    transform = InterCameraTransform(
        rotation_deg=2.7, translation_px=(41.0, -37.0), scale_col=0.985, scale_row=1.027,
        mirror=False,
    )  # fmt: skip
    phantom, shimadzu = _grid_case(7, transform)
    record = calibrate_grid(phantom, shimadzu, mirror=False).record
    assert not record.mirror
    assert abs(record.rotation_deg - 2.7) < 0.05
    assert _corner_error(record, transform) < 0.5


def test_periodic_grid_without_beam_profile_takes_smallest_translation() -> None:
    """A perfect lattice fixes the translation only modulo the pitch: say so."""
    rng = np.random.default_rng(3)
    transform = InterCameraTransform(rotation_deg=1.0, translation_px=(6.0, -4.0))
    scene = g400_grid_image((256, 384), 20.0, 0.3, 1.5)
    phantom = [render_phantom(scene, photons=2000, rng=rng) for _ in range(3)]
    shimadzu = [render_shimadzu(scene, transform, SHIMADZU_SHAPE, photons=1000, rng=rng)]
    result = calibrate_grid(phantom, shimadzu)
    assert result.translation_ambiguous
    assert _corner_error(result.record, transform) < 0.5


def test_flat_frames_raise_calibration_error() -> None:
    flat = np.full((256, 384), 1000, np.uint16)
    flat[0, 0] = 0
    with pytest.raises(CalibrationError):
        calibrate_grid([flat], [np.full(SHIMADZU_SHAPE, 1000, np.uint16)])


def test_frames_of_mixed_shapes_raise() -> None:
    with pytest.raises(CalibrationError, match="phantom"):
        calibrate_grid([np.zeros((8, 8)), np.zeros((9, 8))], [np.zeros((2, 2))])
