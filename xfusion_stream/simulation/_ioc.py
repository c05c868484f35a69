"""Soft IOCs (caproto) that behave like the two burst cameras with their HDF5 plugins.

Why: the EPICS detectors (``devices``) must be driven over real Channel Access in CI,
with no beamline. Each ``CameraIOC`` serves an areaDetector driver (``<prefix>cam1:``)
and HDF5 file plugin (``<prefix>HDF1:``): ``Acquire`` records one burst rendered by the
scene engine and reads it out frame by frame into the plugin, which (while
``Capture`` is on) writes the areaDetector HDF5 layout with one NDAttribute dataset
per attribute the driver's ``NDAttributesFile`` names, then closes the file before the
camera reports Idle. The IOC, not the client, writes the file; rendering and writing
run in worker threads so the IOC keeps answering. Errors land in
``StatusMessage_RBV``/``DetectorState_RBV`` (camera) and ``WriteStatus``/
``WriteMessage`` (plugin), and fail the ``Acquire`` put. ``SimDisconnectAfter`` makes
the camera drop off its IOC mid-burst, as a camera whose link fails does: the plugin
closes the file with the frames read out so far, the driver reports
``Disconnected`` with the reason, and the IOC stays up. A ``BeamTargetIOC`` serves
what sits in the beam (``<prefix>Target``: sample or the G400 grid), as a stage that
moves the calibration grid in would; moving it switches both cameras' scene.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from ._ad_file import ADFileWriter
from ._ioc_camera import FRAME_PARAMS, SceneCamera
from ._ioc_pvs import CAM_PVS, HDF_PVS, PVSet, PVSpec
from ._scene import Scene, SceneConfig, grid_scene_config

__all__ = [
    "BEAM_TARGETS",
    "BeamTargetIOC",
    "CameraDisconnected",
    "CameraIOC",
    "camera_iocs",
    "grid_scene_config",
    "parse_ndattributes",
]

#: what the simulated beam can hold: the sample, or the G400 grid for calibration
BEAM_TARGETS = ("sample", "grid")

#: NDAttribute datatypes a PARAM attribute may have, as numpy dtypes
_DATATYPES = {"INT": "<i4", "INT64": "<i8", "DOUBLE": "<f8"}


def parse_ndattributes(text: str) -> dict[str, tuple[str, str]]:
    """NDAttribute name -> (driver parameter, numpy dtype), from the attributes XML.

    Only PARAM attributes naming a parameter the camera stamps (``FRAME_PARAMS``) are
    served; anything else is refused with a message, as a driver would log it.
    """
    if "<Attributes>" not in text:
        return {}
    attributes: dict[str, tuple[str, str]] = {}
    for element in ElementTree.fromstring(text):
        name = element.attrib.get("name", "")
        kind = element.attrib.get("type", "EPICS_PV")
        source = element.attrib.get("source", "")
        if kind != "PARAM" or source not in FRAME_PARAMS:
            raise ValueError(
                f"NDAttribute {name!r}: only PARAM attributes of {list(FRAME_PARAMS)} "
                f"are served here, got {kind} {source!r}"
            )
        datatype = element.attrib.get("datatype", "INT")
        if datatype not in _DATATYPES:
            raise ValueError(f"NDAttribute {name!r}: datatype {datatype} is not numeric")
        attributes[name] = (source, _DATATYPES[datatype])
    return attributes


class CameraDisconnected(Exception):
    """The simulated camera dropped off its IOC in the middle of a burst."""


def _file_name(template: str, path: str, name: str, number: int) -> str:
    """areaDetector's ``FileTemplate`` (C printf) with its path, name and number."""
    try:
        return template % (path, name, number)
    except TypeError:
        return template % (path, name)


