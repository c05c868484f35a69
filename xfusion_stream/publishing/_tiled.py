"""An embedded Tiled server for a laptop beamline, and a TiledWriter sized for bursts.

Why embedded: the simulated beamline and the tests need a *real* Tiled server (SQL
catalog, writable storage, HTTP, API key) without anyone running a service. Why the
json-seq exporter: ``run.documents()`` asks the server to export a BlueskyRun as
``application/json-seq``; the server only offers that if the exporter sits in the
serialization registry before the app is built.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xfusion_profiles.tiled_server import serialize_table_storage

from ..core import ConfigError

__all__ = [
    "PROFILE_SCHEME",
    "EmbeddedTiled",
    "connect_tiled",
    "make_tiled_writer",
    "register_json_seq_exporter",
    "resolve_settings_override",
]

#: ``profile:NAME`` names a Tiled client profile (``tiled profile list``) instead of a URI
PROFILE_SCHEME = "profile:"

_JSON_SEQ = "application/json-seq"


def register_json_seq_exporter() -> None:
    """Let Tiled servers built in this process export BlueskyRuns as json-seq.

    Idempotent. Must run before the server's app is built (``EmbeddedTiled`` does it).
    """
    from bluesky_tiled_plugins.exporters import json_seq_exporter
    from tiled.media_type_registration import default_serialization_registry

    default_serialization_registry.register("BlueskyRun", _JSON_SEQ, json_seq_exporter)


_PROCESS_API_KEY = secrets.token_hex(16)


def _file_log_config(config: dict[str, Any]) -> dict[str, Any]:
    """Tiled's logging config for the server's access.log and error.log: no ANSI colour
    codes (they are files) and no API key in a logged URL."""
    config = copy.deepcopy(config)
    for formatter in config["formatters"].values():
        formatter["use_colors"] = False
    config["filters"]["secrets"] = {"()": "xfusion_stream.core.SecretFilter"}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "secrets"]
    return config


class _ResolvedOverrides(dict):  # type: ignore[type-arg]
    """An app's dependency overrides that FastAPI treats as none at request time, as long
    as they hold only the one override they were made with.

    With any override set, FastAPI rebuilds every dependency of every request from
    ``inspect.signature`` (~160 rebuilds a request under Tiled; one-frame runs took
    10-15 % less time without). Tiled sets exactly one, ``get_settings``, whose cached
    result is the very Settings object the process-wide ``get_settings()`` returns, so
    skipping it changes nothing a request sees. Lookups by key (Tiled's start-up and
    shut-down hooks read ``app.dependency_overrides[get_settings]``) still answer, and an
    override added or replaced later makes FastAPI look at them all again.
    """

    def __init__(self, overrides: dict[Any, Any], resolved: Any) -> None:
        super().__init__(overrides)
        self._resolved = (resolved, overrides[resolved])

    def __bool__(self) -> bool:
        key, value = self._resolved
        return not (len(self) == 1 and self.get(key) is value)


def resolve_settings_override(app: Any) -> bool:
    """Spare a built Tiled app FastAPI's per-request dependency rebuild, where that is
    provably the same: the only override is ``get_settings`` and it returns the object
    ``get_settings()`` returns. Call after the app started (its start-up hook resolves
    the override). Returns whether the app was changed."""
    from tiled.server.settings import get_settings

    overrides = app.dependency_overrides
    if isinstance(overrides, _ResolvedOverrides) or set(overrides) != {get_settings}:
        return False
    if overrides[get_settings]() is not get_settings():
        return False
    app.dependency_overrides = _ResolvedOverrides(overrides, get_settings)
    return True


class EmbeddedTiled:
    """SimpleTiledServer on 127.0.0.1 in a thread, with the catalog in ``directory``.

    ``readable_storage`` adds folders the server may read external files from (the
    devices' HDF5 files); ``directory`` itself is always readable and writable. Its
    DuckDB table store serves one request thread at a time
    (``xfusion_profiles.tiled_server.serialize_table_storage``): runs written at once
    lost or doubled rows in the store as Tiled makes it.
    Use as a context manager or call ``close()``: an open server keeps the process
    alive at exit.

    Tiled 0.2 keeps its server settings in one cached object per process, so every
    server in a process answers to the *last* API key set. Hence one key per process:
    the default is a random process-wide key, and a different explicit key while
    another embedded server is open is refused rather than silently breaking it.
    """

    _open_keys: dict[int, str] = {}

    def __init__(
        self,
        directory: str | Path,
        *,
        api_key: str | None = None,
        readable_storage: Sequence[str | Path] = (),
    ) -> None:
        from tiled.server import SimpleTiledServer

        if api_key is not None and not (api_key.isascii() and api_key.isalnum()):
            raise ConfigError(
                "EmbeddedTiled: api_key: must be letters and digits only (Tiled refuses "
                "other characters); e.g. python -c 'import secrets; print(secrets.token_hex(16))'"
            )
        api_key = api_key or _PROCESS_API_KEY
        clash = {k for k in EmbeddedTiled._open_keys.values() if k != api_key}
        if clash:
            raise ConfigError(
                "EmbeddedTiled: api_key: another embedded Tiled server in this process "
                "uses a different key, and Tiled shares one key per process; pass the "
                "same key or none"
            )
        register_json_seq_exporter()
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key
        readable = [str(Path(p).resolve()) for p in readable_storage]
        for path in readable:
            Path(path).mkdir(parents=True, exist_ok=True)
        from tiled.server import logging_config

        default_log_config = logging_config.LOGGING_CONFIG
        logging_config.LOGGING_CONFIG = _file_log_config(default_log_config)
        try:  # SimpleTiledServer reads this module attribute to write its log files
            self._server: Any = SimpleTiledServer(
                directory=self.directory,
                api_key=self.api_key,
                readable_storage=readable or None,
            )
        finally:
            logging_config.LOGGING_CONFIG = default_log_config
        #: whether the table store takes one request thread at a time
        self.serialized_tables = serialize_table_storage(getattr(self._server, "storage", None))
        #: whether requests skip FastAPI's per-request rebuild of Tiled's dependencies
        self.fast_dependencies = resolve_settings_override(self._server.app)
        self._clients: list[Any] = []
        self._closed = False
        EmbeddedTiled._open_keys[id(self)] = api_key

    @property
    def uri(self) -> str:
        """Full API URI including the API key (what ``tiled.client.from_uri`` takes)."""
        return self._server.uri

    @property
    def base_uri(self) -> str:
        """``http://127.0.0.1:PORT`` without the key, for logs and reports."""
        return self.uri.split("/api/v1", 1)[0]

    def client(self, structure_clients: str = "numpy") -> Any:
        """A new Tiled client on this server; it is closed with the server."""
        from tiled.client import from_uri

        if self._closed:
            raise RuntimeError("EmbeddedTiled is closed")
        client = from_uri(self.uri, structure_clients=structure_clients)
        self._clients.append(client)
        return client

    def close(self) -> None:
        """Close clients this object handed out, then stop the server thread."""
        if self._closed:
            return
        self._closed = True
        for client in self._clients:
            try:
                client.context.close()
            except Exception:  # noqa: BLE001 - best effort, the server stops anyway
                pass
        self._clients.clear()
        EmbeddedTiled._open_keys.pop(id(self), None)
        self._server.close()

    def __enter__(self) -> EmbeddedTiled:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.base_uri
        return f"<EmbeddedTiled {self.directory} {state}>"


def make_tiled_writer(
    client: Any, *, batch_size: int | None = None, backup_directory: str | Path | None = None
) -> Any:
    """A ``TiledWriter`` that batches rows; one HTTP write per event is ~100 ms.

    A burst is a few hundred frames that all exist once the camera is read out, so
    waiting for 64 rows (or the stop document) costs no latency anyone sees, while
    ``batch_size=1`` would make persistence the slowest part of the beamline.

    With ``backup_directory``, a run Tiled refuses is written there whole as JSON Lines
    (TiledWriter's own backup); ``reingest_tiled_backups`` / ``xfusion spool`` write it
    into Tiled later.
    """
    from bluesky_tiled_plugins import TiledWriter

    backup = None
    if backup_directory is not None:
        Path(backup_directory).mkdir(parents=True, exist_ok=True)
        backup = str(backup_directory)
    size = 64 if batch_size is None else int(batch_size)
    return TiledWriter(client, batch_size=size, backup_directory=backup)


def connect_tiled(location: str, *, api_key: str | None = None) -> Any:
    """A Tiled client for ``location``: an http(s) URI (a node's URI gives that node,
    e.g. ``.../api/v1/metadata/derived``), or ``profile:NAME`` for a Tiled client
    profile, as facilities hand them out (``tiled.client.from_profile``)."""
    if location.startswith(PROFILE_SCHEME):
        from tiled.client import from_profile

        name = location.removeprefix(PROFILE_SCHEME)
        if not name:
            raise ConfigError(f"{location!r}: no profile name after {PROFILE_SCHEME!r}")
        return from_profile(name, **({"api_key": api_key} if api_key else {}))
    if not location.startswith(("http://", "https://")):
        raise ConfigError(f"{location!r}: not an http(s) URI nor {PROFILE_SCHEME}NAME")
    from tiled.client import from_uri

    return from_uri(location, api_key=api_key)
