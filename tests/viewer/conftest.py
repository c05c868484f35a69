"""Viewer room fixtures: the 0MQ room's proxy, small scene, tiny model and calibration.

They are the 0MQ room's own fixtures (``tests/zmq/conftest.py``), loaded by path and
re-exported here rather than copied, so both rooms start the proxy the same way.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "xfusion_tests_zmq_conftest", Path(__file__).parents[1] / "zmq" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_zmq_room = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_zmq_room)

proxy = _zmq_room.proxy
child_env = _zmq_room.child_env
one_torch_thread = _zmq_room.one_torch_thread
tiny_checkpoint = _zmq_room.tiny_checkpoint
calibration_file = _zmq_room.calibration_file
expected_windows = _zmq_room.expected_windows
make_cameras = _zmq_room.make_cameras
