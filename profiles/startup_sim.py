"""Startup for the simulated beamline: IPython (``%run -i``) or a bluesky-queueserver.

Builds RE, ``phantom``, ``shimadzu`` and the raw TiledWriter (``configure_xfusion``
underneath) from the profile named by ``XFUSION_PROFILE`` (default: the shipped ``sim``
profile), and attaches live fusion unless ``XFUSION_NO_FUSION`` is set. Everything is
closed at interpreter exit, before Python waits for threads, so
``qserver-list-plans-devices --startup-script`` and an RE Manager's worker exit too.
"""

import os

from xfusion_plans import (  # noqa: F401 - the plans the queueserver lists
    dual_camera_burst,
    grid_calibration,
    recorded_experiment,
)

from xfusion_stream.profile import attach_fusion, build_beamline, load_profile

profile = load_profile(os.environ.get("XFUSION_PROFILE", "sim"))
beamline = build_beamline(profile)

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
