"""The live viewer: a small web server that shows a fused run while it is acquired.

What ``xfusion view`` runs. A source (0MQ proxy or Tiled, ``_viewer_sources``) feeds a
bounded ``FrameStore``; a Starlette app (Starlette and uvicorn come with Tiled) serves
the page, its state as JSON and each kept panel as PNG. It binds 127.0.0.1 unless told
otherwise: the page has no login, so putting it on a network is a decision for whoever
starts it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._viewer_page import PAGE
from ._viewer_store import PANELS, FrameStore

__all__ = ["LiveViewer", "ViewerServer", "serve_viewer", "viewer_app"]

logger = logging.getLogger(__name__)


def viewer_app(store: FrameStore) -> Any:
    """The Starlette app: ``/`` the page, ``api/state``, ``api/frame/N``, ``frame/N/P.png``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    no_store = {"Cache-Control": "no-store"}

    def _int(text: str, default: int = 0) -> int | None:
        try:
            return max(int(text), 0) if text != "" else default
        except ValueError:
            return None

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE, headers=no_store)

    async def state(request: Request) -> Response:
        since = _int(request.query_params.get("since", ""))
        if since is None:
            return JSONResponse({"error": "since must be an integer"}, status_code=400)
        return JSONResponse(store.state(since), headers=no_store)

    async def frame_info(request: Request) -> Response:
        number = _int(request.path_params["number"], -1)
        info = None if number is None else store.frame_info(number)
        if info is None:
            return JSONResponse({"error": "frame not kept"}, status_code=404, headers=no_store)
        return JSONResponse(info, headers=no_store)

    async def png(request: Request) -> Response:
        number = _int(request.path_params["number"], -1)
        panel = request.path_params["panel"]
        data = None if number is None or panel not in PANELS else store.png(number, panel)
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/state", state),
            Route("/api/frame/{number}", frame_info),
            Route("/frame/{number}/{panel}.png", png),
        ]
    )


class ViewerServer:
    """uvicorn serving ``viewer_app(store)`` on a thread; ``port=0`` takes a free port.

    ``url`` is where it listens once constructed (the socket is bound here, so the
    port is known and taken before the server thread starts). ``close`` stops it.
    """

    def __init__(self, store: FrameStore, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, int(port)))
        self.host, self.port = host, int(self._socket.getsockname()[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        config = uvicorn.Config(
            viewer_app(store), log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True,
            name="xfusion-view-http",
        )  # fmt: skip
        self._thread.start()

    def wait_started(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return bool(self._server.started)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def __enter__(self) -> ViewerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveViewer:
    """A viewer page fed by one source, running on threads until ``close``.

    ``make_source(feed)`` starts the source feeding ``feed`` (a ``ViewerFeed``) and
    returns it (an object with ``ready`` and ``close``); the page is served and the
    source ready when the constructor returns (``OSError`` otherwise). ``data_roots``:
    folders the frames of runs stored as HDF5 may be read from.
    """

    def __init__(
        self,
        make_source: Callable[[Any], Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_frames: int = 256,
        data_roots: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        from ._viewer_sources import ViewerFeed

        self.store = FrameStore(max_frames=max_frames)
        self.feed = ViewerFeed(self.store, data_roots=data_roots)
        self.server = ViewerServer(self.store, host, port)
        self.source: Any = None
        try:
            self.source = make_source(self.feed)
            if not self.server.wait_started() or not self.source.ready.wait(30):
                raise OSError(f"the viewer did not start on {self.server.url}")
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return self.server.url

    def summary(self) -> dict[str, Any]:
        return {
            "url": self.server.url,
            "runs": self.store.runs_seen,
            "frames": self.store.count,
            "documents": self.feed.accepted,
            "skipped_documents": self.feed.rejected + int(getattr(self.source, "rejected", 0)),
        }

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None
        self.server.close()


def serve_viewer(
    make_source: Callable[[Any], Any],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_frames: int = 256,
    timeout: float | None = None,
    ready_file: str | os.PathLike | None = None,
    announce: Callable[[str], None] = lambda text: None,
    data_roots: Sequence[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """Serve a ``LiveViewer`` until SIGINT/SIGTERM (or ``timeout`` s); returns a summary.

    ``announce`` hears the URL once the page is served and the source is ready;
    ``ready_file`` then receives it too.
    """
    stop = threading.Event()
    previous = _on_signals(stop)
    t0 = time.monotonic()
    try:
        viewer = LiveViewer(
            make_source, host=host, port=port, max_frames=max_frames, data_roots=data_roots
        )
        try:
            announce(viewer.url)
            if ready_file is not None:
                tmp = Path(str(ready_file) + ".partial")
                tmp.write_text(viewer.url + "\n")
                os.replace(tmp, ready_file)
            stop.wait(timeout)
        finally:
            viewer.close()
    finally:
        _restore_signals(previous)
    return {**viewer.summary(), "seconds": round(time.monotonic() - t0, 3)}


def _on_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGINT/SIGTERM end the viewer cleanly (main thread only; elsewhere no handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
