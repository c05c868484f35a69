"""Beamline profiles: ``load_profile`` reads a YAML file, ``build_beamline`` makes it real;
``configure_xfusion`` adds fusion to a profile_collection's own RunEngine and Tiled.

From IPython::

    from xfusion_stream.profile import build_beamline, load_profile
    bl = build_beamline(load_profile("sim"))
    uid, = bl.RE(dual_camera_burst(bl.phantom, bl.shimadzu))
    bl.tiled_client[uid]
"""

from .app import (
    Beamline,
    CameraProfile,
    DevicesProfile,
    LiveFusion,
    Profile,
    SimSceneProfile,
    TiledProfile,
    XFusion,
    ZmqProfile,
    attach_fusion,
    available_profiles,
    build_beamline,
    configure_xfusion,
    load_profile,
    profile_calibration,
)

__all__ = [
    "LiveFusion",
    "attach_fusion",
    "profile_calibration",
    "Beamline",
    "CameraProfile",
    "DevicesProfile",
    "Profile",
    "SimSceneProfile",
    "TiledProfile",
    "ZmqProfile",
    "available_profiles",
    "build_beamline",
    "configure_xfusion",
    "load_profile",
    "XFusion",
]
