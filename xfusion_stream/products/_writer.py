"""ProductWriter: the files people look at after (or while) a run is fused.

It is the fusion worker's ``on_frame`` hook: called from the worker thread, one frame
at a time, in window order. Per frame it writes the TIFF/PNG pair and a CSV row at
once, so a crashed or interrupted run still leaves everything fused so far on disk.
The GIF and montage need frames spread over the whole run, whose length is unknown
while it runs: they keep only small 8-bit panels of an evenly spaced, bounded subset
(``EvenSample``). ``close`` (main thread, after the worker is done) writes the
summaries. Every product shows how far each fused frame is from the Shimadzu frame it
fuses (the residual in noise units the fused events carry): a montage column, a CSV
column, the run's mean in the summary and, on request, a tint on the GIF and MP4. A
failure while writing products is logged and reported by ``close``; it never
propagates into the worker, so it cannot fail the fused run itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..core import ConfigError
from ..fusion import BLEND_SOURCES, FUSED_FRAME, FrameSchema, mean_residual
from ._csv import MetricsCsv
from ._label import labelled
from ._panels import DisplayWindow, Panels, labelled_gif_frame, lr_upsampled, shrink_to
from ._plots import write_attention, write_metrics_plot, write_montage
from ._residual import OVERLAYS, tint_unsupported
from ._run_plots import write_blend_weights, write_fidelity
from ._sample import EvenSample
from ._truth import TruthProvider, WindowTruth, window_truth
from ._video import Mp4Writer
from ._window_panels import video_label, window_panels

if TYPE_CHECKING:
    from ..fusion import FusedFrame, WindowJob

__all__ = ["ProductWriter", "METRIC_KEYS", "CSV_BASE_COLUMNS"]

logger = logging.getLogger(__name__)

#: The truth scores of the default schema (metric columns of a double-mode run).
METRIC_KEYS = FUSED_FRAME.metric_names
#: The CSV columns every row of the default schema has, in order.
CSV_BASE_COLUMNS = FUSED_FRAME.csv_columns
_MAX_ERRORS_KEPT = 20
_RESIDUAL = ("rms", "p99", "map")  # the fused frame's residual fields, shimadzu_residual_*


def _finite_mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


class ProductWriter:
    """Frames, metrics CSV, montage, GIF, MP4 and plots of one fused run, under ``out_dir``.

    The MP4 (``fused.mp4``, MPEG-4 part 2 through OpenCV) holds every fused frame at full
    resolution in arrival order, on the display window fixed by the first frame, at
    ``video_fps`` frames per second; ``video=False`` leaves it out. ``overlay="residual"``
    tints the GIF's and the MP4's fused frames where the Shimadzu does not support them
    (``products._residual``).

    ``traverse_mode`` is "continuous" or "double"; double mode adds the
    metric columns, ``metrics.png`` and the mean metrics. ``truth`` (a
    ``products.TruthProvider``) gives the truth of windows that have none of their own
    (a simulation's scene): the same columns, plots and means, and a truth column in the
    montage. ``progress_total`` (when the number of windows is known) sizes the
    progress bar and lets the GIF/montage pick their frames without over-collecting.
    ``schema`` (default ``FUSED_FRAME``) gives the CSV columns: every field with
    columns, then its truth scores and ``truth_reference`` (what they were scored
    against). GIF panels are at full resolution up to ``gif_panel_side``, shrunk no
    narrower than ``gif_min_width`` and enlarged when under half of it.
    """

    def __init__(
        self,
        out_dir: Path | str,
        *,
        traverse_mode: str = "continuous",
        save_frames: bool = True,
        gif_max_frames: int = 24,
        montage_windows: int = 4,
        progress_total: int | None = None,
        progress: bool = True,
        gif_panel_side: int = 512,
        montage_panel_side: int = 512,
        gif_frame_ms: int = 100,
        video: bool = True,
        video_fps: int = 10,
        schema: FrameSchema = FUSED_FRAME,
        overlay: str | None = None,
        truth: TruthProvider | None = None,
        gif_min_width: int = 400,
    ) -> None:
        from tqdm import tqdm

        if traverse_mode not in ("continuous", "double"):
            raise ConfigError(
                f"ProductWriter: traverse_mode must be 'continuous' or 'double', "
                f"not {traverse_mode!r}"
            )
        if overlay not in OVERLAYS:
            raise ConfigError(f"ProductWriter: overlay must be one of {OVERLAYS}, not {overlay!r}")
        for name, value in (
            ("gif_max_frames", gif_max_frames),
            ("montage_windows", montage_windows),
            ("gif_panel_side", gif_panel_side),
            ("gif_min_width", gif_min_width),
            ("montage_panel_side", montage_panel_side),
            ("video_fps", video_fps),
        ):
            if value < 1:
                raise ConfigError(f"ProductWriter: {name} must be >= 1, got {value}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.traverse_mode = traverse_mode
        self.schema = schema
        self.overlay = overlay
        self._has_residual = all(f"shimadzu_residual_{x}" in schema for x in _RESIDUAL)
        self.frames_dir = self.out_dir / "frames" if save_frames else None
        if self.frames_dir is not None:
            self.frames_dir.mkdir(exist_ok=True)
        self.metrics_csv = self.out_dir / "metrics.csv"
        self.gif_panel_side = gif_panel_side
        self.montage_panel_side = montage_panel_side
        self.gif_frame_ms = gif_frame_ms
        self._gif: EvenSample[Panels] = EvenSample(gif_max_frames, progress_total)
        self._montage: EvenSample[Panels] = EvenSample(montage_windows, progress_total)
        self._window: DisplayWindow | None = None
        self._video = Mp4Writer(self.out_dir / "fused.mp4", video_fps) if video else None
        self._truth = truth
        self._csv = MetricsCsv(
            self.metrics_csv, schema, traverse_mode == "double" or truth is not None
        )
        self.gif_min_width = gif_min_width
        self._x: list[int] = []
        self._metrics: dict[str, list[float]] = {}
        self._attention: list[np.ndarray] = []
        self._blends: list[np.ndarray] = []
        self._blend_x: list[int] = []
        self._residuals: dict[str, list[float]] = {"rms": [], "p99": []}
        self.n_frames = 0
        self.n_errors = 0
        self.errors: list[str] = []
        self._summary: dict[str, Any] | None = None
        self._bar = tqdm(
            total=progress_total, desc="fused frames", unit="frame", disable=not progress
        )

    # ---- worker thread ------------------------------------------------------------------
    def __call__(self, frame: FusedFrame, job: WindowJob) -> None:
        try:
            if self._summary is not None:
                raise RuntimeError("frame arrived after close()")
            self._write(frame, job)
        except Exception as exc:  # noqa: BLE001 - products must never fail the fused run
            logger.exception("products: window %s not written", frame.window_index)
            self._error(f"window {frame.window_index}: {exc!r}")
        finally:
            self._bar.update(1)

    def _error(self, message: str) -> None:
        self.n_errors += 1
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append(message)

    def _write(self, frame: FusedFrame, job: WindowJob) -> None:
        image = np.asarray(frame.image, dtype=np.float32)
        if image.ndim != 2:
            raise ValueError(f"fused image must be 2-D (rows, cols), got shape {image.shape}")
        truth = window_truth(frame, job, self._truth)
        frame = truth.frame
        if self.frames_dir is not None:
            self._write_frame(image, frame.shimadzu_index)
        self._write_row(frame, truth.reference)
        self.n_frames += 1
        if "psnr" in frame.metrics:
            self._bar.set_postfix(psnr=f"{frame.metrics['psnr']:.2f}", refresh=False)

        views: dict[str, tuple[np.ndarray, np.ndarray]] = {}

        def full_views() -> tuple[np.ndarray, np.ndarray]:
            if not views:
                hr = job.hr_frames[truth.nearer if truth.image is not None else 0]
                views["v"] = (lr_upsampled(job.lr_frames[1], image.shape), hr)
            return views["v"]

        if self._window is None:
            ref = truth.image if truth.image is not None else full_views()[1]
            self._window = DisplayWindow.from_frames(image, ref)
        tint = self.overlay is not None
        gif = (self.gif_panel_side, self.gif_min_width, tint)
        self._gif.offer(lambda: self._panels(truth, full_views, *gif))
        self._montage.offer(
            lambda: self._panels(truth, full_views, self.montage_panel_side, 0, False)
        )
        if self._video is not None:
            try:
                label = video_label(frame, self._has_residual)
                self._video.write(
                    labelled(self._overlaid(frame, self._window.to_uint8(image)), label, 1)
                )
            except Exception as exc:  # noqa: BLE001 - the video stops, the rest goes on
                logger.exception("products: fused.mp4 stopped at window %s", frame.window_index)
                self._error(f"fused.mp4 at window {frame.window_index}: {exc!r}")
                self._video = None

    def _overlaid(self, frame: FusedFrame, image8: np.ndarray) -> np.ndarray:
        """The 8-bit frame as the GIF and MP4 show it: tinted by the overlay, if any."""
        if self.overlay == "residual" and self._has_residual:
            return tint_unsupported(image8, frame["shimadzu_residual_map"])
        return image8

    def _write_frame(self, image: np.ndarray, shimadzu_index: int) -> None:
        import tifffile

        assert self.frames_dir is not None
        stem = self.frames_dir / f"fused_{shimadzu_index:04d}"
        tifffile.imwrite(stem.with_suffix(".tif"), image)
        png = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
        if not cv2.imwrite(str(stem.with_suffix(".png")), png):
            raise OSError(f"{stem.with_suffix('.png')}: PNG could not be written")

    def _write_row(self, frame: FusedFrame, reference: str) -> None:
        self._csv.write(frame, reference)
        attention = np.asarray(frame.attention, dtype=np.float32).reshape(-1)
        blend = np.asarray(frame.blend_weights, dtype=np.float32).reshape(-1)
        self._x.append(frame.shimadzu_index)
        if self._has_residual:
            self._residuals["rms"].append(float(frame["shimadzu_residual_rms"]))
            self._residuals["p99"].append(float(frame["shimadzu_residual_p99"]))
        for key in self._csv.metric_columns:
            self._metrics.setdefault(key, []).append(float(frame[key]))
        if np.isfinite(attention).any():
            self._attention.append(attention)
        if np.isfinite(blend).all():
            self._blends.append(blend)
            self._blend_x.append(frame.shimadzu_index)

    def _panels(
        self,
        truth: WindowTruth,
        views: Callable[[], tuple[np.ndarray, np.ndarray]],
        side: int,
        min_width: int,
        tint: bool,
    ) -> Panels:
        assert self._window is not None
        window, frame = self._window, truth.frame

        def to8(image: np.ndarray) -> np.ndarray:
            return shrink_to(window.to_uint8(image), side, min_width)

        lr_up, hr = views()
        fused8 = self._overlaid(frame, to8(frame.image)) if tint else to8(frame.image)
        truth8 = None if truth.image is None else to8(truth.image)
        return window_panels(
            frame,
            (to8(lr_up), fused8, to8(hr), truth8),
            truth,
            has_residual=self._has_residual,
            tinted=tint,
        )

    # ---- main thread, after the worker is done -----------------------------------------
    def close(self) -> dict[str, Any]:
        """Write the summary products; returns where they are and the mean metrics."""
        if self._summary is not None:
            return self._summary
        self._bar.close()
        self._csv.close()
        summary: dict[str, Any] = {
            "out_dir": str(self.out_dir),
            "traverse_mode": self.traverse_mode,
            "frames_dir": str(self.frames_dir) if self.frames_dir is not None else None,
            "metrics_csv": str(self.metrics_csv),
            "montage_png": self._attempt("montage.png", self._write_montage),
            "gif": self._attempt("fused.gif", self._write_gif),
            "mp4": self._attempt("fused.mp4", self._close_video),
            "blend_weights_png": self._attempt("blend_weights.png", self._write_blends),
            "fidelity_png": self._attempt("fidelity.png", self._write_fidelity),
            "n_frames": self.n_frames,
            "mean": self._means(),
            "mean_left_out": self._left_out(),
            "shimadzu_residual": mean_residual(self._residuals["rms"]),
            "shimadzu_residual_p99": mean_residual(self._residuals["p99"]),
            "overlay": self.overlay,
            "attention_mean": (
                [float(a) for a in np.nanmean(np.stack(self._attention), axis=0)]
                if self._attention
                else None
            ),
            "blend_weights_mean": (
                dict(zip(BLEND_SOURCES, (float(w) for w in np.mean(self._blends, axis=0))))
                if self._blends
                else None
            ),
        }
        # the old key: the per-frame blend weights replace the (saturated) attention bars
        summary["attention_png"] = summary["blend_weights_png"] or self._attempt(
            "attention.png", self._write_attention
        )
        if self.traverse_mode == "double" or self._truth is not None:
            summary["metrics_png"] = self._attempt("metrics.png", self._write_metrics_plot)
        summary["n_errors"] = self.n_errors
        summary["errors"] = list(self.errors)
        self._summary = summary
        return summary

    def _means(self) -> dict[str, float]:
        """Per metric, the mean over frames where it is finite (an identical frame's PSNR
        is inf); a metric with no finite value is left out, so every value is a float."""
        means = {k: _finite_mean(v) for k, v in self._metrics.items()}
        return {k: v for k, v in means.items() if v is not None}

    def _left_out(self) -> dict[str, int]:
        """Per metric, how many frames its mean leaves out (inf or NaN); only those."""
        counts = {k: sum(not math.isfinite(x) for x in v) for k, v in self._metrics.items()}
        return {k: n for k, n in counts.items() if n}

    def _attempt(self, name: str, write: Callable[[Path], bool]) -> str | None:
        path = self.out_dir / name
        try:
            return str(path) if write(path) else None
        except Exception as exc:  # noqa: BLE001 - one bad product must not lose the others
            logger.exception("products: %s not written", name)
            self._error(f"{name}: {exc!r}")
            return None

    def _write_montage(self, path: Path) -> bool:
        rows = [panels for _, panels in self._montage.picks()]
        if rows:
            write_montage(rows, path)
        return bool(rows)

    def _write_gif(self, path: Path) -> bool:
        picks = self._gif.picks()
        images = [labelled_gif_frame(panels, self.gif_min_width) for _, panels in picks]
        if images:
            images[0].save(
                path, save_all=True, append_images=images[1:], duration=self.gif_frame_ms, loop=0
            )
        return bool(images)

    def _close_video(self, path: Path) -> bool:
        return self._video is not None and self._video.close()

    def _write_attention(self, path: Path) -> bool:
        if self._attention:
            write_attention(np.stack(self._attention), path)
        return bool(self._attention)

    def _write_blends(self, path: Path) -> bool:
        if self._blends:
            write_blend_weights(np.asarray(self._blend_x), np.stack(self._blends), path)
        return bool(self._blends)

    def _write_fidelity(self, path: Path) -> bool:
        rms, p99 = (np.asarray(self._residuals[k], dtype=np.float64) for k in ("rms", "p99"))
        if not np.isfinite(rms).any():
            return False
        write_fidelity(np.asarray(self._x), rms, p99, path)
        return True

    def _write_metrics_plot(self, path: Path) -> bool:
        if not self._x or not any(np.isfinite(v).any() for v in self._metrics.values()):
            return False
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in self._metrics.items()}
        truth = "held-out Phantom frame" if self.traverse_mode == "double" else "truth per frame"
        title = f"fused vs baselines against the {truth}"
        write_metrics_plot(np.asarray(self._x), arrays, path, title=title)
        return True
