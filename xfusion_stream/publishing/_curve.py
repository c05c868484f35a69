"""CURVE keys for the 0MQ proxy and its clients, kept in one key directory.

Why: on a shared beamline network anyone who can reach the proxy can publish raw
documents to ``xfusion serve`` or read the fused ones. With CURVE the proxy (the
server, it binds) accepts only clients whose public key is in ``authorized/``, and
traffic is encrypted. Layout, as ``make_curve_keys`` writes it::

    key_dir/server.key, server.key_secret   the proxy's pair
    key_dir/client.key, client.key_secret   the pair publishers and subscribers use
    key_dir/authorized/*.key                public keys of the clients let in

bluesky's own ``Publisher``, ``RemoteDispatcher`` and ``bluesky-0MQ-proxy``
(``--in-curve-secret``, ``--in-curve-client-keys``, ...) read the same files.
Limits: the keys authenticate machines, not documents; a client holding a key may
still send bad documents (the dispatcher and RunGuard refuse those); keys are
files, so protect the directory (secret files are written mode 0600).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bluesky.callbacks.zmq import ClientCurve, ServerCurve

from ..core import ConfigError

__all__ = ["ClientCurve", "ServerCurve", "client_curve", "make_curve_keys", "server_curve"]


def make_curve_keys(key_dir: str | os.PathLike[str], client: str = "client") -> Path:
    """Create the server pair, a client pair and ``authorized/`` (kept if present)."""
    import zmq.auth

    key_dir = Path(key_dir)
    (key_dir / "authorized").mkdir(parents=True, exist_ok=True)
    for name in ("server", client):
        if not (key_dir / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(key_dir, name)
        os.chmod(key_dir / f"{name}.key_secret", 0o600)
    shutil.copy(key_dir / f"{client}.key", key_dir / "authorized" / f"{client}.key")
    return key_dir


def _file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"CURVE {what} {path}: not found (make one with make_curve_keys)")
    return path


def client_curve(key_dir: str | os.PathLike[str], client: str = "client") -> ClientCurve:
    """What a publisher or subscriber needs: its secret key and the server's public key."""
    key_dir = Path(key_dir)
    return ClientCurve(
        secret_path=_file(key_dir / f"{client}.key_secret", "client secret key"),
        server_public_key=_file(key_dir / "server.key", "server public key"),
    )


def server_curve(key_dir: str | os.PathLike[str], allow: set[str] | None = None) -> ServerCurve:
    """What the proxy needs: its secret key and the authorized clients' public keys."""
    key_dir = Path(key_dir)
    authorized = key_dir / "authorized"
    if not authorized.is_dir():
        raise ConfigError(f"CURVE authorized keys {authorized}: not a directory")
    return ServerCurve(
        secret_path=_file(key_dir / "server.key_secret", "server secret key"),
        client_public_keys=authorized,
        allow=allow,
    )
