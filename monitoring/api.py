"""HTTP API: health probes, /metrics and the JSON API under /api/v1.

Errors are JSON (`{"error": ...}`) with the right status. Every request needs the bearer
credential of its scope (monitoring/credentials.py): the probes and /metrics are open, agents
ingest with their ingestion token, reads need the read (or admin) token, changes the admin
token. The settings allow a scope without a credential only while the service listens on
loopback, so a laptop run works and a pod is never left open.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import hdrs, web

from .collector import RegistrationError
from .console import add_console_routes
from .remote_write import remote_write
from .credentials import PROMETHEUS_SCOPE, Scope, bearer, former_ingest_token, ingest_scope, is_role, same
from .exposition import metrics_handler
from .http_bodies import json_error, read_model
from .routes import Body, policy, route
from .json_answers import json_answer
from .settings import AlertRuleSpec, AuthSettings, StaticAgent
from .state import COLLECTOR, INGEST_NAMESPACE, READY, REGISTRY, SETTINGS
from .targets import TargetRefused
from .tracing.api import add_trace_routes

MAX_REPORT_HOURS = 24 * 7
DEFAULT_PAGE, MAX_PAGE = 100, 1_000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
# Host names a browser uses for this machine; a page's own DNS name pointed at 127.0.0.1 is none of them.
LOOPBACK_HOST = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)


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
    """401 without the credential of the matched route's scope, 403 with a credential of another scope.

    The scope is the one the route was registered with (monitoring/routes.py); what the router can't
    match is left to it (404/405); the console's pages check their sign-in themselves. Listening on loopback
    only, every request must name a loopback host first, open routes included (DNS rebinding)."""
    if request.app[SETTINGS].local and not _loopback_host(request):
        return _foreign_host(request)
    declared = policy(request)
    if declared is None or declared.scope is Scope.OPEN:
        return await handler(request)
    scope = declared.scope
    auth = request.app[SETTINGS].auth
    needed = {Scope.ADMIN: auth.admin_token, Scope.READ: auth.read_token, Scope.INGEST: auth.ingest_key,
              Scope.CONSOLE: auth.read_token}
    if needed[scope] is None:  # unset: allowed by the settings only on loopback, and only for loopback names
        return await handler(request) if _loopback_host(request) else _foreign_host(request)
    if scope is Scope.CONSOLE:  # the console checks its sign-in itself (and sends people to it)
        return await handler(request)
    token = bearer(request.headers.get("Authorization"))
    if token is None:
        return _unauthorized(scope, "missing bearer token")
    granted, namespace = _scopes(token, auth)
    if not granted:
        return _unauthorized(scope, "an ingestion token of the former format (mi1.): tokens are mi2.ns.<namespace>.… "
                                    "now; pulumi up rewrites the agents' Secrets, or derive it with python -m "
                                    "monitoring.credentials" if former_ingest_token(token) else "unknown bearer token")
    if scope not in granted:
        return json_error(403, f"this token does not grant {scope.value} access",
                          hint=f"{scope.value} needs the {_CREDENTIAL[scope]}")
    if namespace is not None:  # an ingestion token speaks for its namespace only (the admin token for any)
        if is_role(namespace) and namespace not in declared.roles:
            return json_error(403, f"the {namespace} token is good only for what that role does",
                              hint="agents send with their namespace's ingestion token")
        request[INGEST_NAMESPACE] = namespace
    return await handler(request)


@web.middleware
async def require_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """415 for a JSON API write whose Content-Type isn't JSON: a cross-site form or "simple" fetch() can send
    only text/plain, form encodings or none (CSRF), never application/json without a CORS preflight."""
    declared = policy(request)
    if declared is not None and declared.body is Body.JSON and not _json_type(request.content_type):
        sent = request.headers.get(hdrs.CONTENT_TYPE)
        return json_error(415, f"Content-Type must be application/json (or application/*+json), not "
                               f"{sent[:100] if sent else 'missing'}",
                          hint="send the body with 'Content-Type: application/json'")
    return await handler(request)


def _json_type(content_type: str) -> bool:
    return content_type == "application/json" or (content_type.startswith("application/")
                                                   and content_type.endswith("+json"))


def _loopback_host(request: web.Request) -> bool:
    host = request.headers.get(hdrs.HOST)
    return host is not None and LOOPBACK_HOST.fullmatch(host) is not None


def _foreign_host(request: web.Request) -> web.Response:
    """421 for a request naming another host while listening on loopback only or a credential is unset (laptop
    mode): a web page whose own DNS name points at 127.0.0.1 could otherwise read the answer."""
    host = request.headers.get(hdrs.HOST)
    named = f"Host {host[:100]!r} is not a loopback name" if host else "no Host header"
    why = "listening on loopback only" if request.app[SETTINGS].local else "without credentials"
    return json_error(421, f"{named}: {why} the service answers only requests for localhost, 127.0.0.1 or [::1], "
                           "so that no web page can reach it through a DNS name of its own (DNS rebinding); use "
                           "http://localhost:<port>, or listen beyond loopback (--host, MONITORING_HOST) with "
                           "MONITORING_AUTH__ADMIN_TOKEN, MONITORING_AUTH__READ_TOKEN and MONITORING_AUTH__INGEST_KEY "
                           "set to serve other names")


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
    """Every route of the service, each with its scope (and JSON bodies marked, for their content type)."""
    add_trace_routes(app)
    add_console_routes(app)
    route(app, "GET", "/health/live", live, Scope.OPEN)
    route(app, "GET", "/health/ready", ready, Scope.OPEN)
    route(app, "GET", "/metrics", metrics_handler(app[REGISTRY], app[COLLECTOR]), Scope.OPEN)
    route(app, "POST", "/api/v1/agents", register_agent, Scope.ADMIN, Body.JSON)
    route(app, "GET", "/api/v1/agents", list_agents, Scope.READ)
    route(app, "DELETE", "/api/v1/agents/{agent_id}", deregister_agent, Scope.ADMIN)
    route(app, "GET", "/api/v1/overview", overview, Scope.READ)
    route(app, "GET", "/api/v1/report", report, Scope.READ)
    route(app, "GET", "/api/v1/alerts", list_alerts, Scope.READ)
    route(app, "GET", "/api/v1/alert-rules", list_rules, Scope.READ)
    route(app, "POST", "/api/v1/write", remote_write, Scope.INGEST, Body.OWN,  # snappy protobuf
          roles=frozenset({PROMETHEUS_SCOPE}))
    route(app, "POST", "/api/v1/alert-rules", add_rule, Scope.ADMIN, Body.JSON)
