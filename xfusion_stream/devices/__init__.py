"""Devices room: the burst cameras (ophyd, with simulated, recorded, virtual and watched
backends; ophyd-async fly-scanned detectors, simulated and EPICS areaDetector)."""

__all__: list[str] = []

# burst cameras (ophyd devices) and their backends
from ._burst_camera import BurstCamera, SoftSetting  # noqa: E402
from ._camera_backend import (  # noqa: E402
    CameraBackend,
    CameraFrame,
    CameraSettings,
)
from ._frame_file import FRAME_DATASET, HDF5_MIMETYPE  # noqa: E402
from ._phantom import PHANTOM_MODEL, PhantomTMX7510  # noqa: E402
from ._recorded_backend import RecordedCaseBackend  # noqa: E402
from ._shimadzu import SHIMADZU_FRAME_COUNTS, SHIMADZU_MODEL, ShimadzuHPVX2  # noqa: E402
from ._sim_backend import SimBeam, SimPhantomBackend, SimShimadzuBackend  # noqa: E402

__all__ += [
    "BurstCamera",
    "CameraBackend",
    "CameraFrame",
    "CameraSettings",
    "FRAME_DATASET",
    "HDF5_MIMETYPE",
    "PHANTOM_MODEL",
    "PhantomTMX7510",
    "RecordedCaseBackend",
    "SHIMADZU_FRAME_COUNTS",
    "SHIMADZU_MODEL",
    "ShimadzuHPVX2",
    "SimBeam",
    "SimPhantomBackend",
    "SimShimadzuBackend",
    "SoftSetting",
]

# virtual experiments: two pretend cameras over one single-camera sequence
from ._virtual_backend import (  # noqa: E402
    DEFAULT_PHOTONS,
    VirtualCaseBackend,
    VirtualOptions,
    VirtualSequence,
)

__all__ += ["DEFAULT_PHOTONS", "VirtualCaseBackend", "VirtualOptions", "VirtualSequence"]

# the camera pairs plans take, built for the common sources
from ._camera_pairs import camera_pair, recorded_cameras, virtual_cameras  # noqa: E402

__all__ += ["camera_pair", "recorded_cameras", "virtual_cameras"]

# ophyd-async burst detectors (fly-scanned bursts): simulated and EPICS areaDetector
from ._ad_detector import (  # noqa: E402
    CAMERA_MODELS,
    FRAME_ATTRIBUTES,
    IMAGE_SUFFIX,
    BurstDetector,
    burst_keys,
    burst_ndattributes,
    burst_trigger_info,
    frame_value_keys,
)
from ._ad_epics import BurstDriverIO, EpicsBurstDetector  # noqa: E402
from ._ad_sim import SimBurstDetector  # noqa: E402

__all__ += [
    "BurstDetector",
    "BurstDriverIO",
    "CAMERA_MODELS",
    "EpicsBurstDetector",
    "FRAME_ATTRIBUTES",
    "IMAGE_SUFFIX",
    "SimBurstDetector",
    "burst_keys",
    "burst_ndattributes",
    "burst_trigger_info",
    "frame_value_keys",
]

# a case folder read while the vendor software is still writing it
from ._watch_backend import (  # noqa: E402
    BurstIncompleteError,
    FolderWatch,
    WatchedFolderBackend,
    WatchProgress,
    watched_cameras,
)

__all__ += [
    "BurstIncompleteError",
    "FolderWatch",
    "WatchProgress",
    "WatchedFolderBackend",
    "watched_cameras",
]
