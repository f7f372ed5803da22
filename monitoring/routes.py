"""Routes that carry their own policy: each is registered with the scope it needs and the body it takes.

`route(app, "POST", "/api/v1/agents", handler, Scope.ADMIN, Body.JSON)` adds the route and records
its policy where the middlewares (monitoring/api.py) read it for the matched route. A request the
router can't match (404/405) has no policy and is left to the router; a route added without
`route()` is treated as admin-only, and tests/monitoring/test_route_scopes.py fails on it.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from .credentials import Scope

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Body(enum.Enum):
    """What a route's request body is (its content type is checked for JSON)."""

    NONE = "none"
    JSON = "json"  # application/json or application/*+json, else 415 (a cross-site form can send neither)
    OWN = "own"  # the handler checks its own content types (OTLP, remote-write, the console's sign-in form)


@dataclass(frozen=True)
class Policy:
    """What a route needs: its scope and its kind of body."""

    scope: Scope
    body: Body = Body.NONE
    roles: frozenset[str] = frozenset()  # role scopes (credentials.ROLES) whose ingestion token may call it


POLICIES = web.AppKey("route_policies", dict)  # dict[AbstractRoute, Policy]
UNDECLARED = Policy(Scope.ADMIN)  # fail closed: a route registered without route() needs the admin token


def route(app: web.Application, method: str, path: str, handler: Handler, scope: Scope,
          body: Body = Body.NONE, roles: frozenset[str] = frozenset()) -> None:
    """Register `handler` for `method path` with its policy (GET also answers HEAD, as add_get does). A role's
    ingestion token (least privilege: Prometheus' writes every namespace) is good only where `roles` names it."""
    policy = Policy(scope, body, roles)
    policies: dict[AbstractRoute, Policy] = app.setdefault(POLICIES, {})
    for each in ("HEAD", "GET") if method == "GET" else (method,):
        policies[app.router.add_route(each, path, handler)] = policy


def declared(app: web.Application, matched: AbstractRoute) -> Policy | None:
    """The policy `matched` was registered with; None when it was added without one."""
    return app.get(POLICIES, {}).get(matched)


def policy(request: web.Request) -> Policy | None:
    """The policy of the request's matched route; None when the router matched nothing (it answers 404/405)."""
    match_info = request.match_info
    if match_info.http_exception is not None:
        return None
    found = declared(request.app, match_info.route)
    return UNDECLARED if found is None else found
