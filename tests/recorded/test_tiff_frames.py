"""TIFF frames as exports write them: LZW-compressed frames read without imagecodecs,
and what cannot be read faithfully is a RecordedFormatError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xfusion_stream.core import RecordedFormatError
from xfusion_stream.devices._virtual_backend import read_gray
from xfusion_stream.recorded import read_frame, read_tiff


def _frame(seed: int, shape: tuple[int, int] = (37, 52)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)


def _save_lzw(path: Path, *frames: np.ndarray) -> Path:
    """Frames as Pillow writes an LZW TIFF (ImageJ's and camera software's
    "compressed TIFF"); more than one frame makes a multi-page file."""
    first, *rest = [Image.fromarray(f) for f in frames]
    first.save(path, compression="tiff_lzw", save_all=bool(rest), append_images=rest)
    return path


@pytest.mark.parametrize("shape", [(37, 52), (1, 40), (256, 384)])
def test_an_lzw_frame_reads_bit_for_bit(tmp_path: Path, shape):
    frame = _frame(1, shape)
    path = _save_lzw(tmp_path / "img_000001.tif", frame)
    got = read_frame(path)
    assert got.dtype == np.uint16 and np.array_equal(got, frame)


def test_virtual_data_reads_lzw_frames_too(tmp_path: Path):
    frame = _frame(2)
    got = read_gray(_save_lzw(tmp_path / "f.tif", frame))
    np.testing.assert_array_equal(got, frame.astype(np.float32) / 65535.0)


def test_a_multi_page_lzw_file_is_refused_not_read_as_its_first_page(tmp_path: Path):
    path = _save_lzw(tmp_path / "stack.tif", _frame(3), _frame(4))
    with pytest.raises(RecordedFormatError) as info:
        read_frame(path)
    assert Path(info.value.path) == path


def test_a_truncated_lzw_frame_is_an_error_naming_the_file(tmp_path: Path):
    path = _save_lzw(tmp_path / "cut.tif", _frame(5, (128, 128)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordedFormatError) as info:
        read_frame(path)
    assert Path(info.value.path) == path


def test_a_file_that_is_no_tiff_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "notes.tif"
    path.write_text("not an image")
    with pytest.raises(RecordedFormatError, match="not a readable TIFF"):
        read_tiff(path)
