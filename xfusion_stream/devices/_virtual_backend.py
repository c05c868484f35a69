"""Virtual dual-camera experiments synthesised from one single-camera sequence.

The original's "virtual" data type: a fast single-camera sequence (the held-out
truth) is seen by two pretend cameras. The Shimadzu sees every frame ``ratio`` times
coarser (bicubic or area downsampling, then Poisson shot noise); the Phantom sees
every ``phantom_every``-th frame at full resolution, flagged 'E', at exactly the time
of its Shimadzu frame. Both cameras then run through the same ophyd devices, plans
and fusion callback as real ones, and every fused frame has a ground truth.

Geometry: HR frames are cropped at the top-left to multiples of ``4 * ratio`` (16
pixels for x4; the model's two stride-2 stages on the LR grid need multiples of 4),
so the Phantom grid is exactly ``ratio`` x the Shimadzu grid with coincident LR
pixel centres (``xfusion_stream.core`` (optics) convention, no mirror): the identity
calibration record registers them without resampling.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator

from ..core import ConfigError, ConfigModel, RecordedFormatError
from ..recorded import PhantomTiming, ShimadzuTiming, read_tiff
from ._camera_backend import BurstLifecycle, CameraFrame, CameraSettings

__all__ = ["DEFAULT_PHOTONS", "VirtualCaseBackend", "VirtualOptions", "VirtualSequence"]

DEFAULT_PHOTONS = 10**3.5
FULL_SCALE = 65535.0

Photons = float | tuple[float, float] | None


class VirtualOptions(ConfigModel):
    """How the pretend cameras see the sequence.

    ``photons``: photon count ``b0`` at full intensity for the Shimadzu's shot noise;
    a pair ``(e0, e1)`` draws ``b0 = 10**U(e0, e1)`` per frame; None adds no noise.
    Noise for Shimadzu frame ``k`` is drawn from ``default_rng([seed, k])``, so any
    frame can be regenerated alone. ``phantom_every`` is at least 2: the Shimadzu is
    the faster camera.
    """

    ratio: int = Field(default=4, ge=1)
    phantom_every: int = Field(default=20, ge=2)
    photons: Photons = DEFAULT_PHOTONS
    seed: int = 0
    frame_ns: int = Field(default=200, gt=0, description="Shimadzu frame time")
    downsample: Literal["bicubic", "area"] = "bicubic"

    @field_validator("photons")
    @classmethod
    def _photons(cls, value: Photons) -> Photons:
        if isinstance(value, tuple) and not value[0] <= value[1]:
            raise ValueError(f"a range must be (e0, e1) with e0 <= e1, got {list(value)}")
        if isinstance(value, float) and not value > 0:
            raise ValueError(f"must be > 0 (or None for no noise), got {value}")
        return value

    @property
    def multiple(self) -> int:
        """HR frames are cropped to multiples of this (16 for x4)."""
        return 4 * int(self.ratio)


def frame_files(folder: str | Path) -> list[Path]:
    """PNG/TIFF frames of one sequence folder, sorted by name (zero-padded = time order)."""
    from xfusion_models.data import frame_paths  # the clip-folder convention training uses

    try:
        return frame_paths(folder)
    except FileNotFoundError:
        raise ConfigError(f"{folder}: sequence folder not found") from None
    except ValueError:
        raise ConfigError(f"{folder}: sequence folder holds no PNG/TIFF frames") from None


def read_stored(path: Path) -> np.ndarray:
    """One frame as stored in its file (its own pixel type), squeezed."""
    image: np.ndarray | None
    if path.suffix.lower() in (".tif", ".tiff"):
        image = read_tiff(path)
    else:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise RecordedFormatError(path, "image", "not a readable image")
    return np.squeeze(image)


def read_gray(path: Path) -> np.ndarray:
    """One gray frame as float32 in [0, 1] (8-bit / 255, 16-bit / 65535)."""
    return to_unit(read_stored(path), path)


def to_unit(image: np.ndarray, where: object) -> np.ndarray:
    """8-bit / 255, 16-bit / 65535; floats must be finite intensities in [0, 1] (not clipped)."""
    if image.ndim != 2:
        raise RecordedFormatError(where, "image", f"expected one gray frame, got {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / FULL_SCALE
    if np.issubdtype(image.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(image)))
        if bad:
            raise RecordedFormatError(where, "image", f"{bad} pixels are NaN or infinite")
        low, high = float(image.min()), float(image.max())
        if low < 0.0 or high > 1.0:
            why = f"float pixels must be intensities in 0..1, found {low:.6g}..{high:.6g}"
            raise RecordedFormatError(where, "image", why)
        return image.astype(np.float32)
    raise RecordedFormatError(where, "image", f"pixel type {image.dtype} is not 8/16-bit")


class _Frames:
    """Random access to a stack of gray frames: files on disk or an in-memory array."""

    def __init__(self, source: str | Path | np.ndarray, what: str) -> None:
        if isinstance(source, np.ndarray):
            if source.ndim != 3:
                raise ConfigError(f"{what}: array must be (frames, rows, cols), got {source.shape}")
            self.array: np.ndarray | None = source
            self.files: list[Path] = []
            self.name = f"<array {source.shape[0]}x{source.shape[1]}x{source.shape[2]}>"
            self.shape = (int(source.shape[1]), int(source.shape[2]))
        else:
            self.array = None
            self.files = frame_files(source)
            self.name = str(Path(source).resolve())
            first = read_stored(self.files[0])
            self.shape, self.dtype = to_unit(first, self.files[0]).shape, first.dtype

    def __len__(self) -> int:
        return len(self.files) if self.array is None else int(self.array.shape[0])

    def __getitem__(self, index: int) -> np.ndarray:
        if self.array is not None:
            return to_unit(self.array[index], f"{self.name}[{index}]")
        path = self.files[index]
        stored = read_stored(path)
        if stored.dtype != self.dtype:  # 8- and 16-bit frames are on different scales
            raise RecordedFormatError(
                path,
                "image",
                f"pixel type {stored.dtype} differs from the first frame's {self.dtype}",
            )
        image = to_unit(stored, path)
        if image.shape != self.shape:
            raise RecordedFormatError(
                path, "image", f"shape {image.shape} differs from the first frame's {self.shape}"
            )
        return image


class VirtualSequence:
    """One single-camera HR sequence and the two virtual cameras' views of it.

    ``source`` is a folder of gray PNG/TIFF frames (sorted by name, 8- or 16-bit) or a
    (frames, rows, cols) array (uint8, uint16, or float in [0, 1]). ``lr_source``
    optionally gives ready-made LR frames (a REDS-style LR clip folder) instead of
    downsampling; they are cropped to match and still get the shot noise.
    """

    def __init__(
        self,
        source: str | Path | np.ndarray,
        options: VirtualOptions | None = None,
        *,
        lr_source: str | Path | np.ndarray | None = None,
    ) -> None:
        self.options = options or VirtualOptions()
        self.source = source
        self._hr = _Frames(source, "virtual source")
        m, r = self.options.multiple, self.options.ratio
        rows, cols = (self._hr.shape[0] // m) * m, (self._hr.shape[1] // m) * m
        if rows == 0 or cols == 0:
            raise ConfigError(
                f"{self._hr.name}: frames {self._hr.shape} are smaller than {m}x{m} pixels"
            )
        self.hr_shape = (rows, cols)
        self.lr_shape = (rows // r, cols // r)
        need = 2 * self.options.phantom_every + 1
        if len(self._hr) < need:
            raise ConfigError(
                f"{self._hr.name}: {len(self._hr)} frames; a virtual experiment with "
                f"phantom_every={self.options.phantom_every} needs at least {need} "
                "(three Phantom frames, so double mode has a window)"
            )
        self._lr = None if lr_source is None else self._check_lr(_Frames(lr_source, "LR source"))

    def _check_lr(self, lr: _Frames) -> _Frames:
        r = self.options.ratio
        if len(lr) < len(self._hr):
            raise ConfigError(f"{lr.name}: {len(lr)} LR frames for {len(self._hr)} HR frames")
        if lr.shape[0] * r < self.hr_shape[0] or lr.shape[1] * r < self.hr_shape[1]:
            raise ConfigError(
                f"{lr.name}: LR frames {lr.shape} are not 1/{r} of the HR frames {self._hr.shape}"
            )
        return lr

    # ---- sizes and timing -------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._hr.name

    @property
    def n_frames(self) -> int:
        """Shimadzu frames = HR frames of the sequence."""
        return len(self._hr)

    @property
    def phantom_positions(self) -> range:
        """HR frame index of each Phantom frame."""
        return range(0, self.n_frames, self.options.phantom_every)

    @property
    def crop(self) -> dict[str, int]:
        """The top-left crop applied to every HR frame (source pixels)."""
        return {"x": 0, "y": 0, "width": self.hr_shape[1], "height": self.hr_shape[0]}

    def shimadzu_times_ns(self) -> np.ndarray:
        return np.arange(self.n_frames, dtype=np.int64) * int(self.options.frame_ns)

    def phantom_times_ns(self) -> np.ndarray:
        return np.asarray(self.phantom_positions, dtype=np.int64) * int(self.options.frame_ns)

    def phantom_timing(self) -> PhantomTiming:
        """The Phantom side as a recorded case would describe it (for ``pairing_table``)."""
        n = len(self.phantom_positions)
        period = self.options.phantom_every * self.options.frame_ns
        return PhantomTiming(
            frame_numbers=np.arange(n, dtype=np.int64),
            times_ns=self.phantom_times_ns(),
            e_flags=np.ones(n, dtype=bool),
            frame_rate_hz=1e9 / period,
            gamma=0.0,
        )

    def shimadzu_timing(self) -> ShimadzuTiming:
        return ShimadzuTiming(
            frame_ns=int(self.options.frame_ns),
            n_frames=self.n_frames,
            times_ns=self.shimadzu_times_ns(),
        )

    # ---- frames -----------------------------------------------------------------------
    def hr_unit(self, index: int) -> np.ndarray:
        """HR frame ``index``, cropped, float32 in [0, 1]."""
        rows, cols = self.hr_shape
        return self._hr[index][:rows, :cols]

    def ground_truth(self, shimadzu_index: int) -> np.ndarray:
        """The held-out truth for Shimadzu frame ``shimadzu_index``: uint16, Phantom grid."""
        return unit_to_uint16(self.hr_unit(shimadzu_index))

    def phantom_frame(self, k: int) -> np.ndarray:
        """Phantom frame ``k`` (HR frame ``k * phantom_every``), uint16."""
        return self.ground_truth(self.phantom_positions[k])

    def shimadzu_clean(self, index: int) -> np.ndarray:
        """Shimadzu frame ``index`` before noise, float32 in [0, 1]."""
        rows, cols = self.lr_shape
        if self._lr is not None:
            return self._lr[index][:rows, :cols]
        hr = self.hr_unit(index)
        method = cv2.INTER_CUBIC if self.options.downsample == "bicubic" else cv2.INTER_AREA
        # cv2 samples LR pixel j at HR (j + 0.5) * ratio - 0.5: the optics LR centre
        lr = cv2.resize(hr, (cols, rows), interpolation=method)
        return np.clip(lr, 0.0, 1.0)

    def shimadzu_frame(self, index: int) -> np.ndarray:
        """Shimadzu frame ``index``: downsampled, shot noise, uint16."""
        return unit_to_uint16(shot_noise(self.shimadzu_clean(index), self.options, index))

    def start_metadata(self) -> dict[str, object]:
        """What a run's start document records about this virtual experiment."""
        opt = self.options
        photons = opt.photons
        return {
            "data_type": "virtual",
            "virtual_source": self.name,
            "phantom_every": int(opt.phantom_every),
            "virtual": {
                "ratio": int(opt.ratio),
                "photons": list(photons) if isinstance(photons, tuple) else photons,
                "seed": int(opt.seed),
                "frame_ns": int(opt.frame_ns),
                "downsample": opt.downsample,
                "hr_crop": self.crop,
                "n_frames": self.n_frames,
                "lr_source": None if self._lr is None else self._lr.name,
            },
        }


