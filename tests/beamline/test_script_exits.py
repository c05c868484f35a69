"""The README's beamline snippet, run as a plain script, ends by itself (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROFILE = """
name: script-sim
devices:
  phantom: {backend: sim, prefix: "XF:S:PH:"}
  shimadzu: {backend: sim, prefix: "XF:S:HPV:"}
  sim: {seed: 5, shimadzu_shape: [16, 24], n_shimadzu: 24}
data_dir: DATA
tiled: {uri: embedded, batch_size: 8}
"""

SCRIPT = """
import sys
from xfusion_plans import dual_camera_burst
from xfusion_stream.profile import attach_fusion, build_beamline, load_profile

bl = build_beamline(load_profile(sys.argv[1]))
fusion = attach_fusion(bl)
(uid,) = bl.RE(dual_camera_burst(bl.phantom, bl.shimadzu))
print("raw", uid, flush=True)
# no bl.close(): the interpreter must still exit, after fusion has finished
"""


def test_snippet_as_a_script_exits_without_close(tmp_path: Path) -> None:
    """No ``bl.close()`` and no wait: the interpreter still exits, after fusion has
    finished (the fused run's HDF5 file is complete and closed)."""
    import h5py

    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE.replace("DATA", str(tmp_path / "data")))
    script = tmp_path / "snippet.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(profile), "no-wait"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "raw" in done.stdout.split()
    (frames,) = (tmp_path / "data" / "fused").glob("fused_*.h5")
    with h5py.File(frames, "r") as h5:  # closed by the fused run's stop: a plain open works
        assert h5["/entry/data/fused_image"].shape[0] > 0


def test_beamline_is_a_context_manager(tmp_path: Path) -> None:
    from xfusion_stream.profile import build_beamline, load_profile

    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE.replace("DATA", str(tmp_path / "data")))
    with build_beamline(load_profile(profile)) as bl:
        assert not bl.RE.loop.is_closed()
        loop = bl.RE.loop
    assert loop.is_closed()
    bl.close()  # closing again is harmless
