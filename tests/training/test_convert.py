import cv2
import numpy as np

from xfusion_models.data import read_meta_info
from xfusion_stream.cli import main


def _rgb_clips(root, rng, shape):
    for clip in ("000", "001"):
        (root / clip).mkdir(parents=True)
        for k in range(3):
            image = rng.integers(0, 256, (*shape, 3)).astype(np.uint8)
            cv2.imwrite(str(root / clip / f"{k:08d}.png"), image)


def test_convert_writes_gray_reds_layout_and_meta_info(tmp_path, capsys):
    rng = np.random.default_rng(1)
    _rgb_clips(tmp_path / "lo_rgb", rng, (6, 8))
    _rgb_clips(tmp_path / "hi_rgb", rng, (24, 32))
    argv = ["convert", "--no-progress", "--json"]
    argv += ["--dir-lo-convert", str(tmp_path / "lo_rgb"), "--out-dir-lo", str(tmp_path / "lo")]
    argv += ["--dir-hi-convert", str(tmp_path / "hi_rgb"), "--out-dir-hi", str(tmp_path / "hi")]
    assert main(argv) == 0
    bgr = cv2.imread(str(tmp_path / "hi_rgb" / "001" / "00000002.png"))
    gray = cv2.imread(str(tmp_path / "hi" / "001" / "00000002.png"), cv2.IMREAD_UNCHANGED)
    assert gray.shape == (24, 32) and gray.dtype == np.uint8
    b, g, r = (bgr[..., i].astype(float) for i in range(3))
    assert np.abs(gray - (0.299 * r + 0.587 * g + 0.114 * b)).max() <= 1.0
    lines = (tmp_path / "hi_meta_info.txt").read_text().splitlines()
    assert lines == ["000 3 (24,32,1)", "001 3 (24,32,1)"]
    entries = read_meta_info(tmp_path / "lo_meta_info.txt")
    assert [(e.folder, e.nframes, e.shape) for e in entries][0] == ("000", 3, (6, 8, 1))


def test_convert_names_the_missing_folder(tmp_path, capsys):
    argv = ["convert", "--dir-lo-convert", str(tmp_path / "nope"), "--out-dir-lo", str(tmp_path)]
    assert main(argv) == 2
    assert "nope" in capsys.readouterr().err
