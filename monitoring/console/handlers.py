"""The console's routes: pages, sign-in and sign-out, the waterfall data and the static files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from aiohttp import web

from ..credentials import Scope
from ..http_bodies import read_body
from ..routes import Body, route
from ..json_answers import dumps
from ..state import ANALYST, COLLECTOR, SETTINGS, TRACER
from ..tracing.analyst import AnalystBusy
from . import auth, views
from .waterfall import waterfall

HERE = Path(__file__).parent
REFRESH_SECONDS = 15
MAX_FORM_BYTES = 8192
MAX_FILTER_LENGTH = 256
WATERFALLS_AT_ONCE = 2          # 10,000-span waterfalls are built in worker threads, this many at a time
INLINE_WATERFALL_SPANS = 1_000  # smaller ones on the event loop
# Everything comes from the service itself; nothing inline, nothing framed, forms post only here.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form posts.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
STATIC = {path.name: (path.read_bytes(), STATIC_TYPES[path.suffix]) for path in (HERE / "static").iterdir()
          if path.suffix in STATIC_TYPES}
WATERFALL_SLOTS = web.AppKey("console_waterfall_slots", asyncio.Semaphore)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _duration(seconds: float | None) -> str:
    """A short age: 42s, 3m 5s, 2h 10m, 1d 4h."""
    if seconds is None:
        return "–"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def _band(score: float) -> str:
    return "good" if score >= 80 else "fair" if score >= 50 else "poor"


TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                               undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
def _segment(value: object) -> str:
    """A value as one URL path segment: '/' encoded too, and '.' / '..' (which browsers would resolve)."""
    text = quote(str(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


TEMPLATES.filters.update(duration=_duration, band=_band, segment=_segment)


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    html = TEMPLATES.get_template(template).render(
        session=auth.COOKIE in request.cookies and not auth.is_open(request.app[SETTINGS].auth),
        refresh=context.pop("refresh", None), **context)
    return web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)


def _not_found(request: web.Request, what: str) -> web.Response:
    return _page(request, "error.html", status=404, title="Not found", page="", heading="Not found", message=what)


def signed_in(handler: Handler) -> Handler:
    """Pages for people with the read credentials; others are sent to the sign-in page (and back after)."""
    async def check(request: web.Request) -> web.StreamResponse:
        if auth.signed_in(request, request.app[SETTINGS].auth):
            return await handler(request)
        if "Authorization" in request.headers:  # a proxy's or script's wrong token: say so, don't redirect
            return web.Response(status=401, text="unknown or insufficient token", headers=SECURITY_HEADERS)
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther(f"/ui/login?next={quote(target, safe='')}", headers=SECURITY_HEADERS)
    return check


@signed_in
async def overview(request: web.Request) -> web.Response:
    return _page(request, "overview.html", title="Overview", page="overview", refresh=REFRESH_SECONDS,
                 data=views.overview(request.app[COLLECTOR]))


@signed_in
async def agent(request: web.Request) -> web.Response:
    agent_id = request.match_info["agent_id"]
    data = views.agent_page(request.app[COLLECTOR], request.app[TRACER], agent_id)
    if data is None:
        return _not_found(request, f"No agent {agent_id!r} is registered.")
    return _page(request, "agent.html", title=f"Agent {agent_id}", page="", refresh=REFRESH_SECONDS, data=data)


@signed_in
async def alerts(request: web.Request) -> web.Response:
    return _page(request, "alerts.html", title="Alerts", page="alerts", refresh=REFRESH_SECONDS,
                 data=views.alerts_page(request.app[COLLECTOR]))


@signed_in
async def traces(request: web.Request) -> web.Response:
    agent_id = request.query.get("agent", "").strip()[:MAX_FILTER_LENGTH]
    return _page(request, "traces.html", title="Traces", page="traces", refresh=REFRESH_SECONDS,
                 data=views.traces_page(request.app[TRACER], agent_id))


@signed_in
async def trace(request: web.Request) -> web.Response:
    trace_id = request.match_info["trace_id"]
    found = request.app[TRACER].traces.get(trace_id)
    if found is None:
        return _not_found(request, f"No trace {trace_id!r} is kept (traces are kept for the retention window).")
    try:
        analysis = await request.app[ANALYST].analysis(found)
    except AnalystBusy:
        return _page(request, "error.html", status=503, title="Busy", page="", heading="Busy",
                     message="Many traces are being analysed; try again in a moment.")
    return _page(request, "trace.html", title=f"Trace {trace_id[:16]}", page="", analysis=analysis)


@signed_in
async def trace_waterfall(request: web.Request) -> web.Response:
    found = request.app[TRACER].traces.get(request.match_info["trace_id"])
    if found is None:
        return web.json_response({"error": "no such trace"}, status=404, headers=SECURITY_HEADERS)
    snapshot = found.snapshot()
    if len(snapshot.spans) <= INLINE_WATERFALL_SPANS:
        document = waterfall(snapshot)
    else:
        slots = request.app[WATERFALL_SLOTS]
        if slots.locked():
            return web.json_response({"error": "busy"}, status=503, headers={**SECURITY_HEADERS, "Retry-After": "1"})
        async with slots:
            document = await asyncio.to_thread(waterfall, snapshot)
    return web.Response(text=dumps(document, separators=(",", ":")), content_type="application/json",
                        headers=SECURITY_HEADERS)


async def login_form(request: web.Request) -> web.Response:
    if auth.signed_in(request, request.app[SETTINGS].auth) and "Authorization" not in request.headers:
        raise web.HTTPSeeOther(auth.local_path(request.query.get("next")))
    return _page(request, "login.html", title="Sign in", page="", next=auth.local_path(request.query.get("next")),
                 error=None)


async def login(request: web.Request) -> web.Response:
    if not auth.same_origin(request):
        return web.Response(status=403, text="cross-site sign-in refused", headers=SECURITY_HEADERS)
    try:
        form = parse_qs((await read_body(request, MAX_FORM_BYTES)).decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:
        return web.Response(status=400, text="too many form fields", headers=SECURITY_HEADERS)
    token = (form.get("token") or [""])[0].strip()
    target = auth.local_path((form.get("next") or ["/"])[0])
    settings = request.app[SETTINGS].auth
    if auth.is_open(settings):
        raise web.HTTPSeeOther(target)
    if not token or not auth.valid_token(settings, token.encode("utf-8", "surrogateescape")):
        return _page(request, "login.html", status=401, title="Sign in", page="", next=target,
                     error="That token is not the read or admin token.")
    response = web.HTTPSeeOther(target, headers=SECURITY_HEADERS)
    auth.set_session(response, request, token)
    raise response


async def logout(request: web.Request) -> web.Response:
    if not auth.same_origin(request):
        return web.Response(status=403, text="cross-site sign-out refused", headers=SECURITY_HEADERS)
    # Ended on the server too: the cookie, replayed, opens nothing.
    auth.sign_out(request.app[SETTINGS].auth, request.cookies.get(auth.COOKIE), request.app[auth.REVOKED])
    response = web.HTTPSeeOther("/ui/login", headers=SECURITY_HEADERS)
    auth.clear_session(response, request)
    raise response


async def static(request: web.Request) -> web.Response:
    found = STATIC.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(text="no such file")
    body, content_type = found
    return web.Response(body=body, content_type=content_type,
                        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"})


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})


def add_console_routes(app: web.Application) -> None:
    """The console's routes: its pages check their own sign-in (scope console); signing in and out (form posts
    that check their Origin), the static files and the icon are open."""
    app[WATERFALL_SLOTS] = asyncio.Semaphore(WATERFALLS_AT_ONCE)
    app[auth.REVOKED] = auth.RevokedSessions(ended_before=time.time())  # a restart signs everyone out
    route(app, "GET", "/", overview, Scope.CONSOLE)
    route(app, "GET", "/ui/login", login_form, Scope.OPEN)
    route(app, "POST", "/ui/login", login, Scope.OPEN, Body.OWN)
    route(app, "POST", "/ui/logout", logout, Scope.OPEN, Body.OWN)
    route(app, "GET", "/ui/agents/{agent_id}", agent, Scope.CONSOLE)
    route(app, "GET", "/ui/alerts", alerts, Scope.CONSOLE)
    route(app, "GET", "/ui/traces", traces, Scope.CONSOLE)
    route(app, "GET", "/ui/traces/{trace_id}", trace, Scope.CONSOLE)
    route(app, "GET", "/ui/traces/{trace_id}/waterfall.json", trace_waterfall, Scope.CONSOLE)
    route(app, "GET", "/ui/static/{name}", static, Scope.OPEN)
    route(app, "GET", "/favicon.ico", no_icon, Scope.OPEN)
