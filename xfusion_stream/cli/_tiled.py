"""Connect to a Tiled server from the command line: a refused or unreachable server is
one line naming the URI (API key masked), in seconds, not a traceback after retries."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from ..core import ConfigError, mask_secrets


def _address(uri: str, flag: str) -> tuple[str, int]:
    shown = mask_secrets(uri)
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{flag} {shown}: not a URI ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{flag} {shown}: not an http(s):// URI")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def connect(
    uri: str, *, api_key: str | None = None, flag: str = "--tiled-uri", timeout: float = 10.0
) -> Any:
    """``tiled.client.from_uri(uri)`` (or ``from_profile`` for ``profile:NAME``), or a
    ``ConfigError`` saying why not: the host:port is tried first, so a server that is
    not there fails at once (Tiled's client would retry for ~30 s)."""
    from ..publishing import PROFILE_SCHEME, connect_tiled

    if uri.startswith(PROFILE_SCHEME):
        try:
            return connect_tiled(uri, api_key=api_key)
        except Exception as exc:  # noqa: BLE001 - unknown profile, unreachable server
            why = mask_secrets(str(exc)) or type(exc).__name__
            raise ConfigError(f"{flag} {uri}: {why}") from None
    host, port = _address(uri, flag)
    shown = mask_secrets(uri)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise ConfigError(f"{flag} {shown}: cannot connect to {host}:{port}: {why}") from None
    try:
        return connect_tiled(uri, api_key=api_key)
    except Exception as exc:  # noqa: BLE001 - httpx/tiled raise many kinds; one line
        why = mask_secrets(str(exc)) or type(exc).__name__
        raise ConfigError(f"{flag} {shown}: {why}") from None
