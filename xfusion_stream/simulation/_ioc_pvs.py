"""The PVs of a simulated areaDetector camera (driver ``cam1:``) and its HDF5 plugin.

Why tables: ophyd-async's ``ADBaseIO`` and ``NDFileHDF5IO`` connect to every PV they
declare, so the soft IOC serves the same names, types and enum choices as ADCore's
templates (``ADBase.template``, ``NDFileHDF5.template``); behaviour is attached to the
few PVs that do something (``_ioc.py``). Writable PVs with a readback (``X`` and
``X_RBV``) mirror each write into the readback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from caproto import (
    ChannelChar,
    ChannelData,
    ChannelDouble,
    ChannelEnum,
    ChannelInteger,
    ChannelString,
    ChannelType,
)

__all__ = ["CAM_PVS", "HDF_PVS", "PVSet", "PVSpec"]

PutHook = Callable[[Any], Awaitable[Any]]

NO_YES = ("No", "Yes")
AD_STATES = (
    "Idle", "Acquire", "Readout", "Correct", "Saving", "Aborting", "Error", "Waiting",
    "Initializing", "Disconnected", "Aborted",
)  # fmt: skip
DATA_TYPES = (
    "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float32",
    "Float64",
)  # fmt: skip
COLOR_MODES = ("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421")
COMPRESSION = ("None", "N-bit", "szip", "zlib", "Blosc", "BSLZ4", "LZ4", "JPEG")
LONG_STRING = 1024


@dataclass(frozen=True)
class PVSpec:
    """One PV (``rbv``: also ``<suffix>_RBV``); kind int, float, str, text, or enum."""

    suffix: str
    kind: str
    value: Any
    choices: tuple[str, ...] = ()
    rbv: bool = False


def _array_pvs() -> list[PVSpec]:
    """NDArrayBase.template: what drivers and plugins both have."""
    return [
        PVSpec("UniqueId_RBV", "int", 0),
        PVSpec("NDAttributesFile", "text", ""),
        *(PVSpec(f"ArraySize{a}_RBV", "int", 0) for a in ("X", "Y", "Z", "0", "1", "2")),
        PVSpec("ColorMode_RBV", "enum", "Mono", COLOR_MODES),
        PVSpec("DataType_RBV", "enum", "UInt16", DATA_TYPES),
        PVSpec("ArrayCounter", "int", 0, rbv=True),
        PVSpec("ADCoreVersion_RBV", "str", "3.12.1"),
        PVSpec("DriverVersion_RBV", "str", "xfusion-sim"),
    ]


CAM_PVS: list[PVSpec] = [
    *_array_pvs(),
    PVSpec("PortName_RBV", "str", "CAM"),
    PVSpec("AcquireTime", "float", 0.0, rbv=True),
    PVSpec("AcquirePeriod", "float", 0.0, rbv=True),
    PVSpec("NumImages", "int", 1, rbv=True),
    PVSpec("ImageMode", "enum", "Multiple", ("Single", "Multiple", "Continuous"), rbv=True),
    PVSpec("DetectorState_RBV", "enum", "Idle", AD_STATES),
    PVSpec("Acquire", "enum", "Done", ("Done", "Acquire"), rbv=True),
    PVSpec("WaitForPlugins", "enum", "No", NO_YES),
    PVSpec("Manufacturer_RBV", "str", ""),
    PVSpec("Model_RBV", "str", ""),
    PVSpec("SerialNumber_RBV", "str", "SIM-0001"),
    PVSpec("SDKVersion_RBV", "str", "scene engine"),
    PVSpec("FirmwareVersion_RBV", "str", "sim"),
    PVSpec("StatusMessage_RBV", "text", "Idle"),
    # burst cameras: how many frames one burst holds in camera memory
    PVSpec("BurstFrames_RBV", "int", 0),
    # simulated fault: the camera drops off its IOC after this many frames of the next
    # burst (0: never); one shot, back to 0 once it happened
    PVSpec("SimDisconnectAfter", "int", 0),
]

HDF_PVS: list[PVSpec] = [
    *_array_pvs(),
    PVSpec("PortName_RBV", "str", "HDF1"),
    PVSpec("ArraySize0", "int", 0),
    PVSpec("ArraySize1", "int", 0),
    PVSpec("NDArrayPort", "str", "CAM", rbv=True),
    PVSpec("EnableCallbacks", "enum", "Enable", ("Disable", "Enable"), rbv=True),
    PVSpec("NDArrayAddress", "int", 0, rbv=True),
    PVSpec("QueueSize", "int", 64, rbv=True),
    PVSpec("FilePath", "text", "", rbv=True),
    PVSpec("FileName", "text", "", rbv=True),
    PVSpec("FilePathExists_RBV", "enum", "No", NO_YES),
    PVSpec("FileTemplate", "text", "%s%s_%3.3d.h5", rbv=True),
    PVSpec("FullFileName_RBV", "text", ""),
    PVSpec("FileNumber", "int", 0),
    PVSpec("AutoIncrement", "enum", "Yes", NO_YES),
    PVSpec("FileWriteMode", "enum", "Stream", ("Single", "Capture", "Stream"), rbv=True),
    PVSpec("NumCapture", "int", 0, rbv=True),
    PVSpec("NumCaptured_RBV", "int", 0),
    PVSpec("Capture", "enum", "Done", ("Done", "Capture"), rbv=True),
    PVSpec("CreateDirectory", "int", 0),
    PVSpec("PositionMode", "enum", "Off", ("Off", "On"), rbv=True),
    PVSpec("Compression", "enum", "None", COMPRESSION, rbv=True),
    PVSpec("NumExtraDims", "int", 0, rbv=True),
    PVSpec("SWMRMode", "enum", "Off", ("Off", "On"), rbv=True),
    PVSpec("FlushNow", "enum", "Done", ("Done", "Flush")),
    PVSpec("XMLFileName", "text", "", rbv=True),
    PVSpec("NumFramesChunks", "int", 0, rbv=True),
    PVSpec("ChunkSizeAuto", "enum", "No", NO_YES, rbv=True),
    PVSpec("LazyOpen", "enum", "No", NO_YES, rbv=True),
    PVSpec("WriteStatus", "enum", "Write OK", ("Write OK", "Write error")),
    PVSpec("WriteMessage", "text", ""),
]


class _Hooked:
    """A channel whose client writes pass through ``hook`` (None: stored as sent)."""

    hook: PutHook | None = None

    async def verify_value(self, data: Any) -> Any:
        value = await super().verify_value(data)  # type: ignore[misc]
        return value if self.hook is None else await self.hook(value)


class _TextChannel(ChannelChar):
    """A long string (char waveform) that also takes an empty string: clients write
    ``""`` as a lone null byte, which caproto 1.3 fails to convert."""

    async def write_from_dbr(self, data: Any, data_type: Any, metadata: Any, **kwargs: Any) -> Any:
        if data_type == ChannelType.CHAR and not np.asarray(data).tobytes().rstrip(b"\0"):
            return await self.write("", flags=kwargs.get("flags", 0))
        return await super().write_from_dbr(data, data_type, metadata, **kwargs)


def _hooked(cls: type[ChannelData]) -> type[ChannelData]:
    return type(f"Hooked{cls.__name__}", (_Hooked, cls), {})


_INT, _FLOAT, _STR = _hooked(ChannelInteger), _hooked(ChannelDouble), _hooked(ChannelString)
_TEXT, _ENUM = _hooked(_TextChannel), _hooked(ChannelEnum)


def _channel(spec: PVSpec, value: Any) -> ChannelData:
    if spec.kind == "int":
        return _INT(value=int(value))
    if spec.kind == "float":
        return _FLOAT(value=float(value), precision=9)
    if spec.kind == "str":
        return _STR(value=str(value))
    if spec.kind == "text":
        return _TEXT(value=str(value), max_length=LONG_STRING, string_encoding="latin-1")
    if spec.kind == "enum":
        return _ENUM(value=str(value), enum_strings=spec.choices)
    raise ValueError(f"unknown PV kind {spec.kind!r}")


class PVSet:
    """The channels of one prefix, by suffix; ``put`` is a server-side write (no hooks).

    A client write to a PV with a readback updates the readback after its hook ran.
    ``initial`` overrides the tables' start values by suffix.
    """

    def __init__(
        self, prefix: str, specs: list[PVSpec], initial: dict[str, Any] | None = None
    ) -> None:
        self.prefix = prefix
        self.channels: dict[str, ChannelData] = {}
        initial = initial or {}
        for spec in specs:
            value = initial.get(spec.suffix, spec.value)
            self.channels[spec.suffix] = _channel(spec, value)
            if spec.rbv:
                self.channels[f"{spec.suffix}_RBV"] = _channel(spec, value)
                self.on_put(spec.suffix, None)

    @property
    def pvdb(self) -> dict[str, ChannelData]:
        return {self.prefix + suffix: ch for suffix, ch in self.channels.items()}

    def get(self, suffix: str) -> Any:
        value = self.channels[suffix].value
        return value.rstrip("\0") if isinstance(value, str) else value

    def flag(self, suffix: str) -> bool:
        """A two-state enum PV read as a bool (its second state is True)."""
        channel = self.channels[suffix]
        return channel.value == channel.enum_strings[1]

    async def put(self, suffix: str, value: Any) -> None:
        """Write ``suffix`` (and its readback, if it has one) from the server side."""
        for name in (suffix, f"{suffix}_RBV"):
            channel = self.channels.get(name)
            if channel is not None:
                await channel.write(_native(channel, value), verify_value=False)

    def on_put(self, suffix: str, hook: PutHook | None) -> None:
        """Run ``hook(value)`` on client writes to ``suffix``; what it returns is stored
        (and mirrored into the readback). The put completes when the hook returns."""
        channel = self.channels[suffix]
        readback = self.channels.get(f"{suffix}_RBV")

        async def mirrored(value: Any) -> Any:
            value = value.rstrip("\0") if isinstance(value, str) else value
            stored = value if hook is None else await hook(value)
            if readback is not None:
                await readback.write(_native(readback, stored), verify_value=False)
            return stored

        channel.hook = mirrored  # type: ignore[attr-defined]


def _native(channel: ChannelData, value: Any) -> Any:
    """``value`` as ``channel`` stores it: bools become the enum's state names."""
    if isinstance(channel, ChannelEnum) and isinstance(value, bool):
        return channel.enum_strings[int(value)]
    return value
