"""Products that explain themselves: truth from a provider, readable GIF/MP4 panels,
per-frame blend and fidelity plots, legends that cover nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence
from test_products_writer import H, W, _csv_rows, _frames, _run, _video_frames

from xfusion_stream.fusion import score_against_truth
from xfusion_stream.products import METRIC_KEYS, TRUTH_REFERENCE_COLUMN, TruthFrame
from xfusion_stream.products._label import band_height
from xfusion_stream.products._panels import DisplayWindow, enlarge_to, shrink_to
from xfusion_stream.products._plots import metrics_figure
from xfusion_stream.products._run_plots import blend_figure, fidelity_figure

GAP = 4


def _truth_of(rng_seed: int = 5):
    rng = np.random.default_rng(rng_seed)
    truths = {}

    def provider(frame, job):
        if frame.window_index == 2:
            return None  # no truth for this one
        truth = truths.setdefault(
            frame.window_index, rng.uniform(0.2, 0.8, frame.image.shape).astype(np.float32)
        )
        return TruthFrame(truth, f"scene at {frame.shimadzu_index}", nearer=1)

    return provider, truths


def _gif(path):
    with Image.open(path) as gif:
        return [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]


def test_truth_provider_fills_csv_montage_gif_and_means(tmp_path):
    pairs = _frames(5, double=False, attention=True)
    provider, truths = _truth_of()
    _, summary = _run(tmp_path, pairs, truth=provider, gif_min_width=1, montage_windows=5)
    header, rows = _csv_rows(summary["metrics_csv"])
    assert header[-len(METRIC_KEYS) - 1 :] == [*METRIC_KEYS, TRUTH_REFERENCE_COLUMN]
    for k, ((frame, job), row) in enumerate(zip(pairs, rows)):
        got = dict(zip(header, row))
        if k == 2:
            assert all(got[key] == "" for key in METRIC_KEYS) and got[TRUTH_REFERENCE_COLUMN] == ""
            continue
        want = score_against_truth(frame.image, truths[k], job.lr_frames[1], job.hr_frames, 1)
        assert [float(got[key]) for key in METRIC_KEYS] == pytest.approx(
            [want[key] for key in METRIC_KEYS]
        )
        assert got[TRUTH_REFERENCE_COLUMN] == f"scene at {frame.shimadzu_index}"
        assert got["truth_index"] == "-1"  # the schema's column keeps its meaning
    scored = [float(dict(zip(header, r))["psnr"]) for i, r in enumerate(rows) if i != 2]
    assert summary["mean"]["psnr"] == pytest.approx(np.mean(scored))
    assert summary["metrics_png"] and summary["errors"] == []
    # the GIF's third panel is the truth, titled with PSNR lines (two-line band)
    frame0, job0 = pairs[0]
    window = DisplayWindow.from_frames(frame0.image, truths[0])
    right = _gif(summary["gif"])[0][band_height(2) :, 2 * (4 * W + GAP) :]
    assert np.array_equal(right, window.to_uint8(truths[0]))
    # the montage gains a truth column: wider than the same run without a truth
    _, plain = _run(tmp_path / "plain", pairs, montage_windows=5)
    with Image.open(summary["montage_png"]) as a, Image.open(plain["montage_png"]) as b:
        assert a.size[0] > b.size[0] * 1.15


def test_provider_scores_are_used_and_worker_scores_kept(tmp_path):
    pairs = _frames(2, double=False, attention=True)
    given = {key: 11.0 for key in METRIC_KEYS}

    def provider(frame, job):
        return TruthFrame(np.zeros(frame.image.shape, np.float32), "zeros", given)

    _, summary = _run(tmp_path, pairs, truth=provider)
    header, rows = _csv_rows(summary["metrics_csv"])
    assert all(float(r[header.index("psnr")]) == 11.0 for r in rows)
    # double mode: the held-out truth and the worker's scores win, the provider is still asked
    double = _frames(2, double=True, attention=True)
    calls = []
    _, summary = _run(
        tmp_path / "d", double, traverse_mode="double", truth=lambda f, j: calls.append(1)
    )
    header, rows = _csv_rows(summary["metrics_csv"])
    assert [float(r[header.index("psnr")]) for r in rows] == [f["psnr"] for f, _ in double]
    assert len(calls) == 2 and rows[0][-1] == f"phantom {double[0][0].truth_index}"


def test_gif_and_mp4_panels_are_readable_and_labelled(tmp_path):
    pairs = _frames(3, double=False, attention=True)
    _, summary = _run(tmp_path, pairs)  # defaults: tiny frames enlarged to >= 400 px
    strip = _gif(summary["gif"])[0]
    k = -(-400 // (4 * W))
    assert strip.shape == (band_height(1) + k * 4 * H, 3 * k * 4 * W + 2 * GAP)
    band = strip[: band_height(1), : k * 4 * W]
    assert (band > 200).sum() > 50  # a title is written in the band
    video = _video_frames(summary["mp4"])[0]
    assert video.shape[0] == band_height(1) + 4 * H  # full resolution under a label
    # big frames: full resolution up to the panel side, never shrunk under 400 columns
    assert shrink_to(np.zeros((300, 500), np.uint8), 512, 400).shape == (300, 500)
    assert shrink_to(np.zeros((1000, 1600), np.uint8), 512, 400).shape == (250, 400)
    assert shrink_to(np.zeros((700, 700), np.uint8), 512, 400).shape == (700, 700)
    assert enlarge_to(np.zeros((300, 300), np.uint8), 400).shape == (300, 300)


def test_blend_and_fidelity_plots_replace_the_attention_bars(tmp_path):
    pairs = _frames(6, double=False, attention=True)
    rng = np.random.default_rng(3)
    pairs = [
        (f.replace(blend_weights=rng.dirichlet(np.ones(4)).astype(np.float32)), j) for f, j in pairs
    ]
    _, summary = _run(tmp_path, pairs)
    for key in ("blend_weights_png", "fidelity_png"):
        with Image.open(summary[key]) as im:
            assert im.size[0] >= 800
    assert summary["attention_png"] == summary["blend_weights_png"]  # the old key still points
    assert not (tmp_path / "out" / "attention.png").exists()


def _covers_a_point(fig) -> bool:
    fig.canvas.draw()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent()
        for line in ax.get_lines():
            xy = ax.transData.transform(np.column_stack(line.get_data()))
            if any(box.contains(px, py) for px, py in xy):
                return True
    return False


def test_legends_cover_no_data():
    x = np.arange(20)
    rng = np.random.default_rng(0)
    metrics = {k: rng.uniform(20, 40, 20) for k in ("psnr", "psnr_bicubic", "psnr_nearest")}
    metrics.update({k: rng.uniform(0.5, 1.0, 20) for k in ("ssim", "ssim_bicubic")})
    rms, p99 = rng.uniform(0.8, 2, 20), rng.uniform(2, 9, 20)
    weights = rng.dirichlet(np.ones(4), 20)
    for fig in (metrics_figure(x, metrics), fidelity_figure(x, rms, p99), blend_figure(x, weights)):
        assert all(ax.get_legend() is not None for ax in fig.axes)
        assert not _covers_a_point(fig)
        for ax in fig.axes:  # outside the axes altogether, inside the picture
            box = ax.get_legend().get_window_extent()
            assert not box.overlaps(ax.get_window_extent())
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y0 >= fig.bbox.y0
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
