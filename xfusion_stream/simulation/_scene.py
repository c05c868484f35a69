"""Scene engine: a ground-truth movie on the Phantom grid, seen by both cameras.

Time base: ``t`` in ns on the Shimadzu clock, 0 at Shimadzu frame 1. The Shimadzu
trigger starts both recordings, so the first Phantom frame flagged ``E`` coincides with
Shimadzu frame 1 and every ``phantom_every``-th Shimadzu frame later (up to a few ns of
jitter). The trigger gate stays open until the first Phantom exposure at or after the
last Shimadzu frame, so every Shimadzu frame is bracketed by two E frames (continuous
fusion covers all of them). ``n_pre_trigger`` Phantom frames come before (negative frame
numbers) and ``n_post_trigger`` non-E frames after.

Rendering is deterministic per ``(seed, camera, index)``: each frame draws its noise
from its own generator, so frames can be rendered in any order or in parallel.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import Field, field_validator, model_validator

from ..core import ConfigModel, InterCameraTransform
from ..recorded import PhantomTiming, ShimadzuTiming
from ._camera_models import render_phantom, render_shimadzu, to_counts
from ._fast_events import EventField, FastEvents, draw_fast_events, fast_event_mask
from ._features import random_features
from ._g400 import G400_PITCH_UM, g400_grid_image
from ._motion import NonrigidMotion
from ._sample_images import Textures, flat_field, sample_depth

__all__ = ["SceneConfig", "Scene", "default_transform", "grid_scene_config"]

# independent random streams derived from the seed
_STREAM_CONTENT, _STREAM_TIMING, _STREAM_SHIMADZU, _STREAM_PHANTOM = 1, 2, 3, 4
_STREAM_FAST_EVENTS = 5


def default_transform() -> InterCameraTransform:
    """A mild non-identity geometry so calibration and registration are exercised."""
    return InterCameraTransform(
        rotation_deg=1.2,
        translation_px=(3.5, -2.0),
        scale_col=1.012,
        scale_row=0.991,
        mirror=True,
        ratio=4,
    )


class SceneConfig(ConfigModel):
    """Everything that defines one simulated dual-camera recording.

    Speeds are in Phantom pixels per Phantom frame period; photon counts are b0 at
    intensity 1 (None: noise-free). ``grid_pitch_px`` None means G400 pitch / pixel size.
    Jitter stays below what the 10 ns pairing tolerance forgives: the Phantom's is then
    quantised to its 10 ns time stamp, so E frames stay within 10 ns of their Shimadzu
    frame. ``fast_events`` (None: none) adds events faster than the Phantom samples,
    drawn from their own random stream: the rest of the scene stays as it was.
    """

    seed: int = 0
    shimadzu_shape: tuple[int, int] = (250, 400)
    ratio: int = Field(default=4, ge=1, le=16)
    n_shimadzu: int = Field(default=128, ge=2, le=100_000)
    shimadzu_frame_ns: int = Field(default=200, ge=1)
    phantom_every: int = Field(default=20, ge=1)
    n_pre_trigger: int = Field(default=2, ge=0)
    n_post_trigger: int = Field(default=2, ge=0)
    transform: InterCameraTransform = Field(default_factory=default_transform)
    shimadzu_photons: float | None = Field(default=1000.0, gt=0)
    phantom_photons: float | None = Field(default=2000.0, gt=0)
    #: Shimadzu gain (fraction of the 16-bit range at intensity 1) and dark offset in
    #: counts; the Phantom reads intensity 1 as 0.9 of the range with no offset, so the
    #: defaults make the cameras agree and other values need intensity calibration.
    shimadzu_full_scale: float = Field(default=0.9, gt=0, le=1)
    shimadzu_dark_counts: float = Field(default=0.0, ge=0, lt=32768)
    content: Literal["sample", "grid"] = "sample"
    #: photographs the sample is built from: those training saw, or those it never did
    textures: Textures = "training"
    motion_px_per_phantom_frame: float = 4.0
    feature_px_per_phantom_frame: float = 8.0
    phantom_jitter_ns: float = Field(default=3.0, ge=0, lt=15)
    shimadzu_jitter_ns: float = Field(default=0.0, ge=0, lt=5)
    phantom_pixel_um: float = Field(default=3.2, gt=0)
    grid_pitch_px: float | None = Field(default=None, gt=0)
    grid_bar_fraction: float = 0.25
    grid_angle_deg: float = 2.5
    grid_offset_px: tuple[float, float] = (0.0, 0.0)
    fast_events: FastEvents | None = None

    @field_validator("shimadzu_shape")
    @classmethod
    def _shape(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 4 or max(value) > 4096:
            raise ValueError(f"must be (rows, cols) of 4 to 4096 pixels, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _one_ratio(self) -> SceneConfig:
        if self.transform.ratio != self.ratio:
            raise ValueError(f"transform.ratio {self.transform.ratio} != ratio {self.ratio}")
        return self

    @property
    def phantom_shape(self) -> tuple[int, int]:
        return (self.shimadzu_shape[0] * self.ratio, self.shimadzu_shape[1] * self.ratio)

    @property
    def pitch_px(self) -> float:
        """G400 pitch in Phantom pixels."""
        if self.grid_pitch_px is not None:
            return float(self.grid_pitch_px)
        return G400_PITCH_UM / self.phantom_pixel_um

    def to_dict(self) -> dict:
        """JSON-ready (lists for tuples, the transform as a dict); no events, no key."""
        return self.model_dump(
            mode="json", exclude={"fast_events"} if not self.fast_events else None
        )

    @classmethod
    def from_dict(cls, d: dict) -> SceneConfig:
        return cls(**d)


class Scene:
    """Ground truth at any time plus the two cameras' frames and timing."""

    def __init__(self, config: SceneConfig | None = None) -> None:
        self.config = config or SceneConfig()
        cfg = self.config
        self._pad = _canvas_pad(cfg)
        self._last_canvas: tuple[float, np.ndarray] | None = None
        rows, cols = self.phantom_shape
        self.canvas_shape = (rows + 2 * self._pad, cols + 2 * self._pad)
        content_rng = np.random.default_rng([cfg.seed, _STREAM_CONTENT])
        self._flat = flat_field(self.canvas_shape, content_rng)
        if cfg.content == "grid":
            grid = g400_grid_image(
                self.canvas_shape,
                cfg.pitch_px,
                cfg.grid_bar_fraction,
                cfg.grid_angle_deg,
                cfg.grid_offset_px,
            )
            self._static = (self._flat * grid).astype(np.float32)
        else:
            self._static = None
            self._depth = sample_depth(self.canvas_shape, content_rng, cfg.textures)
            self.motion = NonrigidMotion(
                self.canvas_shape, content_rng, cfg.motion_px_per_phantom_frame
            )
            # features live in canvas coordinates, laid out over the Phantom field
            self.features = random_features(
                self.canvas_shape, content_rng, cfg.feature_px_per_phantom_frame
            )
        self._event_field = EventField(
            self.canvas_shape, self._pad, self._pad, rows, cols,
            duration=(cfg.n_shimadzu - 1) / cfg.phantom_every, every=cfg.phantom_every,
        )  # fmt: skip
        events = cfg.fast_events if self._static is None else None
        self.fast_events = draw_fast_events(
            events, (cfg.seed, _STREAM_FAST_EVENTS), self._event_field
        )
        self._build_timeline()

    # ---- geometry -------------------------------------------------------------------
    @property
    def phantom_shape(self) -> tuple[int, int]:
        return self.config.phantom_shape

    @property
    def shimadzu_shape(self) -> tuple[int, int]:
        rows, cols = self.config.shimadzu_shape
        return (int(rows), int(cols))

    @property
    def transform(self) -> InterCameraTransform:
        return self.config.transform

    # ---- timing ---------------------------------------------------------------------
    @property
    def phantom_period_ns(self) -> int:
        return self.config.shimadzu_frame_ns * self.config.phantom_every

    @property
    def phantom_frame_rate_hz(self) -> float:
        return 1e9 / self.phantom_period_ns

    @property
    def shimadzu_frame_rate_hz(self) -> float:
        return 1e9 / self.config.shimadzu_frame_ns

    @property
    def n_shimadzu(self) -> int:
        return self.config.n_shimadzu

    @property
    def n_phantom(self) -> int:
        return len(self._phantom_numbers)

    def _build_timeline(self) -> None:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, _STREAM_TIMING])
        k = np.arange(cfg.n_shimadzu)
        s_jit = rng.uniform(-cfg.shimadzu_jitter_ns, cfg.shimadzu_jitter_ns, cfg.n_shimadzu)
        s_jit[0] = 0.0  # ImageRelative is relative to frame 1
        self._shimadzu_times = np.round(k * cfg.shimadzu_frame_ns + s_jit).astype(np.int64)
        n_e = -(-(cfg.n_shimadzu - 1) // cfg.phantom_every) + 1
        numbers = np.arange(-cfg.n_pre_trigger, n_e + cfg.n_post_trigger, dtype=np.int64)
        p_jit = rng.uniform(-cfg.phantom_jitter_ns, cfg.phantom_jitter_ns, len(numbers))
        p_jit[numbers == 0] = 0.0  # the first E frame is the Phantom's time reference
        self._phantom_numbers = numbers
        # The Phantom time stamp resolves 10 ns (its XML Time text): report what the camera
        # reports, so live streams and recorded folders of one scene pair identically.
        exact = numbers * self.phantom_period_ns + p_jit
        self._phantom_times = (np.round(exact / 10.0) * 10).astype(np.int64)
        self._phantom_e = (numbers >= 0) & (numbers < n_e)

    def shimadzu_times_ns(self) -> np.ndarray:
        """ImageRelative of each Shimadzu frame: ns since Shimadzu frame 1, int64."""
        return self._shimadzu_times.copy()

    def phantom_frame_numbers(self) -> np.ndarray:
        """Phantom frame numbers, 0 at the first E frame, negative before the trigger."""
        return self._phantom_numbers.copy()

    def phantom_times_ns(self) -> np.ndarray:
        """Phantom exposure times in ns relative to the first E frame (= Shimadzu clock)."""
        return self._phantom_times.copy()

    def phantom_e_flags(self) -> np.ndarray:
        """True where the Phantom saw the Shimadzu trigger gate (its ``E`` flag)."""
        return self._phantom_e.copy()

    def timings(self) -> tuple[PhantomTiming, ShimadzuTiming]:
        """The timelines as the recorded format would give them (for pairing tables)."""
        phantom = PhantomTiming(
            frame_numbers=self.phantom_frame_numbers(),
            times_ns=self.phantom_times_ns(),
            e_flags=self.phantom_e_flags(),
            frame_rate_hz=self.phantom_frame_rate_hz,
            gamma=0.0,
        )
        shimadzu = ShimadzuTiming(
            frame_ns=int(self.config.shimadzu_frame_ns),
            n_frames=self.n_shimadzu,
            times_ns=self.shimadzu_times_ns(),
        )
        return phantom, shimadzu

    def phantom_shimadzu_index(self) -> np.ndarray:
        """For each Phantom frame, the Shimadzu frame exposed at the same time, else -1.

        This is the ground-truth pairing that temporal calibration must recover.
        """
        k = self._phantom_numbers * self.config.phantom_every
        inside = (self._phantom_numbers >= 0) & (k < self.config.n_shimadzu)
        return np.where(inside, k, -1).astype(np.int64)

    # ---- ground truth ---------------------------------------------------------------
    def _canvas(self, t_ns: float) -> np.ndarray:
        """The padded scene at ``t_ns``; the last one is kept (truth + frame at one time)."""
        if self._static is not None:
            return self._static
        last = self._last_canvas  # one read: safe if frames render in threads
        if last is not None and last[0] == float(t_ns):
            return last[1]
        canvas = self._render_canvas(float(t_ns))
        self._last_canvas = (float(t_ns), canvas)
        return canvas

    def _render_canvas(self, t_ns: float) -> np.ndarray:
        tau = t_ns / self.phantom_period_ns
        map_x, map_y = self.motion.maps(tau)
        depth = cv2.remap(
            self._depth, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        for feature in self.features:
            feature.add_depth(depth, tau)
        if self.fast_events:
            for event in self.fast_events:
                for patch in event.patches(tau, self.canvas_shape):
                    patch.add_to(depth)
            np.maximum(depth, 0.0, out=depth)  # voids never remove more than is there
        return self._flat * np.exp(-depth)

    def truth(self, t_ns: float) -> np.ndarray:
        """Noise-free intensity on the Phantom grid at time ``t_ns``, float32 in [0, 1]."""
        p = self._pad
        rows, cols = self.phantom_shape
        return self._canvas(t_ns)[p : p + rows, p : p + cols].copy()

    def truth_counts(self, t_ns: float) -> np.ndarray:
        """Ground truth as noise-free uint16 counts on the cameras' scale (for scoring)."""
        return to_counts(self.truth(t_ns), None, np.random.default_rng(0))

    def shimadzu_truth(self, k: int) -> np.ndarray:
        """Ground truth on the Phantom grid at the time of Shimadzu frame ``k`` (0-based)."""
        return self.truth(float(self._shimadzu_times[self._check(k, self.n_shimadzu)]))

    def event_mask(self, t_ns: float) -> np.ndarray:
        """Where fast events change the scene around ``t_ns``: bool, Phantom shape.

        Their footprints at ``t_ns`` and at the two bracketing Phantom frames, dilated
        by 2 px; all False without events.
        """
        return fast_event_mask(self.fast_events, t_ns / self.phantom_period_ns, self._event_field)

    def shimadzu_event_mask(self, k: int) -> np.ndarray:
        """``event_mask`` at the time of Shimadzu frame ``k`` (0-based)."""
        return self.event_mask(float(self._shimadzu_times[self._check(k, self.n_shimadzu)]))

    # ---- cameras --------------------------------------------------------------------
    def shimadzu_frame(self, k: int) -> np.ndarray:
        """Shimadzu frame ``k`` (0-based), uint16 ``shimadzu_shape``."""
        k = self._check(k, self.n_shimadzu)
        rng = np.random.default_rng([self.config.seed, _STREAM_SHIMADZU, k])
        canvas = self._canvas(float(self._shimadzu_times[k]))
        return render_shimadzu(
            canvas,
            self.transform,
            self.shimadzu_shape,
            photons=self.config.shimadzu_photons,
            rng=rng,
            full_scale=self.config.shimadzu_full_scale,
            dark_counts=self.config.shimadzu_dark_counts,
        )

    def phantom_frame(self, i: int) -> np.ndarray:
        """Phantom frame at position ``i`` (0-based, in frame-number order), uint16."""
        i = self._check(i, self.n_phantom)
        rng = np.random.default_rng([self.config.seed, _STREAM_PHANTOM, i])
        return render_phantom(
            self.truth(float(self._phantom_times[i])),
            photons=self.config.phantom_photons,
            rng=rng,
        )

    def describe(self) -> dict:
        """JSON-ready summary: config, transform matrix and the whole timeline."""
        m = self.transform.matrix(self.shimadzu_shape, self.phantom_shape)
        return {
            "config": self.config.to_dict(),
            "transform": self.transform.to_dict(),
            "transform_matrix": m.tolist(),
            "pixel_ratio": self.config.ratio,
            "phantom_shape": list(self.phantom_shape),
            "shimadzu_shape": list(self.shimadzu_shape),
            "shimadzu_frame_ns": self.config.shimadzu_frame_ns,
            "phantom_frame_rate_hz": self.phantom_frame_rate_hz,
            "shimadzu_times_ns": self._shimadzu_times.tolist(),
            "phantom_frame_numbers": self._phantom_numbers.tolist(),
            "phantom_times_ns": self._phantom_times.tolist(),
            "phantom_e_flags": self._phantom_e.tolist(),
            "phantom_shimadzu_index": self.phantom_shimadzu_index().tolist(),
        } | ({"fast_events": [e.summary() for e in self.fast_events]} if self.fast_events else {})

    @staticmethod
    def _check(index: int, n: int) -> int:
        index = int(index)
        if not 0 <= index < n:
            raise IndexError(f"frame index {index} outside 0..{n - 1}")
        return index


def _canvas_pad(cfg: SceneConfig) -> int:
    """Margin around the Phantom field so the Shimadzu never looks past the scene."""
    rows, cols = cfg.shimadzu_shape
    r = cfg.ratio
    m = cfg.transform.matrix(cfg.shimadzu_shape, cfg.phantom_shape)
    corners = np.array([[0, 0, 1], [cols * r - 1, 0, 1], [0, rows * r - 1, 1]], dtype=float)
    corners = np.vstack([corners, [cols * r - 1, rows * r - 1, 1]])
    p = corners @ m.T
    prow, pcol = cfg.phantom_shape
    over = max(0.0, -p[:, 0].min(), p[:, 0].max() - (pcol - 1))
    over = max(over, -p[:, 1].min(), p[:, 1].max() - (prow - 1))
    return int(np.ceil(over)) + 4


def grid_scene_config(config: SceneConfig, n_frames: int = 32) -> SceneConfig:
    """The static G400 grid in place of the sample: ``n_frames`` frames per camera,
    all after the trigger (enough for a calibration average)."""
    n = max(int(n_frames), 2)
    return config.replace(content="grid", n_shimadzu=n, n_pre_trigger=0, n_post_trigger=n)
