"""Every route's scope, as an outsider meets it over HTTP, and a walk of the router that fails on any route
registered without a declared scope (issue 23 item 13)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from monitoring.app import init_app
from monitoring.credentials import Scope, ingest_token
from monitoring.settings import MonitoringSettings

from .test_security import ADMIN, KEY, READ, bearer, secured

Client = Callable[..., Any]
AGENT_TOKEN = ingest_token(KEY, "agents")

# Today's effective scope of every route (GET routes also answer HEAD). `console`: the console's own
# sign-in (a session cookie, or the read or admin bearer token), which sends people to /ui/login.
SCOPES: dict[tuple[str, str], Scope] = {
    ("GET", "/health/live"): Scope.OPEN, ("GET", "/health/ready"): Scope.OPEN, ("GET", "/metrics"): Scope.OPEN,
    ("GET", "/ui/login"): Scope.OPEN, ("POST", "/ui/login"): Scope.OPEN, ("POST", "/ui/logout"): Scope.OPEN,
    ("GET", "/ui/static/{name}"): Scope.OPEN, ("GET", "/favicon.ico"): Scope.OPEN,
    ("GET", "/"): Scope.CONSOLE, ("GET", "/ui/agents/{agent_id}"): Scope.CONSOLE,
    ("GET", "/ui/alerts"): Scope.CONSOLE, ("GET", "/ui/traces"): Scope.CONSOLE,
    ("GET", "/ui/traces/{trace_id}"): Scope.CONSOLE, ("GET", "/ui/traces/{trace_id}/waterfall.json"): Scope.CONSOLE,
    ("POST", "/v1/traces"): Scope.INGEST, ("POST", "/v1/metrics"): Scope.INGEST, ("POST", "/v1/logs"): Scope.INGEST,
    ("POST", "/api/v1/spans"): Scope.INGEST, ("POST", "/api/v1/spans/{span_id}/finish"): Scope.INGEST,
    ("POST", "/api/v1/write"): Scope.INGEST,
    ("GET", "/api/v1/genai/usage"): Scope.READ, ("GET", "/api/v1/traces"): Scope.READ,
    ("GET", "/api/v1/traces/{trace_id}"): Scope.READ, ("GET", "/api/v1/agents"): Scope.READ,
    ("GET", "/api/v1/overview"): Scope.READ, ("GET", "/api/v1/report"): Scope.READ,
    ("GET", "/api/v1/alerts"): Scope.READ, ("GET", "/api/v1/alert-rules"): Scope.READ,
    ("POST", "/api/v1/agents"): Scope.ADMIN, ("DELETE", "/api/v1/agents/{agent_id}"): Scope.ADMIN,
    ("POST", "/api/v1/alert-rules"): Scope.ADMIN,
}


def fully_configured(tmp_path: Path) -> MonitoringSettings:
    """Every optional part on: relay, persistence, remote-write, the console (always), all credentials."""
    return secured(source="remote_write", persistence={"path": tmp_path / "state.json"},
                   tracing={"relay": {"endpoint": "http://127.0.0.1:9"}},
                   alertmanager={"url": "http://127.0.0.1:9"})


def _routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route the router holds."""
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.resource is not None}


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x0", template)


async def _status(client: Any, method: str, path: str, token: str | None) -> tuple[int, str]:
    """The status (0 for the auth middleware's own refusal: a Bearer challenge or a 403) and the Location."""
    headers = {"Content-Type": "application/json", **(bearer(token) if token else {})}
    response = await client.request(method, path, data=b"{}" if method == "POST" else None, headers=headers,
                                    allow_redirects=False)
    refused = response.status == 403 or "WWW-Authenticate" in response.headers
    return 0 if refused else response.status, response.headers.get("Location", "")


async def test_every_route_answers_with_its_scope(aiohttp_client: Client, tmp_path: Path) -> None:
    """Each credential reaches exactly its scope's routes; the table lists every route the app has."""
    app = init_app(fully_configured(tmp_path))
    assert _routes(app) - {("HEAD", path) for method, path in SCOPES if method == "GET"} == set(SCOPES)
    client = await aiohttp_client(app)
    refused = (0,)
    for (method, template), scope in SCOPES.items():
        path, where = _concrete(template), (method, template)
        anonymous, _ = await _status(client, method, path, None)
        if scope is Scope.OPEN:
            assert anonymous not in refused, where
            continue
        if scope is Scope.CONSOLE:
            assert (await _status(client, method, path, None))[1].startswith("/ui/login"), where
            assert (await _status(client, method, path, AGENT_TOKEN))[0] == 401, where
            for token in (READ, ADMIN):
                status, location = await _status(client, method, path, token)
                assert status not in refused and not location.startswith("/ui/login"), (where, token)
            continue
        assert anonymous == 0, where
        allowed = {Scope.INGEST: [AGENT_TOKEN, ADMIN], Scope.READ: [READ, ADMIN], Scope.ADMIN: [ADMIN]}[scope]
        for token in (AGENT_TOKEN, READ, ADMIN):
            status, _ = await _status(client, method, path, token)
            assert (status not in refused) == (token in allowed), (where, token, status)


async def test_unknown_paths_and_methods_are_left_to_the_router(aiohttp_client: Client, tmp_path: Path) -> None:
    client = await aiohttp_client(init_app(fully_configured(tmp_path)))
    assert (await client.get("/api/v1/nothing-here")).status == 404
    assert (await client.post("/metrics")).status == 405
    assert (await client.put("/api/v1/agents")).status == 405


def test_every_route_declares_its_scope(tmp_path: Path) -> None:
    """A route registered without a scope (e.g. a plain app.router.add_post) fails here."""
    from monitoring.routes import declared

    app = init_app(fully_configured(tmp_path))
    undeclared = [(route.method, route.resource.canonical if route.resource else "?")
                  for route in app.router.routes() if declared(app, route) is None]
    assert undeclared == []
    scopes = {(route.method, route.resource.canonical): declared(app, route).scope  # type: ignore[union-attr]
              for route in app.router.routes() if route.resource is not None and route.method != "HEAD"}
    assert scopes == SCOPES


def test_a_route_added_without_a_scope_is_found(tmp_path: Path) -> None:
    from monitoring.routes import declared

    app = init_app(fully_configured(tmp_path))

    async def extra(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_post("/hooks/new", extra)
    assert [route.resource.canonical for route in app.router.routes()
            if route.resource is not None and declared(app, route) is None] == ["/hooks/new"]
