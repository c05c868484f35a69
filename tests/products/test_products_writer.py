"""ProductWriter on synthetic FusedFrame/WindowJob records, both traverse modes."""

from __future__ import annotations

import csv
import math
import threading

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageSequence

from xfusion_stream.core import ConfigError
from xfusion_stream.fusion import FusedFrame, WindowJob
from xfusion_stream.products import (
    CSV_BASE_COLUMNS,
    METRIC_KEYS,
    TRUTH_REFERENCE_COLUMN,
    ProductWriter,
)
from xfusion_stream.products._label import band_height
from xfusion_stream.products._panels import DisplayWindow, lr_upsampled

H, W = 8, 12  # LR; fused and Phantom frames are (32, 48)
GAP, BAND = 4, band_height(1)  # the GIF strip's white gap and one-line title band


def _frames(n: int, *, double: bool, attention: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        lr = tuple(rng.uniform(0.2, 0.8, (H, W)).astype(np.float32) for _ in range(3))
        hr = tuple(rng.uniform(0.2, 0.8, (4 * H, 4 * W)).astype(np.float32) for _ in range(2))
        truth = rng.uniform(0.2, 0.8, (4 * H, 4 * W)).astype(np.float32) if double else None
        # values outside [0, 1] check the PNG's clip
        image = rng.uniform(-0.1, 1.1, (4 * H, 4 * W)).astype(np.float32)
        s = 10 + 2 * k
        job = WindowJob(
            index=k,
            shimadzu_index=s,
            shimadzu_time_ns=200 * s,
            lr=(s - 1, s, s + 1),
            hr=(k, k + 2) if double else (k, k + 1),
            lr_frames=lr,
            hr_frames=hr,
            truth_index=k + 1 if double else -1,
            truth=truth,
        )
        metrics = {}
        if double:
            metrics = {key: float(rng.uniform(20, 40)) for key in METRIC_KEYS}
        att = rng.dirichlet(np.ones(5)).astype(np.float32) if attention else np.full(5, np.nan)
        # the residual against the Shimadzu frame: noise, and one unsupported corner
        residual = rng.normal(0.0, 1.0, (H, W)).astype(np.float32).clip(-2.5, 2.5)
        residual[: H // 2, : W // 3] = 8.0 if k % 2 else -8.0
        frame = FusedFrame(
            {
                "window_index": k,
                "shimadzu_index": s,
                "shimadzu_time_ns": 200 * s,
                "lr_indices": job.lr,
                "hr_indices": job.hr,
                "truth_index": job.truth_index,
                "fused_image": image,
                "attention": att.astype(np.float32),
                "shimadzu_residual_map": residual,
                "shimadzu_residual_rms": float(np.sqrt(np.mean(residual**2))),
                "shimadzu_residual_p99": float(np.percentile(np.abs(residual), 99)),
                **metrics,
            }
        )
        out.append((frame, job))
    return out


def _run(tmp_path, pairs, **kwargs):
    writer = ProductWriter(tmp_path / "out", progress=False, **kwargs)
    for frame, job in pairs:
        writer(frame, job)
    return writer, writer.close()


def _csv_rows(path):
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def _gif_frames(path):
    with Image.open(path) as gif:
        assert gif.info.get("loop") == 0
        return [f.convert("L").copy() for f in ImageSequence.Iterator(gif)]


def test_continuous_products(tmp_path):
    pairs = _frames(10, double=False, attention=True)
    _, summary = _run(tmp_path, pairs, gif_max_frames=4, montage_windows=3, gif_min_width=1)
    out = tmp_path / "out"
    assert summary["n_frames"] == 10 and summary["traverse_mode"] == "continuous"
    assert summary["mean"] == {} and "metrics_png" not in summary
    assert summary["errors"] == [] and summary["n_errors"] == 0
    assert not (out / "metrics.png").exists()

    for frame, _ in pairs:
        stem = out / "frames" / f"fused_{frame.shimadzu_index:04d}"
        back = tifffile.imread(stem.with_suffix(".tif"))
        assert back.dtype == np.float32 and np.array_equal(back, frame.image)
        with Image.open(stem.with_suffix(".png")) as png:
            assert png.mode == "L"
            expected = np.round(np.clip(frame.image, 0, 1) * 255).astype(np.uint8)
            assert np.array_equal(np.asarray(png), expected)
    assert len(list((out / "frames").iterdir())) == 20

    header, rows = _csv_rows(summary["metrics_csv"])
    assert header == list(CSV_BASE_COLUMNS)
    assert len(rows) == 10
    first = dict(zip(header, rows[0]))
    assert (first["lr_prev"], first["lr_centre"], first["lr_next"]) == ("9", "10", "11")
    assert first["truth_index"] == "-1" and first["shimadzu_time_ns"] == "2000"
    att = [float(first[c]) for c in CSV_BASE_COLUMNS if c.startswith("att_")]
    assert att == [float(a) for a in pairs[0][0].attention]
    rms = [f["shimadzu_residual_rms"] for f, _ in pairs]
    assert [float(r[header.index("shimadzu_residual_rms")]) for r in rows] == rms
    assert summary["shimadzu_residual"] == round(float(np.mean(rms)), 3)
    assert summary["shimadzu_residual_p99"] > summary["shimadzu_residual"] > 1
    assert summary["overlay"] is None

    mean_att = np.mean([f.attention for f, _ in pairs], axis=0)
    assert summary["attention_mean"] == pytest.approx(mean_att.tolist(), rel=1e-6)
    for key in ("montage_png", "gif", "attention_png"):
        with Image.open(summary[key]) as im:
            assert im.size[0] > 0

    frames = _gif_frames(summary["gif"])
    assert len(frames) == 4
    assert frames[0].size == (3 * 4 * W + 2 * GAP, 4 * H + BAND)
    # The HR panel in continuous mode is the Phantom frame before, on the fixed window.
    frame0, job0 = pairs[0]
    window = DisplayWindow.from_frames(frame0.image, job0.hr_frames[0])
    panels = np.asarray(frames[0])[BAND:]
    cols = 4 * W
    assert np.array_equal(panels[:, 2 * (cols + GAP) :], window.to_uint8(job0.hr_frames[0]))
    assert np.array_equal(panels[:, cols + GAP : 2 * cols + GAP], window.to_uint8(frame0.image))
    lr = window.to_uint8(lr_upsampled(job0.lr_frames[1], (4 * H, 4 * W)))
    assert np.array_equal(panels[:, :cols], lr)
    assert np.all(panels[:, cols : cols + GAP] == 255)


def test_double_products_with_swin_nan_attention(tmp_path):
    pairs = _frames(7, double=True, attention=False)
    _, summary = _run(
        tmp_path, pairs, traverse_mode="double", save_frames=False, progress_total=7,
        gif_min_width=1,
    )  # fmt: skip
    out = tmp_path / "out"
    assert summary["frames_dir"] is None and not (out / "frames").exists()
    assert summary["attention_png"] is None and summary["attention_mean"] is None
    assert not (out / "attention.png").exists()
    with Image.open(summary["metrics_png"]) as im:
        assert im.format == "PNG"

    header, rows = _csv_rows(summary["metrics_csv"])
    assert header == [*CSV_BASE_COLUMNS, *METRIC_KEYS, TRUTH_REFERENCE_COLUMN] and len(rows) == 7
    assert all(r[header.index("att_hr_after")] == "nan" for r in rows)
    assert [r[-1] for r in rows] == [f"phantom {f.truth_index}" for f, _ in pairs]
    for key in METRIC_KEYS:
        expected = np.mean([f.metrics[key] for f, _ in pairs])
        assert summary["mean"][key] == pytest.approx(expected, rel=1e-12)
        assert [float(r[header.index(key)]) for r in rows] == [f.metrics[key] for f, _ in pairs]

    frames = _gif_frames(summary["gif"])
    assert len(frames) == 7  # fewer than gif_max_frames: every frame
    frame0, job0 = pairs[0]
    window = DisplayWindow.from_frames(frame0.image, job0.truth)
    band = band_height(2)  # titles carry the PSNR on a second line
    right = np.asarray(frames[0])[band:, 2 * (4 * W + GAP) :]
    assert np.array_equal(right, window.to_uint8(job0.truth))  # the held-out truth


def test_gif_is_bounded_and_shrunk_when_total_unknown(tmp_path):
    pairs = _frames(40, double=False, attention=True)
    writer = ProductWriter(
        tmp_path / "out",
        progress=False,
        save_frames=False,
        gif_max_frames=5,
        gif_panel_side=16,
        gif_min_width=1,
    )
    for frame, job in pairs:
        writer(frame, job)
        assert writer._gif.held <= 2 * 5 + 1
    summary = writer.close()
    frames = _gif_frames(summary["gif"])
    assert len(frames) == 5
    # 48 columns shrink by 3 to 16, 32 rows to 10 (integer area factor)
    assert frames[0].size == (3 * 16 + 2 * GAP, 10 + BAND)


def test_infinite_psnr_is_left_out_of_the_mean(tmp_path):
    pairs = _frames(3, double=True, attention=True)
    pairs[1] = (pairs[1][0].replace(psnr=math.inf), pairs[1][1])  # identical frames
    _, summary = _run(tmp_path, pairs, traverse_mode="double")
    assert summary["mean"]["psnr"] == pytest.approx(
        np.mean([pairs[0][0].metrics["psnr"], pairs[2][0].metrics["psnr"]])
    )
    # ... and the summary says so, where a reader of the mean looks
    assert summary["mean_left_out"] == {"psnr": 1} and summary["n_frames"] == 3
    from xfusion_stream.cli._summary import summary_lines

    lines = summary_lines("inference", {"ok": True, "cases": [{"case": "c", **summary}]})
    assert any("means leave out" in line and "psnr 1 of 3" in line for line in lines)


def test_bad_frame_is_reported_not_raised(tmp_path):
    pairs = _frames(3, double=False, attention=True)
    bad_frame, bad_job = _frames(1, double=False, attention=True, seed=1)[0]
    bad = bad_frame.replace(window_index=99, fused_image=np.zeros((2, 3, 4)))
    writer = ProductWriter(tmp_path / "out", progress=False)
    writer(*pairs[0])
    writer(bad, bad_job)
    writer(*pairs[1])
    writer(*pairs[2])
    summary = writer.close()
    assert summary["n_frames"] == 3 and summary["n_errors"] == 1
    assert "window 99" in summary["errors"][0] and "2-D" in summary["errors"][0]
    assert len(_csv_rows(summary["metrics_csv"])[1]) == 3
    assert writer.close() is summary  # idempotent


def test_no_frames_leaves_header_only_csv(tmp_path):
    _, summary = _run(tmp_path, [], traverse_mode="double")
    header, rows = _csv_rows(summary["metrics_csv"])
    assert header == [*CSV_BASE_COLUMNS, *METRIC_KEYS, TRUTH_REFERENCE_COLUMN] and rows == []
    assert summary["montage_png"] is None and summary["gif"] is None
    assert summary["metrics_png"] is None and summary["n_frames"] == 0
    assert summary["mean"] == {}


def test_frames_from_a_worker_thread(tmp_path):
    """The hook runs on another thread; close() runs on this one."""
    pairs = _frames(6, double=True, attention=True)
    writer = ProductWriter(tmp_path / "out", traverse_mode="double", progress=False)
    worker = threading.Thread(target=lambda: [writer(f, j) for f, j in pairs])
    worker.start()
    worker.join()
    summary = writer.close()
    assert summary["n_frames"] == 6 and summary["errors"] == []
    assert summary["metrics_png"] and summary["montage_png"]


@pytest.mark.parametrize(
    "kwargs",
    [{"traverse_mode": "triple"}, {"gif_max_frames": 0}, {"montage_windows": 0}, {"overlay": "x"}],
)
def test_bad_settings_name_the_setting(tmp_path, kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ProductWriter(tmp_path, progress=False, **kwargs)


def _video_frames(path, colour: bool = False):
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame[..., ::-1] if colour else frame[..., 0])  # BGR -> RGB
    capture.release()
    return frames


def _blue_minus_red(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 2].astype(int) - rgb[..., 0].astype(int)


def test_residual_overlay_tints_gif_and_mp4_where_unsupported(tmp_path):
    """Frame k's map is -8 (even k) or +8 (odd k) in its top-left 16x16 fused pixels and
    below 3 elsewhere: only that corner is tinted, blue for -8, red for +8."""
    pairs = _frames(4, double=False, attention=True)
    _, summary = _run(tmp_path, pairs, overlay="residual", gif_max_frames=4, gif_min_width=1)
    assert summary["overlay"] == "residual" and summary["errors"] == []
    cols = 4 * W
    gif = [np.asarray(f.convert("RGB")) for f in _gif_rgb_frames(summary["gif"])]
    mp4 = _video_frames(summary["mp4"], colour=True)
    assert len(gif) == 4 and len(mp4) == 4
    for k, (strip, video) in enumerate(zip(gif, mp4)):
        fused = strip[band_height(2) :, cols + GAP : 2 * cols + GAP]  # residual words
        video = video[BAND:]  # under the label band
        sign = 1 if k % 2 == 0 else -1  # blue above red for a negative residual
        for image, margin in ((fused, 60), (video, 30)):  # the MP4 is lossy
            assert sign * _blue_minus_red(image[2:14, 2:14]).min() > margin
            assert np.abs(_blue_minus_red(image[20:, 20:])).max() < 12  # still grey
    # without the overlay the same frames stay grey
    _, plain = _run(tmp_path / "plain", pairs, video=False)
    for frame in _gif_rgb_frames(plain["gif"]):
        assert not _blue_minus_red(np.asarray(frame.convert("RGB"))).any()


def _gif_rgb_frames(path):
    with Image.open(path) as gif:
        return [f.copy() for f in ImageSequence.Iterator(gif)]


def test_csv_carries_tau_and_blend_weights(tmp_path):
    pairs = _frames(3, double=False, attention=True)
    weights = np.array([0.1, 0.5, 0.3, 0.1], np.float32)
    pairs = [(f.replace(tau=0.25 * (i + 1), blend_weights=weights), j)
             for i, (f, j) in enumerate(pairs)]  # fmt: skip
    pairs.append(_frames(1, double=False, attention=False, seed=1)[0])  # a model without them
    _, summary = _run(tmp_path, pairs)
    header, rows = _csv_rows(summary["metrics_csv"])
    cols = ["tau", "w_network", "w_phantom_before", "w_phantom_after", "w_shimadzu"]
    assert all(c in header for c in cols)
    got = [[row[header.index(c)] for c in cols] for row in rows]
    assert [float(g[0]) for g in got[:3]] == [0.25, 0.5, 0.75]
    assert [float(v) for v in got[0][1:]] == pytest.approx(weights.tolist())
    assert all(math.isnan(float(v)) for v in got[3])
    assert summary["blend_weights_mean"] == pytest.approx(
        {"network": 0.1, "phantom_before": 0.5, "phantom_after": 0.3, "shimadzu": 0.1}
    )
    _, none = _run(tmp_path / "plain", pairs[3:])
    assert none["blend_weights_mean"] is None
