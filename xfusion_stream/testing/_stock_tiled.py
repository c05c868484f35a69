"""A stock facility Tiled server for tests and benchmarks: the shipped
``profiles/tiled/config.yml`` served by ``tiled serve config`` in a process of its own,
its folders and API key given through the variables the file names."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StockTiled", "stock_tiled"]


@dataclass(frozen=True)
class StockTiled:
    base: str  # http://127.0.0.1:PORT
    api_key: str
    cameras: Path  # the /raw catalog's readable storage
    fused: Path  # the /derived catalog's readable storage

    @property
    def raw_uri(self) -> str:
        return f"{self.base}/api/v1/metadata/raw"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def stock_tiled(
    folder: Path, *, cameras: Path | None = None, timeout: float = 90.0
) -> Iterator[StockTiled]:
    """The server on a free loopback port, its catalogs and log under ``folder``;
    ``cameras`` (default ``folder/cameras``) is where raw HDF5 files may be read."""
    import httpx
    import xfusion_profiles

    config = Path(xfusion_profiles.__file__).parent / "tiled" / "config.yml"
    cameras = cameras or folder / "cameras"
    fused = folder / "fused"
    for path in (folder / "tiled", cameras, fused):
        path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    env = dict(os.environ, XFUSION_TILED_DIR=str(folder / "tiled"), XFUSION_TILED_API_KEY=key)
    env |= {"XFUSION_CAMERA_DATA": str(cameras), "XFUSION_FUSED_DATA": str(fused)}
    port = _free_port()
    exe = Path(sys.executable).parent / "tiled"
    with (folder / "tiled.log").open("w") as log:
        proc = subprocess.Popen(
            [str(exe), "serve", "config", str(config), "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"tiled serve config did not come up: {(folder / 'tiled.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{base}/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield StockTiled(base, key, cameras, fused)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
