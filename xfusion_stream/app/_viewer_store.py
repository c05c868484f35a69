"""What the live viewer keeps of the fused run it shows: PNG panels and per-frame series.

Why PNG bytes at arrival: the page asks for a frame many times (newest, scrubbing
back), so each panel is encoded once, on the feeding thread, and the web server only
hands bytes out. Only the newest ``max_frames`` frames keep their panels; the scalar
series (metrics, fidelity, indices) of every frame fused so far are kept up to
``max_rows``. One lock guards everything; readers get copies.

Display scaling is fixed per run from its first frame (0.5 and 99.5 percentiles of the
fused and Phantom frames), like the products' panels, so brightness does not flicker
and panels stay comparable. Pixels that are not finite are painted magenta and
counted: a broken frame is shown as broken, never a crash of the encoder.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..fusion import FUSED_FRAME
from ._viewer_fields import PHANTOM_NEAREST, PHANTOM_NEAREST_INDEX, SHIMADZU_REGISTERED

__all__ = ["PANELS", "DisplayScale", "FrameStore", "encode_panel"]

#: panel name -> the event data key its image comes from
PANELS = {"fused": "fused_image", "shimadzu": SHIMADZU_REGISTERED, "phantom": PHANTOM_NEAREST}
MARKER = (255, 0, 255)  # non-finite pixels (magenta: the same in RGB and BGR)
MAX_SIDE = 8192  # larger images are refused, not encoded
MAX_VECTOR = 16  # 1-D arrays up to this length become one series per element
#: per-frame values that say which frame it is rather than how good it is (not plotted)
INDEX_KEYS = frozenset(
    {"window_index", "shimadzu_index", "shimadzu_time_ns", "truth_index", PHANTOM_NEAREST_INDEX}
)
INDEX_PREFIXES = ("lr_indices[", "hr_indices[")


@dataclass(frozen=True)
class DisplayScale:
    """Intensity ``lo`` shows as black, ``hi`` as white."""

    lo: float = 0.0
    hi: float = 1.0

    @classmethod
    def of(cls, *images: np.ndarray) -> DisplayScale:
        finite = [v[np.isfinite(v)] for v in (np.asarray(i, np.float64).ravel() for i in images)]
        values = np.concatenate(finite) if finite else np.empty(0)
        if values.size == 0:
            return cls()
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
        return cls(lo, hi) if hi - lo > 1e-9 else cls()


def encode_panel(image: Any, scale: DisplayScale) -> tuple[bytes, int]:
    """PNG bytes of a 2-D image and how many of its pixels are not finite (magenta).

    Raises ValueError for anything that is not a 2-D real image of sane size.
    """
    import cv2

    array = np.asarray(image)
    if array.ndim != 2 or array.dtype.kind not in "biuf" or not all(array.shape):
        raise ValueError(f"not a 2-D numeric image: shape {array.shape} dtype {array.dtype}")
    if max(array.shape) > MAX_SIDE:
        raise ValueError(f"image {array.shape} is larger than {MAX_SIDE} px a side")
    values = array.astype(np.float64)
    bad = ~np.isfinite(values)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = (np.where(bad, scale.lo, values) - scale.lo) * (255.0 / (scale.hi - scale.lo))
    gray = np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    n_bad = int(bad.sum())
    if n_bad:
        rgb = np.repeat(gray[..., None], 3, axis=2)
        rgb[bad] = MARKER
        gray = rgb
    ok, png = cv2.imencode(".png", gray)
    if not ok:  # pragma: no cover - cv2 encodes any uint8 image
        raise ValueError("PNG encoding failed")
    return png.tobytes(), n_bad


@dataclass
class _Frame:
    number: int  # 1-based, in arrival order within the run
    info: dict[str, Any]
    pngs: dict[str, bytes] = field(default_factory=dict)


def _labels(name: str, size: int) -> list[str]:
    f = FUSED_FRAME[name] if name in FUSED_FRAME else None
    if f is not None and len(f.labels) == size:
        return list(f.labels)
    return [str(i) for i in range(size)]


def scalars(data: dict[str, Any]) -> dict[str, float | None]:
    """The per-frame numbers of one event: scalars, and short vectors split per element
    (``attention[lr_prev]``); images are left out, non-finite values become None."""
    out: dict[str, float | None] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        array = np.asarray(value) if not isinstance(value, str) else None
        if array is None or array.dtype.kind not in "biuf":
            continue
        if array.ndim == 0:
            out[key] = _number(array.item())
        elif array.ndim == 1 and array.size <= MAX_VECTOR:
            for label, v in zip(_labels(key, array.size), array.tolist(), strict=True):
                out[f"{key}[{label}]"] = _number(v)
    return out


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


class FrameStore:
    """The latest fused run: its panels (newest ``max_frames``) and series (``max_rows``)."""

    def __init__(self, max_frames: int = 256, max_rows: int = 100_000) -> None:
        if max_frames < 1 or max_rows < 1:
            raise ValueError(f"max_frames and max_rows must be >= 1: {max_frames}, {max_rows}")
        self.max_frames = int(max_frames)
        self.max_rows = int(max_rows)
        self._lock = threading.Lock()
        self.runs_seen = 0
        self._reset({})

    def _reset(self, run: dict[str, Any]) -> None:
        self._run = run
        self._frames: OrderedDict[int, _Frame] = OrderedDict()
        self._series: dict[str, list[float | None]] = {}
        self._first_row = 0  # frame number - 1 of the oldest row kept
        self._count = 0
        self._gaps = 0
        self._scale: DisplayScale | None = None

    # ---- writers (the feeding thread) ----------------------------------------------------
    def begin_run(self, run: dict[str, Any]) -> None:
        """Show a new run from now on (``run``: uid, raw_uid, mode, model, status...)."""
        with self._lock:
            self.runs_seen += 1
            self._reset({"serial": self.runs_seen, "status": "running", **run})

    def end_run(self, exit_status: str, reason: str = "") -> None:
        with self._lock:
            self._run["status"] = str(exit_status)
            self._run["reason"] = str(reason)[:500]

    def add_gap(self) -> None:
        with self._lock:
            self._gaps += 1

    def add_frame(self, data: dict[str, Any], problems: dict[str, str] | None = None) -> int:
        """Keep one fused event's panels and numbers; returns its frame number.
        ``problems``: why a panel is missing (panel -> reason), shown in its caption."""
        numbers = scalars(data)
        images: dict[str, Any] = {
            panel: data[key] for panel, key in PANELS.items() if data.get(key) is not None
        }
        with self._lock:
            scale = self._scale
        if scale is None:  # the run's first frame fixes the display scale
            shown = [images[p] for p in ("fused", "phantom") if p in images]
            scale = DisplayScale.of(*[np.asarray(i) for i in shown if np.ndim(i) == 2])
        pngs: dict[str, bytes] = {}
        info: dict[str, Any] = {"nonfinite": {}, "problems": dict(problems or {})}
        for panel, image in images.items():
            try:
                pngs[panel], n_bad = encode_panel(image, scale)
            except (ValueError, TypeError) as exc:
                info["problems"][panel] = str(exc)[:200]
                continue
            if n_bad:
                info["nonfinite"][panel] = n_bad
        with self._lock:
            self._scale = self._scale or scale
            self._count += 1
            number = self._count
            info.update(number=number, panels=sorted(pngs), **_which(numbers))
            self._frames[number] = _Frame(number, info, pngs)
            while len(self._frames) > self.max_frames:
                self._frames.popitem(last=False)
            self._append_row(number, numbers)
        return number

    def _append_row(self, number: int, numbers: dict[str, float | None]) -> None:
        rows = number - 1 - self._first_row  # rows every series has so far
        for key in numbers.keys() - self._series.keys():
            self._series[key] = [None] * rows
        for key, column in self._series.items():
            column.append(numbers.get(key))
        if rows + 1 > self.max_rows:  # drop the oldest half at once, not one per frame
            cut = (rows + 1) // 2
            for key in self._series:
                del self._series[key][:cut]
            self._first_row += cut

    # ---- readers (the web server) --------------------------------------------------------
    def state(self, since: int = 0) -> dict[str, Any]:
        """What the page polls: the run, the count, the kept range, series rows from
        frame ``since`` on (0-based; rows before ``first_row`` are gone)."""
        with self._lock:
            start = max(int(since), self._first_row)
            offset = start - self._first_row
            series = {k: v[offset:] for k, v in self._series.items()}
            kept = [next(iter(self._frames)), next(reversed(self._frames))] if self._frames else []
            return {
                "run": dict(self._run),
                "count": self._count,
                "gaps": self._gaps,
                "kept": kept,
                "max_frames": self.max_frames,
                "first_row": self._first_row,
                "since": start,
                "series": series,
                "groups": plot_groups(self._series),
            }

    def frame_info(self, number: int) -> dict[str, Any] | None:
        with self._lock:
            frame = self._frames.get(int(number))
            return None if frame is None else dict(frame.info)

    def png(self, number: int, panel: str) -> bytes | None:
        with self._lock:
            frame = self._frames.get(int(number))
            return None if frame is None else frame.pngs.get(panel)

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


def _which(numbers: dict[str, float | None]) -> dict[str, int | None]:
    def index(key: str) -> int | None:
        value = numbers.get(key)
        return None if value is None else int(value)

    return {
        "shimadzu_index": index("shimadzu_index"),
        "window_index": index("window_index"),
        "phantom_index": index(PHANTOM_NEAREST_INDEX),
        "truth_index": index("truth_index"),
    }


# plot title -> how a series name starts; the first match wins, the rest go to "other"
_GROUPS = (
    ("fidelity: residual vs Shimadzu (noise units)", ("shimadzu_residual_",)),
    ("PSNR vs truth (dB)", ("psnr",)),
    ("SSIM vs truth", ("ssim",)),
    ("AAD vs truth (8-bit levels)", ("aad",)),
    ("TSA attention per input", ("attention[",)),
    ("blend weights and tau", ("blend_weights[", "tau")),
)


def plot_groups(series: dict[str, list[float | None]]) -> list[dict[str, Any]]:
    """The plots to draw: title and series names, groups without any name left out."""
    names = [n for n in sorted(series) if n not in INDEX_KEYS and not n.startswith(INDEX_PREFIXES)]
    groups: dict[str, list[str]] = {}
    for name in names:
        title = next((t for t, starts in _GROUPS if name.startswith(starts)), "other")
        groups.setdefault(title, []).append(name)
    order = [t for t, _ in _GROUPS] + ["other"]
    return [{"title": t, "keys": groups[t]} for t in order if t in groups]
