"""Simulated burst detectors: ophyd-async ``StandardDetector``s over a ``CameraBackend``.

Why: the same fly plans and documents as the EPICS detectors, with no IOC. The
"camera" here is the backend (the scene engine, a recorded folder, a virtual
sequence); like the real camera it, not the client, writes the areaDetector-layout
HDF5 file, in a worker thread, so the RunEngine's event loop never waits on a frame.
Composed from small logic objects, as ophyd-async's own simulated detector is:
trigger (how many frames), acquire (record and read out), data (file + documents).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np
from ophyd_async.core import (
    DetectorAcquireLogic,
    DetectorDataLogic,
    DetectorTriggerLogic,
    PathProvider,
    StandardDetector,
    StreamableDataProvider,
    StreamResourceDataProvider,
    StreamResourceInfo,
    soft_signal_r_and_setter,
)

from ..documents import CameraKeys
from ..simulation import AD_ATTRIBUTES_GROUP, AD_FRAMES_DATASET, ADFileWriter
from ._ad_detector import CAMERA_MODELS, FRAME_ATTRIBUTES, Camera, burst_keys, frame_value_keys
from ._camera_backend import CameraBackend, CameraFrame
from ._frame_file import HDF5_MIMETYPE

__all__ = ["SimBurstDetector"]


def _value(frame: CameraFrame, field: str) -> int:
    return {
        "frame_number": int(frame.frame_number),
        "time_ns": int(frame.time_ns),
        "trigger_flag": int(bool(frame.e_flag)),
    }[field]


class _CameraMemory:
    """The simulated camera: records a burst and reads it out into the file, frame by
    frame (in a worker thread), counting the frames written."""

    def __init__(self, backend: CameraBackend, camera: Camera, keys: CameraKeys) -> None:
        self.backend = backend
        self.camera = camera
        self.keys = keys
        self.frames_written, self._set_written = soft_signal_r_and_setter(int, initial_value=0)
        self.requested = 0
        self.writer: ADFileWriter | None = None
        self._names: dict[str, str] = {}  # data key -> CameraKeys field of the value
        self._stop = threading.Event()

    def open(self, path: Path, name: str) -> dict[str, str]:
        """A new file for ``name``'s frames; returns its NDAttribute data keys and dtypes."""
        self.close()
        self._names = frame_value_keys(name, self.camera, self.keys)
        types = {field: t.value for field, _, t in FRAME_ATTRIBUTES[self.camera]}
        dtypes = {key: types[field] for key, field in self._names.items()}
        self.writer = ADFileWriter(path, dtypes)
        self._set_written(0)
        return dtypes

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def record(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arm, trigger, read out ``requested`` frames into the file (worker thread)."""
        writer = self.writer
        if writer is None:
            raise RuntimeError(f"simulated {self.camera}: acquire before prepare")
        self._stop.clear()
        self.backend.arm()
        try:
            self.backend.trigger()
            for frame in self.backend.readout(self.requested):
                if self._stop.is_set():
                    break
                values = {key: _value(frame, s) for key, s in self._names.items()}
                written = writer.append(np.asarray(frame.image, dtype=np.uint16), values)
                loop.call_soon_threadsafe(self._set_written, written)
        finally:
            writer.close()  # complete on disk before the detector reports idle
            self.backend.disarm()

    def stop(self) -> None:
        self._stop.set()


class _Trigger(DetectorTriggerLogic):
    def __init__(self, memory: _CameraMemory) -> None:
        self.memory = memory

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        n_frames = self.memory.backend.settings().n_frames
        if not 1 <= num <= n_frames:
            raise ValueError(f"a {self.memory.camera} burst holds 1..{n_frames} frames, not {num}")
        self.memory.requested = int(num)


class _Acquire(DetectorAcquireLogic):
    def __init__(self, memory: _CameraMemory) -> None:
        self.memory = memory
        self.task: asyncio.Future[None] | None = None

    async def start_acquiring(self) -> None:
        loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(asyncio.to_thread(self.memory.record, loop))

    async def wait_for_idle(self) -> None:
        if self.task is not None:
            await self.task

    async def ensure_stopped(self) -> None:
        self.memory.stop()
        if self.task is not None:
            with suppress(Exception):
                await self.task
            self.task = None


class _Data(DetectorDataLogic):
    def __init__(self, memory: _CameraMemory, path_provider: PathProvider) -> None:
        self.memory = memory
        self.path_provider = path_provider
        self.datakey_suffix = f"_{memory.keys.image}"

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        info = self.path_provider(datakey_name)
        name = datakey_name.removesuffix(self.datakey_suffix)
        path = Path(str(info.directory_path)) / f"{info.filename}.h5"
        dtypes = self.memory.open(path, name)
        rows, cols = self.memory.backend.settings().frame_shape
        image = StreamResourceInfo(
            data_key=datakey_name,
            shape=(int(rows), int(cols)),
            chunk_shape=(1, int(rows), int(cols)),
            dtype_numpy=np.dtype(np.uint16).str,
            parameters={"dataset": AD_FRAMES_DATASET},
        )
        columns = [
            StreamResourceInfo(
                data_key=key,
                shape=(),
                chunk_shape=(16384,),
                dtype_numpy=dtype,
                parameters={"dataset": f"{AD_ATTRIBUTES_GROUP}/{key}"},
            )
            for key, dtype in dtypes.items()
        ]
        return StreamResourceDataProvider(
            uri=f"{info.directory_uri}{info.filename}.h5",
            resources=[image, *columns],
            mimetype=HDF5_MIMETYPE,
            collections_written_signal=self.memory.frames_written,
        )

    async def stop(self) -> None:
        self.memory.close()

    def get_hinted_fields(self, datakey_name: str) -> Sequence[str]:
        return [datakey_name]


class SimBurstDetector(StandardDetector):
    """A burst camera (``camera``: phantom or shimadzu) whose backend records the burst.

    ``path_provider`` says where each burst's file goes (ophyd-async's, e.g.
    ``StaticPathProvider(UUIDFilenameProvider(), directory)``). ``keys`` names the
    frames and per-frame values as for ``EpicsBurstDetector``.
    """

    def __init__(
        self,
        backend: CameraBackend,
        path_provider: PathProvider,
        *,
        camera: Camera,
        name: str = "",
        keys: CameraKeys | None = None,
    ) -> None:
        memory = _CameraMemory(backend, camera, burst_keys(camera, keys))
        self.camera_model, _ = soft_signal_r_and_setter(str, initial_value=CAMERA_MODELS[camera])
        self.burst_frames, _ = soft_signal_r_and_setter(
            int, initial_value=int(backend.settings().n_frames)
        )
        self.add_detector_logics(_Trigger(memory), _Acquire(memory), _Data(memory, path_provider))
        self.add_config_signals(self.camera_model)
        super().__init__(name=name)
