"""A tiny single-camera sequence (41 frames, 70x100 px) as an array and as a PNG folder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from xfusion_stream.testing import DocumentLog

N_FRAMES, ROWS, COLS = 41, 70, 100  # cropped to 64x96 -> Shimadzu 16x24


def moving_stack(n: int = N_FRAMES, rows: int = ROWS, cols: int = COLS) -> np.ndarray:
    """scikit-image's camera, panned 2 px down and 1 px right per frame (uint8)."""
    import skimage.data

    image = skimage.data.camera()
    return np.stack(
        [image[100 + 2 * k : 100 + 2 * k + rows, 50 + k : 50 + k + cols] for k in range(n)]
    )


@pytest.fixture(scope="session")
def hr_stack() -> np.ndarray:
    return moving_stack()


@pytest.fixture
def hr_folder(tmp_path, hr_stack):
    folder = tmp_path / "clip_000"
    folder.mkdir()
    for k, frame in enumerate(hr_stack):
        assert cv2.imwrite(str(folder / f"{k:08d}.png"), frame)
    return folder


@pytest.fixture
def collector():
    return DocumentLog
