"""HTTP API: health probes, /metrics and the JSON API under /api/v1.

Errors are JSON (`{"error": ...}`) with the right status. Every request needs the bearer
credential of its scope (monitoring/credentials.py): the probes and /metrics are open, agents
ingest with their ingestion token, reads need the read (or admin) token, changes the admin
token. The settings allow a scope without a credential only while the service listens on
loopback, so a laptop run works and a pod is never left open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from .collector import RegistrationError
from .console import add_console_routes
from .remote_write import remote_write
from .credentials import Scope, bearer, ingest_scope, required_scope, same
from .exposition import metrics_handler
from .http_bodies import json_error, read_model
from .json_answers import json_answer
from .settings import AlertRuleSpec, AuthSettings, StaticAgent
from .state import COLLECTOR, INGEST_NAMESPACE, READY, REGISTRY, SETTINGS
from .targets import TargetRefused
from .tracing.api import add_trace_routes

MAX_REPORT_HOURS = 24 * 7
DEFAULT_PAGE, MAX_PAGE = 100, 1_000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON; unexpected ones as a 500 without internals."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        response = json_error(error.status, error.text if error.text and not error.text.startswith(str(error.status))
                              else error.reason)
        for name in ("Connection", "Retry-After", "WWW-Authenticate", "Allow"):
            if name in error.headers:
                response.headers[name] = error.headers[name]
        return response
    except Exception:  # noqa: BLE001 (logged by aiohttp's access log; details stay server-side)
        request.app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without the credential of the request's scope, 403 with a credential of another scope."""
    scope = required_scope(request.method, request.path)
    auth = request.app[SETTINGS].auth
    needed = {Scope.ADMIN: auth.admin_token, Scope.READ: auth.read_token, Scope.INGEST: auth.ingest_key}
    if scope is Scope.OPEN or needed[scope] is None:  # unset: allowed by the settings only on loopback
        return await handler(request)
    token = bearer(request.headers.get("Authorization"))
    if token is None:
        return _unauthorized(scope, "missing bearer token")
    granted, namespace = _scopes(token, auth)
    if not granted:
        return _unauthorized(scope, "unknown bearer token")
    if scope not in granted:
        return json_error(403, f"this token does not grant {scope.value} access",
                          hint=f"{scope.value} needs the {_CREDENTIAL[scope]}")
    if namespace is not None:  # an ingestion token speaks for its namespace only (the admin token for any)
        request[INGEST_NAMESPACE] = namespace
    return await handler(request)


_CREDENTIAL = {Scope.ADMIN: "admin token", Scope.READ: "read or admin token",
               Scope.INGEST: "ingestion token of the agent's namespace (or the admin token)"}


def _scopes(token: bytes, auth: AuthSettings) -> tuple[set[Scope], str | None]:
    """The scopes a token grants, and the namespace of an ingestion token."""
    if auth.admin_token is not None and same(token, auth.admin_token.get_secret_value()):
        return {Scope.ADMIN, Scope.READ, Scope.INGEST}, None
    if auth.read_token is not None and same(token, auth.read_token.get_secret_value()):
        return {Scope.READ}, None
    namespace = ingest_scope(auth.ingest_key.get_secret_value(), token) if auth.ingest_key is not None else None
    return ({Scope.INGEST}, namespace) if namespace is not None else (set(), None)


def _unauthorized(scope: Scope, reason: str) -> web.Response:
    response = json_error(401, f"{reason}: {scope.value} needs the {_CREDENTIAL[scope]}",
                          hint="send 'Authorization: Bearer <token>'")
    response.headers["WWW-Authenticate"] = 'Bearer realm="monitoring"'
    return response


