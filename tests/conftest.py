"""Shared fixtures: a real embedded Tiled server, a RunEngine per test, no leaked threads
(nor RunEngines left running).

``tiled_server`` is one SimpleTiledServer for the whole session (it takes seconds to
start on a small machine); it may read any file under pytest's base temp folder, so
HDF5 files a test writes to its ``tmp_path`` are servable. Look runs up by uid.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

# FusionSession sets one thread budget per process (every core to torch by default);
# the suite shares two cores with its own subprocesses, so one torch thread here.
os.environ.setdefault("XFUSION_TORCH_THREADS", "1")


@pytest.fixture(autouse=True)
def xfusion_home(tmp_path_factory, monkeypatch):
    """Commands that update xfusion.conf never touch the real home folder in tests."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XFUSION_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiled_server(tmp_path_factory):
    """``EmbeddedTiled`` on 127.0.0.1 (API key, SQLite catalog, json-seq exporter)."""
    from xfusion_stream.publishing import EmbeddedTiled

    base = tmp_path_factory.getbasetemp()
    server = EmbeddedTiled(base / "tiled-catalog", readable_storage=[base])
    yield server
    server.close()


@pytest.fixture
def tiled_client(tiled_server):
    return tiled_server.client()


@pytest.fixture
def RE(request):
    """A RunEngine on its own event loop; the loop is stopped and closed afterwards."""
    from xfusion_stream.app import close_run_engine, new_run_engine

    engine = new_run_engine()
    request.addfinalizer(lambda: close_run_engine(engine))
    return engine


# Worker pools that grow on demand and never hang the exit: the session Tiled server's
# anyio.to_thread workers (stop with its loop) and concurrent.futures pools such as
# dask's default scheduler inside the server (shut down by concurrent.futures at exit).
_POOL_THREAD_PREFIXES = ("AnyIO worker thread", "ThreadPoolExecutor-")


# a RunEngine's loop thread is a daemon, but one left running means a RunEngine nobody
# closed (``close_run_engine``): counted as a leak too
_RUN_ENGINE_THREAD = "bluesky-run-engine"


def _leaked(before: set[threading.Thread]) -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t not in before
        and t.is_alive()
        and (not t.daemon or t.name == _RUN_ENGINE_THREAD)
        and not t.name.startswith(_POOL_THREAD_PREFIXES)
    ]


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves a non-daemon thread (it would hang the exit) or a
    RunEngine's loop thread running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = _leaked(before)
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if leaked:
        pytest.fail(f"test leaked non-daemon threads: {[t.name for t in leaked]}")