class CameraIOC:
    """The PVs and behaviour of one camera (driver + HDF5 plugin) under ``prefix``.

    ``data_dir`` is the only directory tree the plugin writes in (``FilePathExists_RBV``
    is No elsewhere), and its starting ``FilePath``.
    """

    def __init__(self, prefix: str, camera: SceneCamera, data_dir: str | os.PathLike[str]) -> None:
        self.prefix = prefix
        self.camera = camera
        self.data_dir = Path(data_dir).resolve()
        rows, cols = camera.frame_shape
        self.cam = PVSet(
            f"{prefix}cam1:",
            CAM_PVS,
            {
                "Manufacturer_RBV": camera.identity.manufacturer,
                "Model_RBV": camera.identity.model,
                "ArraySizeX_RBV": cols,
                "ArraySizeY_RBV": rows,
                "NumImages": camera.n_frames,
                "BurstFrames_RBV": camera.n_frames,
                "AcquirePeriod": camera.frame_period_s,
                "AcquireTime": camera.frame_period_s,
            },
        )
        start = f"{self.data_dir}/"
        self.hdf = PVSet(
            f"{prefix}HDF1:",
            HDF_PVS,
            {"FilePath": start, "FilePathExists_RBV": "Yes" if self._inside(start) else "No"},
        )
        self._capturing: asyncio.Event | None = None  # set when capture should end
        self._writer: ADFileWriter | None = None
        self._stop = asyncio.Event()
        self._acquiring = False
        self.cam.on_put("Acquire", self._acquire)
        self.hdf.on_put("Capture", self._capture)
        self.hdf.on_put("FilePath", self._file_path)
        self.hdf.on_put("FlushNow", self._flush)

    @property
    def pvdb(self) -> dict[str, Any]:
        return {**self.cam.pvdb, **self.hdf.pvdb}

    @property
    def acquiring(self) -> bool:
        return self._acquiring

    async def view(self, scene: Scene) -> None:
        """Look at ``scene`` from the next burst on; the burst length follows it."""
        self.camera.view(scene)
        await self.cam.put("BurstFrames_RBV", self.camera.n_frames)
        if int(self.cam.get("NumImages")) > self.camera.n_frames:
            await self.cam.put("NumImages", self.camera.n_frames)

    # ---- the camera ------------------------------------------------------------------
    async def _acquire(self, value: str) -> str:
        """``Acquire`` = 1 records and reads out one burst; the put completes when the
        file is closed and the camera is Idle again. ``Acquire`` = 0 stops a burst."""
        if value != "Acquire":
            self._stop.set()
            return "Done"
        if self._acquiring:
            return "Acquire"
        self._acquiring = True
        self._stop = asyncio.Event()
        # the state leaves whatever the last burst ended in before the readback says armed
        await self.cam.put("DetectorState_RBV", "Acquire")
        await self.cam.put("Acquire_RBV", True)
        try:
            n = await self._burst()
            ended = "Aborted" if self._stop.is_set() else "Idle"
            await self.cam.put("DetectorState_RBV", ended)
            await self.cam.put("StatusMessage_RBV", f"{ended.replace('Idle', 'Done')}: {n} frames")
        except CameraDisconnected as lost:  # the put completes; the state says why
            await self.cam.put("DetectorState_RBV", "Disconnected")
            await self.cam.put("StatusMessage_RBV", str(lost))
        except Exception as exc:
            await self._error(f"burst failed: {exc}")
            raise
        finally:  # the readback drops only once the state says how the burst ended
            self._acquiring = False
            await self.cam.put("Acquire_RBV", False)
        return "Done"

    def _frames_to_take(self) -> int:
        mode = self.cam.get("ImageMode")
        wanted = {"Single": 1, "Continuous": self.camera.n_frames}.get(
            mode, int(self.cam.get("NumImages"))
        )
        if not 1 <= wanted <= self.camera.n_frames:
            raise ValueError(f"NumImages {wanted}: a burst holds 1..{self.camera.n_frames} frames")
        return wanted

    async def _burst(self) -> int:
        """Record (instant: the scene is the camera memory) and read out frame by frame."""
        n = self._frames_to_take()
        drop_after = int(self.cam.get("SimDisconnectAfter"))
        if drop_after:
            await self.cam.put("SimDisconnectAfter", 0)  # one shot
        attributes = parse_ndattributes(self.cam.get("NDAttributesFile"))
        await self.cam.put("DetectorState_RBV", "Readout")
        await self.cam.put("StatusMessage_RBV", f"Reading out {n} frames")
        taken = 0
        try:
            for i in range(n):
                if self._stop.is_set():
                    break
                image, params = await asyncio.to_thread(self.camera.frame, i)
                taken += 1
                counter = int(self.cam.get("ArrayCounter_RBV")) + 1
                await self.cam.put("ArrayCounter", counter)
                await self.cam.put("UniqueId_RBV", counter)
                values = {name: params[param] for name, (param, _) in attributes.items()}
                await self._plugin_frame(image, values, attributes)
                if taken == drop_after < n:
                    raise CameraDisconnected(
                        f"camera disconnected after {taken} of {n} frames "
                        f"({self.camera.identity.model})"
                    )
        finally:
            await self._end_of_burst()
        return taken

    async def _error(self, message: str) -> None:
        await self.cam.put("DetectorState_RBV", "Error")
        await self.cam.put("StatusMessage_RBV", message[:1000])

    # ---- the HDF5 plugin -------------------------------------------------------------
    async def _plugin_frame(
        self, image: Any, values: dict[str, int], attributes: dict[str, tuple[str, str]]
    ) -> None:
        """One NDArray reaches the plugin: written while capturing, else dropped."""
        hdf = self.hdf
        rows, cols = image.shape
        await hdf.put("ArraySize0", cols)
        await hdf.put("ArraySize1", rows)
        await hdf.put("ArrayCounter", int(hdf.get("ArrayCounter_RBV")) + 1)
        if hdf.get("EnableCallbacks") != "Enable" or self._capturing is None:
            return
        if self._writer is None:
            self._writer = await self._open_file(attributes)
        try:
            written = await asyncio.to_thread(self._writer.append, image, values)
        except Exception as exc:
            await hdf.put("WriteStatus", "Write error")
            await hdf.put("WriteMessage", str(exc)[:1000])
            raise
        await hdf.put("NumCaptured_RBV", written)
        wanted = int(hdf.get("NumCapture"))
        if wanted and written >= wanted:
            await self._finish_capture()

    async def _open_file(self, attributes: dict[str, tuple[str, str]]) -> ADFileWriter:
        hdf = self.hdf
        path = hdf.get("FilePath")
        if not self._inside(path):
            raise ValueError(f"FilePath {path!r} does not exist or is outside {self.data_dir}")
        number = int(hdf.get("FileNumber"))
        full = _file_name(hdf.get("FileTemplate"), path, hdf.get("FileName"), number)
        if Path(full).exists():
            raise FileExistsError(f"{full} exists: a burst never overwrites a file")
        if hdf.flag("AutoIncrement"):
            await hdf.put("FileNumber", number + 1)
        await hdf.put("FullFileName_RBV", full)
        await hdf.put("WriteStatus", "Write OK")
        await hdf.put("WriteMessage", "")
        return ADFileWriter(full, {name: dtype for name, (_, dtype) in attributes.items()})

    async def _end_of_burst(self) -> None:
        """The camera's read-out is over: the file is closed, complete on disk."""
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)

    async def _finish_capture(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        self._writer = None
        if self._capturing is not None:
            self._capturing.set()
            self._capturing = None
        await self.hdf.put("Capture_RBV", False)

    async def _capture(self, value: str) -> str:
        """``Capture`` = 1 arms the plugin (the file opens at the first frame); the put
        completes when capture ends: ``Capture`` = 0 or ``NumCapture`` frames written."""
        if value != "Capture":
            await self._finish_capture()
            return "Done"
        if self._capturing is not None:
            return "Capture"
        done = self._capturing = asyncio.Event()
        self._writer = None
        await self.hdf.put("NumCaptured_RBV", 0)
        await self.hdf.put("Capture_RBV", True)
        await done.wait()
        return "Done"

    def _inside(self, path: str) -> bool:
        """Whether ``path`` is an existing directory inside ``data_dir``."""
        real = os.path.realpath(path.rstrip("/") or "/")
        root = str(self.data_dir)
        return os.path.isdir(real) and (real == root or real.startswith(root + os.sep))

    async def _file_path(self, value: str) -> str:
        await self.hdf.put("FilePathExists_RBV", self._inside(value))
        return value

    async def _flush(self, value: str) -> str:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.flush)
        return "Done"


