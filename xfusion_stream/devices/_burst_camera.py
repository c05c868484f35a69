"""The ophyd side shared by both burst cameras: readings, configuration, HDF5, assets.

Lifecycle, as on the real cameras: ``stage`` arms; ``trigger`` records one burst into
camera memory and reads the memory out (into an HDF5 file, or into RAM for
``inline=True``); then a plan walks the read-out frames by setting ``readout_index``
and reading the device once per frame, so every frame becomes one event carrying its
hardware timestamp. ``memory_times_ns`` lets a plan interleave two cameras by time.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import Status

from ._camera_backend import CameraBackend, CameraFrame, CameraSettings
from ._frame_file import BurstFile, write_burst_file

__all__ = ["BurstCamera", "SoftSetting"]

_burst_counter = itertools.count()


def _numpy_dtype(value: Any) -> str | None:
    if isinstance(value, bool):
        return "|b1"
    if isinstance(value, int):
        return "<i8"
    if isinstance(value, float):
        return "<f8"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        return "<i8"
    return None


class SoftSetting(Signal):
    """A soft signal whose ``set`` completes at once, in the caller's thread.

    ophyd's ``Signal.set`` starts a thread per call; a burst readout sets the frame
    index hundreds of times, so that would be hundreds of threads for nothing.
    """

    def set(self, value: Any, **kwargs: Any) -> Status:  # type: ignore[override]
        self.put(value)
        status = Status(obj=self)
        status.set_finished()
        return status


class BurstCamera(Device):
    """Base of ``PhantomTMX7510`` and ``ShimadzuHPVX2``; not used on its own.

    ``prefix`` is the EPICS PV prefix from the profile (kept for the EPICS backend and
    recorded as the data source). ``data_dir`` is where burst HDF5 files go.
    """

    CAMERA_MODEL = ""

    camera_model = Cpt(Signal, value="", kind="config")
    pixel_size_um = Cpt(Signal, value=0.0, kind="config")
    frame_time_ns = Cpt(Signal, value=0.0, kind="config")
    frame_shape = Cpt(Signal, value=[0, 0], kind="config")
    n_frames = Cpt(Signal, value=0, kind="config")

    readout_index = Cpt(SoftSetting, value=0, kind="omitted")
    readout_limit = Cpt(SoftSetting, value=0, kind="omitted")
    target = Cpt(SoftSetting, value="sample", kind="omitted")
    memory_times_ns = Cpt(Signal, value=[], kind="omitted")

    def __init__(
        self,
        prefix: str = "",
        *,
        name: str,
        backend: CameraBackend,
        data_dir: str | Path | None = None,
        inline: bool = False,
        pixel_size_um: float | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(prefix, name=name, **kwargs)
        #: a bar on stderr while ``trigger`` reads camera memory out (slow at full size)
        self.progress = bool(progress)
        if not inline and data_dir is None:
            raise ValueError(f"{name}: data_dir is required unless inline=True")
        self.backend = backend
        self.inline = bool(inline)
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._pixel_size_override = pixel_size_um
        self._frames: list[CameraFrame] = []
        self._burst_file: BurstFile | None = None
        self._pending_index: int | None = None
        self._frames_read = 0
        self.camera_model.put(self.CAMERA_MODEL)
        self.target.subscribe(self._on_target, run=False)
        self._apply_settings(backend.settings())

    # ---- configuration ------------------------------------------------------------
    def _apply_settings(self, settings: CameraSettings) -> None:
        pixel = self._pixel_size_override or settings.pixel_size_um
        self.pixel_size_um.put(float(pixel))
        self.frame_time_ns.put(float(settings.frame_time_ns))
        self.frame_shape.put([int(v) for v in settings.frame_shape])
        self.n_frames.put(int(settings.n_frames))

    def describe_configuration(self) -> OrderedDict[str, dict[str, Any]]:
        """ophyd's soft-signal descriptions plus numpy dtypes, so stores keep int as int."""
        keys = super().describe_configuration()
        for key, value in self.read_configuration().items():
            dtype = _numpy_dtype(value["value"])
            if dtype is not None:
                keys[key] = {**keys[key], "dtype_numpy": dtype}
        return keys

    def _on_target(self, value: Any = None, **kwargs: Any) -> None:
        select = getattr(self.backend, "select_target", None)
        if select is not None:
            select(str(value))
            self._apply_settings(self.backend.settings())

    # ---- burst lifecycle ------------------------------------------------------------
    def stage(self) -> list[object]:
        self.backend.arm()
        self._frames = []
        self._burst_file = None
        return super().stage()

    def unstage(self) -> list[object]:
        try:
            self.backend.disarm()
        finally:
            result = super().unstage()
        return result

    def trigger(self) -> Status:
        """Record one burst and read camera memory out; done when the file is closed."""
        status = Status(obj=self)
        try:
            self._record_and_read_out()
        except Exception as exc:  # noqa: BLE001 - reported through the status
            status.set_exception(exc)
        else:
            status.set_finished()
        return status

    def _record_and_read_out(self) -> None:
        self.backend.trigger()
        limit = int(self.readout_limit.get() or 0) or None
        frames = self._read_memory(limit)
        if not frames:
            raise RuntimeError(f"{self.name}: camera memory is empty after the burst")
        settings = self.backend.settings()
        self._apply_settings(settings)
        self.n_frames.put(len(frames))
        self.frame_shape.put([int(v) for v in frames[0].image.shape])
        self._frames = frames
        self._frames_read = 0
        self.memory_times_ns.put([int(f.time_ns) for f in frames])
        if not self.inline:
            self._burst_file = self._write_file(frames)

    def _read_memory(self, limit: int | None) -> list[CameraFrame]:
        """Every frame in camera memory (up to ``limit``), with a bar if ``progress``."""
        frames = self.backend.readout(limit)
        if not self.progress:
            return list(frames)
        from tqdm import tqdm

        total = int(self.backend.settings().n_frames)
        total = min(total, limit) if limit else total
        desc = f"{self.name} memory read out"
        with tqdm(frames, desc=desc, total=total or None, unit="frame") as bar:
            return list(bar)

    def _write_file(self, frames: list[CameraFrame]) -> BurstFile:
        assert self.data_dir is not None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.data_dir / f"{self.name}_{stamp}_{next(_burst_counter):04d}.h5"
        while path.exists():
            path = self.data_dir / f"{self.name}_{stamp}_{next(_burst_counter):04d}.h5"
        write_burst_file(path, frames)
        shape = tuple(int(v) for v in frames[0].image.shape)
        return BurstFile(path, f"{self.name}_image", (shape[0], shape[1]))

    @property
    def burst_path(self) -> Path | None:
        """HDF5 file of the last burst (None in inline mode or before a burst)."""
        return None if self._burst_file is None else self._burst_file.path

    # ---- readings -----------------------------------------------------------------------
    def _current_frame(self) -> tuple[int, CameraFrame]:
        if not self._frames:
            raise RuntimeError(f"{self.name}: read before a burst was triggered")
        index = int(self.readout_index.get())
        if not 0 <= index < len(self._frames):
            raise IndexError(
                f"{self.name}: readout_index {index} outside 0..{len(self._frames) - 1}"
            )
        return index, self._frames[index]

    def _frame_reading(self, frame: CameraFrame) -> dict[str, Any]:
        """Per-frame values other than the image; subclasses add their own."""
        return {
            f"{self.name}_frame_number": int(frame.frame_number),
            f"{self.name}_time_ns": int(frame.time_ns),
        }

    def read(self) -> OrderedDict[str, dict[str, Any]]:
        index, frame = self._current_frame()
        now = time.time()
        values: dict[str, Any] = {}
        if self.inline:
            values[f"{self.name}_image"] = np.asarray(frame.image, dtype=np.uint16)
        else:
            self._pending_index = index
        values.update(self._frame_reading(frame))
        self._frames_read += 1
        return OrderedDict((k, {"value": v, "timestamp": now}) for k, v in values.items())

    def _frame_data_keys(self) -> dict[str, dict[str, Any]]:
        source = self.prefix or f"sim:{self.name}:"
        return {
            f"{self.name}_frame_number": {
                "source": f"{source}frame_number",
                "dtype": "integer",
                "shape": [],
                "dtype_numpy": "<i8",
            },
            f"{self.name}_time_ns": {
                "source": f"{source}time_ns",
                "dtype": "integer",
                "shape": [],
                "dtype_numpy": "<i8",
                "units": "ns",
            },
        }

    def describe(self) -> OrderedDict[str, dict[str, Any]]:
        rows, cols = (int(v) for v in self.frame_shape.get())
        source = self.prefix or f"sim:{self.name}:"
        image: dict[str, Any] = {
            "source": f"{source}image",
            "dtype": "array",
            "shape": [rows, cols],
            "dtype_numpy": "<u2",
        }
        if not self.inline:
            image["external"] = "STREAM:"
        keys: OrderedDict[str, dict[str, Any]] = OrderedDict()
        keys[f"{self.name}_image"] = image
        keys.update(self._frame_data_keys())
        return keys

    # ---- external assets (WritesStreamAssets) ------------------------------------
    def collect_asset_docs(self, index: int | None = None) -> Iterator[tuple[str, dict]]:
        """StreamResource (once per burst) and the StreamDatum of the frame just read."""
        if self._burst_file is None or self._pending_index is None:
            return
        pending, self._pending_index = self._pending_index, None
        yield from self._burst_file.asset_docs(pending)  # type: ignore[misc]

    def get_index(self) -> int:
        return self._frames_read
