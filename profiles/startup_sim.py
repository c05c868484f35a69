"""IPython startup for the simulated beamline: ``%run -i path/to/startup_sim.py``.

Builds RE, ``phantom``, ``shimadzu`` and the raw TiledWriter subscription from the
profile named by ``XFUSION_PROFILE`` (default: the shipped ``sim`` profile), and
closes everything at interpreter exit.
"""

import atexit
import os

from xfusion_plans import dual_camera_burst, grid_calibration, recorded_experiment  # noqa: F401

from xfusion_stream.profile import attach_fusion, build_beamline, load_profile

profile = load_profile(os.environ.get("XFUSION_PROFILE", "sim"))
beamline = build_beamline(profile)
atexit.register(beamline.close)

RE = beamline.RE
phantom = beamline.phantom
shimadzu = beamline.shimadzu
tiled = beamline.tiled_client
# live fusion on every raw run, unless XFUSION_NO_FUSION is set
fusion = None if os.environ.get("XFUSION_NO_FUSION") else attach_fusion(beamline)

print(f"xfusion beamline {profile.name!r}: data in {beamline.data_dir}")
print(f"Tiled: {getattr(beamline.tiled_server, 'base_uri', profile.tiled.uri)}")
print("try:  uid, = RE(dual_camera_burst(phantom, shimadzu)); tiled[uid]")
if fusion is not None:
    print("      fused_uid = fusion.wait(); tiled[fused_uid]")
