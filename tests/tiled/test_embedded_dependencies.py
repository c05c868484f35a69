"""The embedded Tiled server answers without FastAPI rebuilding its dependencies per
request, and still behaves as Tiled: the same settings object, the API key enforced."""

from __future__ import annotations

import httpx
import pytest


def _count_rebuilds(monkeypatch) -> list[int]:
    import fastapi.dependencies.utils as fastapi_deps

    calls = [0]
    original = fastapi_deps.get_dependant

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(fastapi_deps, "get_dependant", counting)
    return calls


def test_requests_do_not_rebuild_dependencies_and_the_key_is_still_required(
    tiled_server, monkeypatch
):
    from tiled.server.settings import get_settings

    assert tiled_server.fast_dependencies
    app = tiled_server._server.app
    # the start-up and shut-down hooks' lookup by key still answers, with the same object
    assert app.dependency_overrides[get_settings]() is get_settings()
    client = tiled_server.client()
    list(client)  # FastAPI builds some routes on their first request
    calls = _count_rebuilds(monkeypatch)
    for _ in range(3):
        list(client)  # authenticated requests: metadata, search
    assert calls[0] == 0
    refused = httpx.get(f"{tiled_server.base_uri}/api/v1/metadata/", timeout=10)
    assert refused.status_code == 401


def test_an_app_with_other_overrides_keeps_fastapis_path():
    from tiled.server.settings import get_settings

    from xfusion_stream.publishing._tiled import _ResolvedOverrides, resolve_settings_override

    def other() -> None: ...

    class App:
        dependency_overrides: dict

    app = App()
    app.dependency_overrides = {get_settings: get_settings, other: other}
    assert not resolve_settings_override(app)
    assert type(app.dependency_overrides) is dict
    # an override that answers another Settings object is not provably the same
    app.dependency_overrides = {get_settings: lambda: get_settings().model_copy()}
    assert not resolve_settings_override(app)
    app.dependency_overrides = {get_settings: get_settings}
    assert resolve_settings_override(app)
    assert isinstance(app.dependency_overrides, _ResolvedOverrides)
    assert not app.dependency_overrides  # FastAPI sees none
    assert not resolve_settings_override(app)  # idempotent
    app.dependency_overrides[other] = other  # added later: FastAPI sees them all again
    assert app.dependency_overrides
    del app.dependency_overrides[other]
    assert not app.dependency_overrides
    app.dependency_overrides[get_settings] = other  # replaced: the same
    assert app.dependency_overrides


@pytest.mark.parametrize("resolved", [False, True])
def test_fastapi_rebuilds_only_where_overrides_are_seen(resolved, monkeypatch):
    """The cost being removed is real: with a plain override dict FastAPI rebuilds a
    dependency on every request; with the resolved one it does not."""
    import asyncio

    from fastapi import Depends, FastAPI

    from xfusion_stream.publishing._tiled import _ResolvedOverrides

    def setting() -> int:
        return 1

    app = FastAPI()

    @app.get("/")
    def root(value: int = Depends(setting)) -> int:
        return value

    overrides = {setting: setting}
    app.dependency_overrides = _ResolvedOverrides(overrides, setting) if resolved else overrides

    async def three_requests() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            await client.get("/")  # routes are built on the first request
            calls[0] = 0
            return [(await client.get("/")).json() for _ in range(3)]

    calls = _count_rebuilds(monkeypatch)
    assert asyncio.run(three_requests()) == [1, 1, 1]
    assert (calls[0] == 0) is resolved
