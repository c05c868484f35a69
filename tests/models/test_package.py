"""The public surface: every exported name resolves, and importing stays light."""

from __future__ import annotations

import subprocess
import sys

import xfusion_models


def test_every_public_name_resolves():
    for name in xfusion_models.__all__:
        assert getattr(xfusion_models, name) is not None, name
    assert issubclass(xfusion_models.CheckpointError, ValueError)
    assert set(xfusion_models.PRESETS) == {"edvr_stf", "swin_xvr"}


def test_import_does_not_pull_in_torch_or_the_plugin():
    code = (
        "import sys, xfusion_models; "
        "heavy = [m for m in ('torch', 'xfusion_stream', 'bluesky', 'tiled') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
