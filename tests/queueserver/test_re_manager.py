"""A real RE Manager runs dual_camera_burst with live fusion; the fused run lands in Tiled.

The README's "bluesky-queueserver" commands run as written, through bash, from a
scratch folder, with the ports swapped for free loopback ones and the sim profile
swapped for a small one whose Tiled is this test session's server: list the plans and
devices (the startup must let the process exit), start Redis and the RE Manager, open
the environment, queue the plan with ``qserver``, then again with
bluesky-queueserver-api (the README's Python), close, stop. The queue needs Redis:
``.ci/run`` installs ``redis-server`` when it is missing; without it this test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "profiles"  # the README's commands run from the repository root
PROFILE = """
name: qs-test
devices:
  phantom: {backend: sim, prefix: "XF:QS:PH:"}
  shimadzu: {backend: sim, prefix: "XF:QS:HPV:"}
  sim: {seed: 5, shimadzu_shape: [16, 24], n_shimadzu: 24}
data_dir: DATA
tiled: {uri: URI, api_key_env: XF_QS_TILED_KEY, batch_size: 8}
model: MODEL
calibration: truth
"""


def _readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of the README deploy section's profile_collection snippet (its
    first block), then of each block of its bluesky-queueserver part."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Deploy at a beamline") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)
    queueserver = section[section.index("### bluesky-queueserver") :]
    end = queueserver.find("\n### ", 1)
    queueserver = queueserver if end < 0 else queueserver[:end]
    return [blocks[0], *re.findall(r"```(\w*)\n(.*?)```", queueserver, flags=re.S)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Deployment:
    """The README's commands with this test's ports, profile and folders."""

    def __init__(self, tmp_path: Path, tiled_server: Any) -> None:
        self.cwd = tmp_path / "collection"
        self.cwd.mkdir()
        self.ports = {"6379": _free_port(), "60615": _free_port(), "60625": _free_port()}
        self.control = f"tcp://127.0.0.1:{self.ports['60615']}"
        checkpoint = tmp_path / "tiny.pth"
        _tiny_checkpoint(checkpoint)
        profile = tmp_path / "qs.yaml"
        profile.write_text(
            PROFILE.replace("DATA", str(tmp_path / "data"))
            .replace("URI", f"{tiled_server.base_uri}/api/v1")
            .replace("MODEL", str(checkpoint))
        )
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "XFUSION_PROFILE": str(profile),
            "XF_QS_TILED_KEY": tiled_server.api_key,
            "QSERVER_ZMQ_CONTROL_ADDRESS": self.control,
            "OMP_NUM_THREADS": "1",
            "XFUSION_TORCH_THREADS": "1",
        }
        self.servers: list[tuple[str, subprocess.Popen[bytes]]] = []

    def adapt(self, command: str) -> str:
        for port, free in self.ports.items():
            command = command.replace(port, str(free))
        return re.sub(r"(?<![\w/.])profiles/", f"{PROFILES}/", command)

    def run(self, command: str, timeout: float = 120) -> str:
        """A foreground command: must succeed within ``timeout``."""
        done = subprocess.run(
            ["bash", "-c", self.adapt(command)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"{command!r} failed ({done.returncode}):\n{out[-3000:]}"
        return out

    def start(self, command: str) -> subprocess.Popen[bytes]:
        """A server (a line ending in ``&``), logged to a file named after it."""
        name = command.split()[0]
        log = open(self.cwd / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            ["bash", "-c", "exec " + self.adapt(command.rstrip("& "))],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.servers.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.cwd / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        for _, proc in reversed(self.servers):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)


def _tiny_checkpoint(path: Path) -> None:
    import torch

    import xfusion_models as xm

    torch.manual_seed(0)
    xm.save_checkpoint(xm.edvr_stf("tiny"), path)


@pytest.fixture
def deployment(tmp_path, tiled_server) -> Iterator[Deployment]:
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is not installed: the RE Manager keeps its queue in Redis "
            "(.ci/run installs it: apt-get install -y redis-server)"
        )
    dep = Deployment(tmp_path, tiled_server)
    try:
        yield dep
    finally:
        dep.stop_all()


def _wait(what: str, condition: Any, timeout: float, log: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{log}")
        time.sleep(0.2)


def _fused_run(client: Any, raw_uid: str, timeout: float = 60) -> Any:
    """The fused run whose start names ``raw_uid``, once its stop is written."""
    from tiled.queries import Key

    found: list[Any] = []

    def finished() -> bool:
        runs = list(client.search(Key("start.raw_uid") == raw_uid).values())
        found[:] = [r for r in runs if r.metadata.get("stop")]
        return bool(found)

    _wait(f"the fused run of {raw_uid}", finished, timeout)
    return found[0]


def _manager(dep: Deployment) -> Any:
    from bluesky_queueserver_api.zmq import REManagerAPI

    return REManagerAPI(zmq_control_addr=dep.control, timeout_recv=2.0)


def _qserver_lines(dep: Deployment, RM: Any, lines: list[str]) -> str:  # noqa: N803
    """Run ``qserver`` lines, waiting where a person would (for the environment, the
    queue); the last line's output."""
    out = ""
    for line in lines:
        out = dep.run(line, timeout=60)
        if line.startswith("qserver environment open"):
            _wait(
                "the worker environment",
                lambda: (
                    RM.status()["worker_environment_exists"]
                    and RM.status()["manager_state"] == "idle"
                ),
                90,
                dep.log("start-re-manager"),
            )
        elif line.startswith("qserver queue start"):
            RM.wait_for_idle(timeout=120)
    return out


