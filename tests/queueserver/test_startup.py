"""The startup script under ``qserver-list-plans-devices``: it exits (even with an embedded
Tiled server running), and every plan it lists passes the queueserver's validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
PROFILE = """
name: qs-embedded
devices:
  sim: {seed: 5, shimadzu_shape: [16, 24], n_shimadzu: 24}
data_dir: DATA
tiled: {uri: embedded, batch_size: 8}
"""


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> Path:
    """existing_plans_and_devices.yaml as the queueserver's own tool writes it."""
    tmp = tmp_path_factory.mktemp("qs-list")
    profile = tmp / "p.yaml"
    profile.write_text(PROFILE.replace("DATA", str(tmp / "data")))
    env = {**os.environ, "XFUSION_PROFILE": str(profile), "XFUSION_NO_FUSION": "1"}
    tool = Path(sys.executable).with_name("qserver-list-plans-devices")
    done = subprocess.run(
        [str(tool), "--startup-script", str(PROFILES / "startup_sim.py")],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # it used to wait forever for the embedded server's threads
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "Tiled: http://127.0.0.1:" in done.stdout  # the embedded server did run
    return tmp / "existing_plans_and_devices.yaml"


def _allowed(listed: Path) -> tuple[dict, dict]:
    from bluesky_queueserver.manager.profile_ops import load_allowed_plans_and_devices

    plans, devices = load_allowed_plans_and_devices(
        path_existing_plans_and_devices=str(listed),
        path_user_group_permissions=str(PROFILES / "queueserver" / "user_group_permissions.yaml"),
    )
    return plans["primary"], devices["primary"]


@pytest.mark.parametrize(
    "item",
    [
        {"name": "dual_camera_burst", "args": ["phantom", "shimadzu"]},
        {
            "name": "dual_camera_burst",
            "args": ["phantom", "shimadzu"],
            "kwargs": {"md": {"sample": "Cu"}, "interleave": False},
        },
        {"name": "grid_calibration", "args": ["phantom", "shimadzu"], "kwargs": {"n_frames": 8}},
        {"name": "recorded_experiment", "args": ["phantom", "shimadzu"]},
    ],
)
def test_the_listed_plans_validate(listed, item):
    from bluesky_queueserver.manager.profile_ops import validate_plan

    plans, devices = _allowed(listed)
    ok, msg = validate_plan(item, allowed_plans=plans, allowed_devices=devices)
    assert ok, msg


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ({"name": "dual_camera_burst", "args": ["phantm", "shimadzu"]}, "phantm"),
        ({"name": "grid_calibration", "args": ["phantom", "shimadzu"], "kwargs": {"n_frames": "a"}}, "n_frames"),
        ({"name": "dual_camera_burst", "args": ["phantom", "shimadzu"], "kwargs": {"md": 3}}, "md"),
    ],
)  # fmt: skip
def test_bad_items_are_refused_when_queued(listed, item, why):
    from bluesky_queueserver.manager.profile_ops import validate_plan

    plans, devices = _allowed(listed)
    ok, msg = validate_plan(item, allowed_plans=plans, allowed_devices=devices)
    assert not ok and why in msg


def test_cameras_are_offered_by_name(listed):
    import yaml

    described = yaml.safe_load(listed.read_text())
    assert set(described["existing_devices"]) == {"phantom", "shimadzu"}
    (phantom, *_) = described["existing_plans"]["dual_camera_burst"]["parameters"]
    # a GUI gets the detectors of the namespace to choose from
    assert phantom["annotation"] == {
        "type": "Camera",
        "devices": {"Camera": ["phantom", "shimadzu"]},
    }
