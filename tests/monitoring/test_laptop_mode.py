"""Laptop mode (no credentials, loopback) against a web page: a cross-site form can't write through the JSON API
(CSRF) and a foreign Host is not served (DNS rebinding) (issue 23 item 9)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from monitoring.app import init_app
from monitoring.credentials import ingest_token
from monitoring.state import COLLECTOR, SETTINGS

from .conftest import make_settings
from .test_security import ADMIN, KEY, bearer, secured

Client = Callable[..., Any]
RULE = {"rule_id": "Forged", "metric": "cpu", "threshold": 1}
WRITES = [("/api/v1/alert-rules", RULE),
          ("/api/v1/agents", {"agent_id": "forged", "metrics_endpoint": "http://127.0.0.1:9/metrics"}),
          ("/api/v1/spans", {"operation": "plan", "agent_id": "planner"}),
          ("/api/v1/spans/abc/finish", {"status": "ok"})]
# What a cross-site <form> or a "simple" fetch() may send without a CORS preflight.
SIMPLE_TYPES = ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x", None]


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
async def test_a_cross_site_form_post_creates_no_rule(aiohttp_client: Client, content_type: str | None) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    headers = {"Origin": "https://evil.example", **({"Content-Type": content_type} if content_type else {})}
    for path, body in WRITES:
        response = await client.post(path, data=json.dumps(body).encode(), headers=headers)
        assert response.status == 415, (path, content_type, response.status)
        error = (await response.json())["error"]
        assert "application/json" in error and "Content-Type" in error, error
    assert client.app[COLLECTOR].rules.all() == [] and "forged" not in client.app[COLLECTOR].agents


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/vnd.monitoring+json"])
async def test_json_content_types_are_accepted(aiohttp_client: Client, content_type: str) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    response = await client.post("/api/v1/alert-rules", data=json.dumps(RULE), headers={"Content-Type": content_type})
    assert response.status == 201, await response.text()


async def test_credentials_do_not_lift_the_json_requirement(aiohttp_client: Client) -> None:
    """Every JSON API write, with or without credentials configured."""
    client = await aiohttp_client(init_app(secured()))
    response = await client.post("/api/v1/alert-rules", data=json.dumps(RULE),
                                 headers={"Content-Type": "text/plain", **bearer(ADMIN)})
    assert response.status == 415
    spans = await client.post("/api/v1/spans", data=b'{"operation": "plan", "agent_id": "planner"}',
                              headers={"Content-Type": "text/plain", **bearer(ingest_token(KEY, "agents"))})
    assert spans.status == 415


async def test_other_bodies_keep_their_own_content_types(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    otlp = await client.post("/v1/traces", data=b'{"resourceSpans": []}', headers={"Content-Type": "application/json"})
    assert otlp.status == 200
    assert (await client.post("/v1/traces", data=b"x", headers={"Content-Type": "text/plain"})).status == 415
    assert (await client.delete("/api/v1/agents/nobody")).status == 404  # no body: no content type needed


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "localhost.evil.example",
                                  "192.168.1.5:8000", "[::2]", "[::1]x", "localhost:notaport"])
async def test_a_foreign_host_is_not_served_without_credentials(aiohttp_client: Client, host: str) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    for method, path in [("GET", "/api/v1/alerts"), ("GET", "/api/v1/agents"), ("GET", "/"), ("GET", "/ui/alerts"),
                         ("POST", "/api/v1/alert-rules"), ("POST", "/v1/traces")]:
        response = await client.request(method, path, headers={"Host": host, "Content-Type": "application/json"},
                                        data=json.dumps(RULE) if method == "POST" else None, allow_redirects=False)
        assert response.status == 421, (host, path, response.status)
        error = (await response.json())["error"]
        assert "loopback" in error and "MONITORING_AUTH__READ_TOKEN" in error, error
    assert client.app[COLLECTOR].rules.all() == []
    # Listening on loopback, the open routes too: a rebinding page reads neither /metrics nor the sign-in page.
    for path in ("/metrics", "/health/live", "/ui/login", "/ui/static/console.css", "/nowhere"):
        response = await client.get(path, headers={"Host": host}, allow_redirects=False)
        assert response.status == 421, (host, path, response.status)


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:8000",
                                  "[::1]", "[::1]:8000"])
async def test_loopback_host_names_are_served(aiohttp_client: Client, host: str) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    assert (await client.get("/api/v1/alerts", headers={"Host": host})).status == 200
    assert (await client.get("/", headers={"Host": host})).status == 200


async def test_with_credentials_any_host_is_served(aiohttp_client: Client) -> None:
    """Beyond loopback the pod is reached through service names and pod IPs (kubelets, Prometheus): the open
    routes answer any Host, the credentials guard the rest."""
    client = await aiohttp_client(init_app(secured(host="0.0.0.0")))
    for host in ("monitoring.monitoring.svc:8000", "10.1.2.3:8000"):
        response = await client.get("/api/v1/alerts", headers={"Host": host, **bearer(ADMIN)})
        assert response.status == 200
        for path in ("/metrics", "/health/live", "/ui/login"):
            assert (await client.get(path, headers={"Host": host})).status == 200, (host, path)


async def test_on_loopback_credentials_do_not_open_foreign_hosts(aiohttp_client: Client) -> None:
    """Listening on loopback only, a foreign Host is a rebinding page whatever the credentials: refused on
    every route, open ones included (issue 23 follow-up)."""
    client = await aiohttp_client(init_app(secured()))
    assert client.app[SETTINGS].local
    for path, headers in [("/metrics", {}), ("/health/ready", {}), ("/ui/login", {}),
                          ("/api/v1/alerts", bearer(ADMIN))]:
        response = await client.get(path, headers={"Host": "rebind.evil.example:8000", **headers})
        assert response.status == 421, (path, response.status)
        assert "loopback" in (await response.json())["error"]
        assert (await client.get(path, headers={"Host": "localhost:8000", **headers})).status != 421
