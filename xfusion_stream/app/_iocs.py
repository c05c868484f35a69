"""The soft camera IOCs (``xfusion ioc``) as a child process on loopback, on free ports.

Why here: starting servers is wiring, so it lives in ``app`` (the demo and the tests
over Channel Access share it); the IOCs' behaviour stays in ``simulation``. The CA
client reads its environment once per process, at its first connection: whoever
connects to these IOCs sets ``SoftIOCs.env`` in ``os.environ`` before that (the demo
does, for its own process; the tests do, once per session).
"""

from __future__ import annotations

import os
import random
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core import XFusionError
from ..simulation import SceneConfig

__all__ = ["SoftIOCs", "ca_loopback_env", "free_port", "soft_iocs"]

#: the line ``xfusion ioc`` writes on stderr once its PVs are served
READY = "xfusion ioc: serving"


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (CA uses both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise XFusionError("no free port for Channel Access on 127.0.0.1")


def ca_loopback_env() -> dict[str, str]:
    """Channel Access on loopback only, with a free server and repeater port each."""
    server = free_port()
    repeater = free_port()
    while repeater == server:
        repeater = free_port()
    return {
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_ADDR_LIST": "127.0.0.1",
        "EPICS_CA_SERVER_PORT": str(server),
        "EPICS_CA_REPEATER_PORT": str(repeater),
    }


@dataclass(frozen=True)
class SoftIOCs:
    """Running soft IOCs: PV prefixes (phantom, shimadzu, beam), where the HDF5 plugins
    write, the CA environment clients need, and the IOC's stderr log."""

    prefixes: dict[str, str]
    data_dir: Path
    env: dict[str, str]
    log: Path


def _prefixes(tag: str | None) -> dict[str, str]:
    """Random prefixes unless told: a stray IOC elsewhere on the machine is never reached."""
    tag = tag or "".join(random.choices(string.ascii_uppercase, k=8))
    return {"phantom": f"XF{tag}:PH:", "shimadzu": f"XF{tag}:HPV:", "beam": f"XF{tag}:BEAM:"}


@contextmanager
def soft_iocs(
    data_dir: str | os.PathLike[str],
    scene: SceneConfig,
    *,
    env: dict[str, str] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    tag: str | None = None,
    timeout: float = 60.0,
    exit_after: float = 3600.0,
) -> Iterator[SoftIOCs]:
    """Serve both cameras and the beam target over ``scene`` until the block ends.

    ``env``: the CA environment (default: loopback on free ports). ``work_dir`` holds
    the scene file and the IOC's log (default: next to ``data_dir``). The IOC exits on
    its own after ``exit_after`` seconds, should this process die without stopping it.
    """
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir) if work_dir is not None else data.parent
    work.mkdir(parents=True, exist_ok=True)
    env = dict(env) if env is not None else ca_loopback_env()
    prefixes = _prefixes(tag)
    scene_file = work / f"ioc-scene-{prefixes['beam'].split(':')[0]}.json"
    scene_file.write_text(scene.model_dump_json(indent=2))
    log = scene_file.with_name(scene_file.name.replace("scene", "log").replace(".json", ".txt"))
    argv = [
        sys.executable, "-c", "import sys; from xfusion_stream.cli import main; sys.exit(main())",
        "ioc", "--prefix-phantom", prefixes["phantom"], "--prefix-shimadzu",
        prefixes["shimadzu"], "--prefix-beam", prefixes["beam"], "--data-dir", str(data),
        "--scene", str(scene_file), "--exit-after", str(exit_after),
    ]  # fmt: skip
    with open(log, "w") as err:
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **env}
        )
    try:
        _wait_ready(proc, log, timeout)
        yield SoftIOCs(prefixes, data, env, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while READY not in log.read_text():
        if proc.poll() is not None:
            raise XFusionError(f"xfusion ioc exited with {proc.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            raise XFusionError(f"xfusion ioc not serving after {timeout:g} s: {log.read_text()}")
        time.sleep(0.05)
