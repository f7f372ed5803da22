"""HTTP API: health probes, /metrics and the JSON API under /api/v1.

Errors are JSON (`{"error": ...}`) with the right status. Changing requests (POST/DELETE)
need the bearer token from the settings; without a configured token only loopback clients
may change anything, so a laptop run works and a pod is never left open.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from .collector import RegistrationError
from .exposition import metrics_handler
from .http_bodies import json_error, read_model
from .settings import AlertRuleSpec, StaticAgent
from .state import COLLECTOR, READY, REGISTRY, SETTINGS
from .tracing.api import add_trace_routes

MAX_REPORT_HOURS = 24 * 7
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON; unexpected ones as a 500 without internals."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return json_error(error.status, error.text if error.text and not error.text.startswith(str(error.status))
                          else error.reason)
    except Exception:  # noqa: BLE001 (logged by aiohttp's access log; details stay server-side)
        request.app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Changes under /api need `Authorization: Bearer <api_token>` (or a loopback client when unset)."""
    changes = request.method in ("POST", "PUT", "PATCH", "DELETE")
    token = request.app[SETTINGS].api_token
    # OTLP ingestion is open like a collector's unless a token is configured (agents then send it
    # through OTEL_EXPORTER_OTLP_HEADERS).
    guarded = changes and (request.path.startswith("/api/") or (request.path == "/v1/traces" and token is not None))
    if guarded and token is None and not _is_loopback(request.remote):
        return json_error(403, "no api_token is configured, so changes are only accepted from "
                               "loopback; set MONITORING_API_TOKEN")
    if guarded and token is not None and not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), f"Bearer {token.get_secret_value()}".encode()):
        return json_error(401, "missing or wrong bearer token", hint="send 'Authorization: Bearer <token>'")
    return await handler(request)


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    if not request.app[READY].get("ready"):
        return json_error(503, "starting")
    return web.json_response({"status": "ready", "agents": len(request.app[COLLECTOR].agents)})


async def register_agent(request: web.Request) -> web.Response:
    agent = await read_model(request, StaticAgent)
    try:
        state = request.app[COLLECTOR].register(agent.agent_id, str(agent.metrics_endpoint),
                                                str(agent.health_endpoint) if agent.health_endpoint else None,
                                                agent.info, source="api")
    except RegistrationError as error:
        return json_error(409, str(error))
    return web.json_response(state.as_dict(), status=201)


async def deregister_agent(request: web.Request) -> web.Response:
    agent_id = request.match_info["agent_id"]
    if not await request.app[COLLECTOR].deregister(agent_id):
        return json_error(404, f"no agent '{agent_id}'")
    return web.Response(status=204)


async def list_agents(request: web.Request) -> web.Response:
    agents = [state.as_dict() for state in request.app[COLLECTOR].agents.values()]
    return web.json_response({"agents": agents, "count": len(agents)})


async def overview(request: web.Request) -> web.Response:
    return web.json_response(request.app[COLLECTOR].get_system_overview())


async def report(request: web.Request) -> web.Response:
    raw = request.query.get("hours", "1")
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= MAX_REPORT_HOURS:
        return json_error(400, f"hours must be a number in (0, {MAX_REPORT_HOURS}] (got {raw!r})")
    return web.json_response(request.app[COLLECTOR].generate_performance_report(hours))


async def list_alerts(request: web.Request) -> web.Response:
    alerts = request.app[COLLECTOR].alerts
    return web.json_response({"active": [alert.as_dict() for alert in alerts.active.values()],
                              "resolved": [alert.as_dict() for alert in list(alerts.history)[-100:]]})


async def list_rules(request: web.Request) -> web.Response:
    return web.json_response({"rules": [rule.model_dump(mode="json") for rule in request.app[COLLECTOR].rules.all()]})


async def add_rule(request: web.Request) -> web.Response:
    rule = await read_model(request, AlertRuleSpec)
    replaced = request.app[COLLECTOR].add_rule(rule)
    return web.json_response(rule.model_dump(mode="json"), status=200 if replaced else 201)


def add_routes(app: web.Application) -> None:
    add_trace_routes(app)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics_handler(app[REGISTRY]))
    app.router.add_post("/api/v1/agents", register_agent)
    app.router.add_get("/api/v1/agents", list_agents)
    app.router.add_delete("/api/v1/agents/{agent_id}", deregister_agent)
    app.router.add_get("/api/v1/overview", overview)
    app.router.add_get("/api/v1/report", report)
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_get("/api/v1/alert-rules", list_rules)
    app.router.add_post("/api/v1/alert-rules", add_rule)
