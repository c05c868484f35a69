"""Wiring that starts things: beamline profiles, fusion sessions, the demo, serve, downloads."""

from ._beamline import Beamline, build_beamline
from ._bench import TARGETS as BENCH_TARGETS
from ._bench import BenchSettings, run_benchmarks
from ._configure import XFusion, configure_xfusion
from ._demo import DemoSettings, TruthScorer, run_demo
from ._download import DownloadResult, download, extract_zip
from ._iocs import SoftIOCs, ca_loopback_env, free_port, soft_iocs
from ._listen import FusedRunPrinter, RunSummary, listen_fused, stdout_lines
from ._live_fusion import LiveFusion, attach_fusion, profile_calibration, profile_model_spec
from ._profile_model import (
    CameraProfile,
    DevicesProfile,
    Profile,
    SimSceneProfile,
    TiledProfile,
    ZmqProfile,
    available_profiles,
    load_profile,
)
from ._progress import AcquisitionProgress, FusionProgress, expected_fused_frames
from ._recovery import RecoveryReport, recover_partial_runs, recover_spool
from ._reprocess import (
    ReprocessReport,
    RunSelection,
    calibration_from_tiled,
    epoch_seconds,
    fused_already,
    reprocess,
    select_raw_runs,
)
from ._reprocess_worker import (
    ModelReference,
    ReprocessJob,
    reprocess_run,
    resolve_model,
    stop_task_profiler,
)
from ._run_engine import close_run_engine, new_run_engine
from ._session import FusionSession
from ._viewer import LiveViewer, ViewerServer, serve_viewer, viewer_app
from ._viewer_fields import nearest_phantom, viewer_fields, viewer_schema
from ._viewer_sources import TiledSource, ViewerFeed, ZmqSource
from ._viewer_store import FrameStore
from ._virtual import (
    VirtualDataset,
    VirtualDatasets,
    VirtualSource,
    find_virtual_sources,
    identity_calibration,
    load_virtual_datasets,
    virtual_windows,
)

__all__ = [
    "BENCH_TARGETS",
    "BenchSettings",
    "run_benchmarks",
    "AcquisitionProgress",
    "expected_fused_frames",
    "FusedRunPrinter",
    "FusionProgress",
    "listen_fused",
    "profile_model_spec",
    "RunSummary",
    "stdout_lines",
    "attach_fusion",
    "available_profiles",
    "Beamline",
    "build_beamline",
    "ca_loopback_env",
    "close_run_engine",
    "configure_xfusion",
    "CameraProfile",
    "DemoSettings",
    "DevicesProfile",
    "download",
    "DownloadResult",
    "extract_zip",
    "find_virtual_sources",
    "free_port",
    "FusionSession",
    "identity_calibration",
    "LiveFusion",
    "load_profile",
    "load_virtual_datasets",
    "new_run_engine",
    "Profile",
    "profile_calibration",
    "run_demo",
    "SimSceneProfile",
    "soft_iocs",
    "SoftIOCs",
    "TiledProfile",
    "TruthScorer",
    "virtual_windows",
    "VirtualDataset",
    "VirtualDatasets",
    "VirtualSource",
    "XFusion",
    "ZmqProfile",
    "FrameStore",
    "nearest_phantom",
    "LiveViewer",
    "serve_viewer",
    "TiledSource",
    "viewer_app",
    "viewer_fields",
    "viewer_schema",
    "ViewerFeed",
    "ViewerServer",
    "ZmqSource",
    "RecoveryReport",
    "recover_partial_runs",
    "recover_spool",
    "calibration_from_tiled",
    "epoch_seconds",
    "fused_already",
    "ModelReference",
    "reprocess",
    "reprocess_run",
    "ReprocessJob",
    "ReprocessReport",
    "resolve_model",
    "RunSelection",
    "select_raw_runs",
    "stop_task_profiler",
]
