"""The web console over HTTP: who may see it, what its pages say, what they escape, the waterfall data.
(tests/console/test_browser.py drives the same pages in a real browser.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from monitoring.app import init_app
from monitoring.console import auth
from monitoring.console.waterfall import waterfall
from monitoring.settings import MonitoringSettings
from monitoring.simulate import Simulator
from monitoring.state import COLLECTOR, TRACER
from monitoring.tracing.spans import STATUS_ERROR, Span

from .conftest import endpoint, make_settings
from .test_service import wait_for

Client = Callable[..., Any]
READ, ADMIN = "read-token-9f1c3e7a5b2d8460c4e1", "admin-token-9f1c3e7a5b2d8460c4e1"
HOSTILE = '<img src=x onerror="window.__xss=1">'


def secured() -> MonitoringSettings:
    return make_settings(auth={"read_token": READ, "admin_token": ADMIN})


async def start(aiohttp_client: Client, settings: MonitoringSettings) -> TestClient:
    return await aiohttp_client(init_app(settings))


async def signed_in_client(aiohttp_client: Client, settings: MonitoringSettings | None = None) -> TestClient:
    client = await start(aiohttp_client, settings or secured())
    response = await client.post("/ui/login", data={"token": READ, "next": "/"}, allow_redirects=False)
    assert response.status == 303
    return client


async def test_pages_need_the_read_credentials_and_send_people_to_sign_in(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, secured())
    for path in ("/", "/ui/alerts", "/ui/traces?agent=a", "/ui/agents/a", "/ui/traces/t", "/ui/traces/t/waterfall.json"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/ui/login?next=")
    login = await client.get("/ui/login?next=%2Fui%2Falerts")
    assert login.status == 200 and 'name="next" value="/ui/alerts"' in await login.text()
    # the sign-in page and the static files are open
    assert (await client.get("/ui/static/console.js")).status == 200


async def test_signing_in_sets_a_strict_session_cookie_that_is_not_the_token(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, secured())
    wrong = await client.post("/ui/login", data={"token": "nope-nope-nope-nope", "next": "/"}, allow_redirects=False)
    assert wrong.status == 401 and "not the read or admin token" in await wrong.text()
    assert "Set-Cookie" not in wrong.headers
    response = await client.post("/ui/login", data={"token": READ, "next": "/ui/alerts"}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/ui/alerts"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert READ not in cookie and ADMIN not in cookie
    assert (await client.get("/ui/alerts", allow_redirects=False)).status == 200
    signed_out = await client.post("/ui/logout", allow_redirects=False)
    assert signed_out.status == 303 and 'console_session=""' in signed_out.headers["Set-Cookie"]


async def test_the_cookie_is_secure_behind_https(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, secured())
    response = await client.post("/ui/login", data={"token": ADMIN}, allow_redirects=False,
                                 headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["Set-Cookie"]


def test_sessions_expire_and_die_with_a_rotated_token() -> None:
    settings = secured().auth
    now = time.time()
    cookie = auth.session_cookie(READ, now)
    assert auth.valid_session(settings, cookie, now)
    assert not auth.valid_session(settings, cookie, now + auth.SESSION_SECONDS + 1)
    assert not auth.valid_session(settings, cookie.replace(f"{auth.SESSION_PREFIX}.", f"{auth.SESSION_PREFIX}.9"), now)          # another expiry
    assert not auth.valid_session(settings, cookie[:-1] + ("0" if cookie[-1] != "0" else "1"), now)
    for malformed in ("c1.².x", f"c1.{int(now) + 100}.\udcff\udcfe", "c1..", "c1.1.2.3", ""):
        assert not auth.valid_session(settings, malformed, now)
    rotated = make_settings(auth={"read_token": "a-new-read-token-5e8b2c7f1a9d4036", "admin_token": ADMIN}).auth
    assert not auth.valid_session(rotated, cookie, now)
    assert not auth.valid_session(settings, "x" * 5000, now)


async def test_a_proxy_signs_in_with_the_bearer_header(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, secured())
    assert (await client.get("/", headers={"Authorization": f"Bearer {READ}"})).status == 200
    wrong = await client.get("/", headers={"Authorization": "Bearer not-a-token-at-all"}, allow_redirects=False)
    assert wrong.status == 401


async def test_cross_site_posts_and_foreign_redirects_are_refused(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, secured())
    cross = await client.post("/ui/login", data={"token": READ}, headers={"Origin": "https://evil.example"},
                              allow_redirects=False)
    assert cross.status == 403
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)",
                   "/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/ /evil.example"):
        response = await client.post("/ui/login", data={"token": READ, "next": target}, allow_redirects=False)
        assert response.headers["Location"] == "/", target
    too_big = await client.post("/ui/login", data={"token": "x" * 20_000}, allow_redirects=False)
    assert too_big.status == 413
    too_many = await client.post("/ui/login", data={f"f{index}": "1" for index in range(10)}, allow_redirects=False)
    assert too_many.status == 400


async def test_open_settings_need_no_sign_in(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, make_settings())
    assert (await client.get("/", allow_redirects=False)).status == 200


async def test_pages_carry_a_strict_policy_and_escape_what_agents_send(aiohttp_client: Client,
                                                                     simulator: tuple[Simulator, str]) -> None:
    _, base = simulator
    client = await signed_in_client(aiohttp_client)
    registered = await client.post("/api/v1/agents", headers={"Authorization": f"Bearer {ADMIN}"}, json={
        "agent_id": "agent-0", "metrics_endpoint": endpoint(base, "agent-0"),
        "info": {"role": HOSTILE, "memory_limit_bytes": str(2**30)}})
    assert registered.status == 201, await registered.text()
    collector = client.app[COLLECTOR]
    await wait_for(lambda: collector.agents["agent-0"].status.value == "active")
    tracer = client.app[TRACER]
    tracer.add(Span("t" * 32, "s1", HOSTILE, "agent-0", 1.0, end=2.0, status=STATUS_ERROR,
                    attributes={"error.message": HOSTILE}), source="otlp")
    for path in ("/", "/ui/agents/agent-0", "/ui/traces", f"/ui/traces/{'t' * 32}"):
        response = await client.get(path)
        assert response.status == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        html = await response.text()
        assert HOSTILE not in html, path
    agent_page = await (await client.get("/ui/agents/agent-0")).text()
    assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;" in agent_page
    assert "agent_cpu_usage_percent" in agent_page  # its series
    overview = await (await client.get("/")).text()
    assert '<polyline points="' in overview or "Agents" in overview


async def test_overview_lists_agents_worst_first_with_sparklines(aiohttp_client: Client,
                                                              simulator: tuple[Simulator, str]) -> None:
    sim, base = simulator
    sim.agents["agent-1"].cpu = 95.0
    settings = make_settings(agents=[{"agent_id": agent, "metrics_endpoint": endpoint(base, agent)}
                                     for agent in ("agent-0", "agent-1")])
    client = await start(aiohttp_client, settings)
    collector = client.app[COLLECTOR]
    await wait_for(lambda: all(len(collector.store.values_since(agent, "agent_cpu_usage_percent", 0)) >= 2
                               for agent in ("agent-0", "agent-1")))
    html = await (await client.get("/")).text()
    assert html.index("/ui/agents/agent-1") < html.index("/ui/agents/agent-0")  # 95 % CPU scores lower
    assert html.count('<svg class="spark"') >= 2


def test_the_waterfall_groups_by_agent_and_marks_the_critical_path() -> None:
    spans = [Span("t", "root", "plan", "planner", 0.0, end=1.0),
             Span("t", "fast", "search", "researcher", 0.4, parent_id="root", end=0.5),  # beside "slow"
             Span("t", "slow", "write", "writer", 0.3, parent_id="root", end=0.9, status=STATUS_ERROR),
             Span("t", "open", "wait", "writer", 0.95, parent_id="root")]
    trace_document = waterfall(type("S", (), {"trace_id": "t", "spans": spans})())
    assert trace_document["agents"] == ["planner", "writer", "researcher"]  # by their first span's start
    rows = {row[6]: row for row in trace_document["rows"]}
    assert rows["root"][:3] == [0.0, 1000.0, 0] and rows["root"][7] == 0 and rows["fast"][2] == 2
    assert rows["slow"][5] and rows["root"][5] and not rows["fast"][5]  # on the path: root, slow
    assert rows["slow"][4] and rows["open"][1] is None and rows["slow"][7] == 1
    assert [row[6] for row in trace_document["rows"]] == ["root", "slow", "open", "fast"]  # by agent, then start


async def test_a_malformed_cookie_is_a_sign_in_page_not_an_error(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, secured())
    for cookie in ("c1.².x", "c1.99999999999.zz", "x" * 300):
        client.session.cookie_jar.update_cookies({auth.COOKIE: cookie})
        assert (await client.get("/", allow_redirects=False)).status == 303


async def test_an_agent_reporting_nan_does_not_break_the_pages(aiohttp_client: Client,
                                                               aiohttp_server: Callable[..., Any]) -> None:
    from aiohttp import web

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="agent_cpu_usage_percent NaN\nagent_memory_usage_bytes NaN\n")
    app = web.Application()
    app.router.add_get("/metrics", metrics)
    server = await aiohttp_server(app)
    client = await start(aiohttp_client, make_settings(agents=[{"agent_id": "odd", "metrics_endpoint":
                                                                str(server.make_url("/metrics"))}]))
    collector = client.app[COLLECTOR]
    await wait_for(lambda: len(collector.store.series_values("odd", "agent_cpu_usage_percent")) >= 3)
    for path in ("/", "/ui/agents/odd"):
        assert (await client.get(path)).status == 200, path


def test_links_carry_ids_as_one_path_segment() -> None:
    from monitoring.console.handlers import TEMPLATES

    segment = TEMPLATES.filters["segment"]
    assert segment("team/planner") == "team%2Fplanner" and segment("..") == "%2E%2E" and segment("a b") == "a%20b"