async def live(request: web.Request) -> web.Response:
    return json_answer({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    if not request.app[READY].get("ready"):
        return json_error(503, "starting")
    return json_answer({"status": "ready", "agents": len(request.app[COLLECTOR].agents)})


async def register_agent(request: web.Request) -> web.Response:
    agent = await read_model(request, StaticAgent)
    collector = request.app[COLLECTOR]
    existing = collector.agents.get(agent.agent_id)
    if existing is not None and existing.source != "api":
        return json_error(409, f"agent '{agent.agent_id}' comes from {existing.source}; the API may not replace it")
    try:
        state = collector.register(agent.agent_id, str(agent.metrics_endpoint),
                                   str(agent.health_endpoint) if agent.health_endpoint else None,
                                   agent.info, source="api")
    except TargetRefused as error:
        return json_error(422, str(error))
    except RegistrationError as error:
        return json_error(409, str(error))
    return json_answer(state.as_dict(), status=201)


async def deregister_agent(request: web.Request) -> web.Response:
    agent_id = request.match_info["agent_id"]
    collector = request.app[COLLECTOR]
    existing = collector.agents.get(agent_id)
    if existing is None:
        return json_error(404, f"no agent '{agent_id}'")
    if existing.source != "api":
        return json_error(409, f"agent '{agent_id}' comes from {existing.source}; remove it there")
    await collector.deregister(agent_id)
    return web.Response(status=204)


def _page(request: web.Request) -> tuple[int, int]:
    """(offset, limit) from the query: limit 1..MAX_PAGE (default DEFAULT_PAGE), offset >= 0; 400 otherwise."""
    try:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", str(DEFAULT_PAGE)))
    except ValueError:
        raise web.HTTPBadRequest(text="offset and limit must be integers") from None
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise web.HTTPBadRequest(text=f"offset must be >= 0 and limit within 1..{MAX_PAGE}")
    return offset, limit


def _paged(request: web.Request, key: str, items: Sequence[T], as_dict: Callable[[T], Any],
           **extra: Any) -> web.Response:
    """One page of `items` (converted by `as_dict`) under `key`, with `count` (on the page), `total` and
    `next_offset` (null at the end)."""
    offset, limit = _page(request)
    page = [as_dict(item) for item in items[offset:offset + limit]]
    following = offset + limit if offset + limit < len(items) else None
    return json_answer({key: page, "count": len(page), "total": len(items), "next_offset": following, **extra})


async def list_agents(request: web.Request) -> web.Response:
    return _paged(request, "agents", list(request.app[COLLECTOR].agents.values()), lambda state: state.as_dict())


async def overview(request: web.Request) -> web.Response:
    return json_answer(request.app[COLLECTOR].get_system_overview())


async def report(request: web.Request) -> web.Response:
    raw = request.query.get("hours", "1")
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= MAX_REPORT_HOURS:
        return json_error(400, f"hours must be a number in (0, {MAX_REPORT_HOURS}] (got {raw!r})")
    return json_answer(request.app[COLLECTOR].generate_performance_report(hours))


async def list_alerts(request: web.Request) -> web.Response:
    """Active alerts, paged; with the last 100 resolved ones."""
    alerts = request.app[COLLECTOR].alerts
    return _paged(request, "active", list(alerts.active.values()), lambda alert: alert.as_dict(),
                  resolved=[alert.as_dict() for alert in list(alerts.history)[-100:]])


async def list_rules(request: web.Request) -> web.Response:
    return _paged(request, "rules", request.app[COLLECTOR].rules.all(), lambda rule: rule.model_dump(mode="json"))


async def add_rule(request: web.Request) -> web.Response:
    rule = await read_model(request, AlertRuleSpec)
    settings, collector = request.app[SETTINGS], request.app[COLLECTOR]
    if any(existing.rule_id == rule.rule_id for existing in settings.alert_rules):
        return json_error(409, f"rule '{rule.rule_id}' comes from the settings; the API may not replace it")
    known = any(existing.rule_id == rule.rule_id for existing in collector.rules.all())
    if not known and len(collector.rules.all()) >= settings.max_alert_rules:
        return json_error(409, f"{settings.max_alert_rules} alert rules exist (max_alert_rules); remove one first")
    replaced = collector.add_rule(rule)
    return json_answer(rule.model_dump(mode="json"), status=200 if replaced else 201)


def add_routes(app: web.Application) -> None:
    add_trace_routes(app)
    add_console_routes(app)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics_handler(app[REGISTRY], app[COLLECTOR]))
    app.router.add_post("/api/v1/agents", register_agent)
    app.router.add_get("/api/v1/agents", list_agents)
    app.router.add_delete("/api/v1/agents/{agent_id}", deregister_agent)
    app.router.add_get("/api/v1/overview", overview)
    app.router.add_get("/api/v1/report", report)
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_get("/api/v1/alert-rules", list_rules)
    app.router.add_post("/api/v1/write", remote_write)
    app.router.add_post("/api/v1/alert-rules", add_rule)