def camera_iocs(
    prefixes: dict[str, str],
    data_dir: str | os.PathLike[str],
    scene: SceneConfig | None = None,
) -> list[CameraIOC]:
    """One ``CameraIOC`` per camera (``{"phantom": prefix, "shimadzu": prefix}``), all
    looking at one scene; serve ``{**ioc.pvdb for each}`` with caproto."""
    shared = Scene(scene or SceneConfig())
    lock = threading.Lock()
    return [
        CameraIOC(prefix, SceneCamera(shared, camera, lock), data_dir)  # type: ignore[arg-type]
        for camera, prefix in prefixes.items()
    ]


class BeamTargetIOC:
    """``<prefix>Target`` (and ``Target_RBV``): what sits in the beam the cameras share.

    Why a PV: on the beamline a stage moves the G400 grid into the beam for spatial
    calibration, and plans move it like any motor. Here a move switches the scene both
    cameras record (the grid scene is built once, at the first move); it is refused
    while a camera is acquiring. ``grid_frames``: frames per camera of the grid burst.
    """

    def __init__(self, prefix: str, cameras: list[CameraIOC], *, grid_frames: int = 32) -> None:
        if not cameras:
            raise ValueError("a beam target needs the cameras that look at it")
        self.cameras = cameras
        sample = cameras[0].camera.scene
        self._scenes: dict[str, Scene] = {"sample": sample}
        self._grid = grid_scene_config(sample.config, grid_frames)
        self.pvs = PVSet(prefix, [PVSpec("Target", "enum", "sample", BEAM_TARGETS, rbv=True)])
        self.pvs.on_put("Target", self._move)

    @property
    def pvdb(self) -> dict[str, Any]:
        return self.pvs.pvdb

    async def _move(self, value: str) -> str:
        if value not in BEAM_TARGETS:
            raise ValueError(f"Target must be one of {BEAM_TARGETS}, got {value!r}")
        busy = [ioc.prefix for ioc in self.cameras if ioc.acquiring]
        if busy:
            raise RuntimeError(f"cannot move {value} into the beam while {busy} acquire")
        if value not in self._scenes:
            self._scenes[value] = await asyncio.to_thread(Scene, self._grid)
        for ioc in self.cameras:
            await ioc.view(self._scenes[value])
        return value