def shot_noise(image: np.ndarray, options: VirtualOptions, index: int) -> np.ndarray:
    """``clip(Poisson(img * b0) / b0, 0, 1)`` with noise seeded by (seed, frame index)."""
    photons = options.photons
    if photons is None:
        return image
    rng = np.random.default_rng([int(options.seed), int(index)])
    if isinstance(photons, tuple):
        b0 = 10.0 ** rng.uniform(photons[0], photons[1])
    else:
        b0 = float(photons)
    noisy = rng.poisson(image.astype(np.float64) * b0) / b0
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def unit_to_uint16(image: np.ndarray) -> np.ndarray:
    """Intensity in [0, 1] -> uint16 over the full 16-bit range, rounded (no noise, no gain)."""
    return np.round(np.clip(image, 0.0, 1.0) * FULL_SCALE).astype(np.uint16)


class VirtualCaseBackend(BurstLifecycle):
    """One virtual camera (``"phantom"`` or ``"shimadzu"``) of a :class:`VirtualSequence`.

    ``source`` is a sequence folder, an array stack, or a ``VirtualSequence`` (share
    one between the two cameras of a plan; its options then win and an option given
    here that differs from the sequence's is an error). ``options`` are
    :class:`VirtualOptions` fields.
    Phantom frames: numbers 0, 1, ..., all 'E', at ``k * phantom_every * frame_ns``;
    Shimadzu frames: numbers 1..N at ``k * frame_ns``.
    """

    source = "virtual"

    def __init__(
        self,
        source: str | Path | np.ndarray | VirtualSequence,
        camera: Literal["phantom", "shimadzu"],
        *,
        lr_source: str | Path | np.ndarray | None = None,
        pixel_size_um: float = 0.0,
        **options: Any,
    ) -> None:
        if camera not in ("phantom", "shimadzu"):
            raise ConfigError(f"camera must be 'phantom' or 'shimadzu', got {camera!r}")
        given = VirtualOptions(**options)
        if isinstance(source, VirtualSequence):
            if lr_source is not None:
                raise ConfigError("lr_source belongs to the shared VirtualSequence, not here")
            _check_shared(source.options, given)
            self.sequence = source
        else:
            self.sequence = VirtualSequence(source, given, lr_source=lr_source)
        self.camera = camera
        self.pixel_size_um = float(pixel_size_um)

    def settings(self) -> CameraSettings:
        seq, opt = self.sequence, self.sequence.options
        if self.camera == "phantom":
            period = float(opt.phantom_every * opt.frame_ns)
            return CameraSettings(
                frame_shape=seq.hr_shape,
                n_frames=len(seq.phantom_positions),
                frame_time_ns=period,
                frame_rate_hz=1e9 / period,
                pixel_size_um=self.pixel_size_um,
            )
        return CameraSettings(
            frame_shape=seq.lr_shape,
            n_frames=seq.n_frames,
            frame_time_ns=float(opt.frame_ns),
            frame_rate_hz=1e9 / opt.frame_ns,
            pixel_size_um=self.pixel_size_um * opt.ratio,
        )

    def ground_truth(self, shimadzu_index: int) -> np.ndarray:
        """Held-out HR frame (uint16) at the time of Shimadzu frame ``shimadzu_index``."""
        return self.sequence.ground_truth(shimadzu_index)

    def readout(self, limit: int | None = None) -> Iterator[CameraFrame]:
        self._require_recorded()
        seq = self.sequence
        if self.camera == "phantom":
            times = seq.phantom_times_ns()
            n = len(times) if limit is None else min(limit, len(times))
            for k in range(n):
                yield CameraFrame(seq.phantom_frame(k), k, int(times[k]), True)
            return
        times = seq.shimadzu_times_ns()
        n = len(times) if limit is None else min(limit, len(times))
        for k in range(n):
            yield CameraFrame(seq.shimadzu_frame(k), k + 1, int(times[k]), False)


def _check_shared(have: VirtualOptions, given: VirtualOptions) -> None:
    for name in sorted(given.model_fields_set):
        value = getattr(given, name)
        if value != getattr(have, name):
            raise ConfigError(
                f"{name}={value!r} differs from the shared VirtualSequence's "
                f"{getattr(have, name)!r}; set options on the sequence only"
            )