def test_re_manager_queues_a_burst_and_fusion_writes_the_fused_run(deployment, tiled_client):
    from bluesky_queueserver_api import BPlan
    from bluesky_queueserver_api.comm_base import RequestFailedError

    dep = deployment
    (_, collection), (lang1, queue), (lang2, python), (lang3, ending) = _readme_blocks()
    assert (lang1, lang2, lang3) == ("bash", "python", "bash")
    lines = [line.strip() for line in queue.splitlines() if line.strip()]
    t0 = time.monotonic()

    # 1 the startup lists the plans and devices, and the process exits
    assert lines[0].startswith("qserver-list-plans-devices")
    dep.run(lines[0], timeout=120)
    listed = (dep.cwd / "existing_plans_and_devices.yaml").read_text()
    assert "dual_camera_burst:" in listed and "shimadzu:" in listed

    # 2 Redis and the RE Manager, in the background
    assert lines[1].startswith("redis-server") and lines[1].endswith("&")
    dep.start(lines[1])
    _wait("Redis", lambda: _port_open(dep.ports["6379"]), 20, dep.log("redis-server"))
    assert lines[2].startswith("start-re-manager") and lines[2].endswith("&")
    manager = dep.start(lines[2])
    RM = _manager(dep)
    try:

        def answers() -> bool:
            try:
                return RM.status()["manager_state"] == "idle"
            except Exception:
                assert manager.poll() is None, dep.log("start-re-manager")
                return False

        _wait("the RE Manager", answers, 60, dep.log("start-re-manager"))

        # 3 the qserver commands: open the environment, queue the burst, run the queue
        out = _qserver_lines(dep, RM, lines[3:])
        assert "run_uids" in out  # `qserver history get` printed the run
        (item,) = RM.history_get()["items"]
        assert item["result"]["exit_status"] == "completed", item["result"]
        (uid,) = item["result"]["run_uids"]
        fused = _fused_run(tiled_client, uid)
        assert fused.metadata["stop"]["exit_status"] == "success"
        assert fused["fused"]["fused_image"].shape[0] > 0
        assert tiled_client[uid].metadata["start"]["sample"] == "demo"

        # 4 a device name that is not in the startup's namespace is refused when queued
        with pytest.raises(RequestFailedError, match="phantm"):
            RM.item_add(BPlan("dual_camera_burst", "phantm", "shimadzu"))

        # 5 the README's Python: bluesky-queueserver-api queues and runs it again
        namespace: dict[str, Any] = {}
        exec(compile(dep.adapt(python), "README-queueserver-api", "exec"), namespace)
        namespace["RM"].close()
        assert namespace["uid"] != uid
        assert _fused_run(tiled_client, namespace["uid"]).metadata["start"]["raw_uid"]

        # 6 close the environment, stop the manager: every process ends by itself
        for line in (ln.strip() for ln in ending.splitlines() if ln.strip()):
            dep.run(line, timeout=60)
            if line.startswith("qserver environment close"):
                _wait(
                    "the environment to close",
                    lambda: not RM.status()["worker_environment_exists"],
                    60,
                    dep.log("start-re-manager"),
                )
    finally:
        RM.close()
    assert manager.wait(30) == 0, dep.log("start-re-manager")
    assert time.monotonic() - t0 < 240
