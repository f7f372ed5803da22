"""The service as an attacker meets it: scoped credentials (no trust in where a call comes from),
bounded and well-formed input or a 4xx, slow clients cut off, sources the API can't overwrite,
and a restart that loses nothing set through the API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from monitoring.app import init_app
from monitoring.credentials import PROMETHEUS_SCOPE, ingest_scope, ingest_token
from monitoring.serving import serve
from monitoring.settings import MonitoringSettings, SettingsError, load_settings
from monitoring.state import COLLECTOR, STORE, TRACER

from .conftest import make_settings
from .test_remote_write import write_request
from .test_service import wait_for

Client = Callable[..., Any]
PROJECT_DIR = Path(__file__).resolve().parents[2]
ADMIN, READ, KEY = "admin-token-9f1c3e7a5b2d8460c4e1", "read-token-9f1c3e7a5b2d8460c4e1", "ingest-key-9f1c3e7a5b2d8460c4e1"
AGENT = {"agent_id": "planner", "metrics_endpoint": "http://127.0.0.1:9/metrics"}
SPANS = {"resourceSpans": []}


def secured(**fields: Any) -> MonitoringSettings:
    return make_settings(auth={"admin_token": ADMIN, "read_token": READ, "ingest_key": KEY}, **fields)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_credential_grants_its_scope_only(aiohttp_client: Client) -> None:
    """The test client calls from loopback: nothing is granted for that."""
    client = await aiohttp_client(init_app(secured()))
    agent_token = ingest_token(KEY, "agents")
    json_body = {"Content-Type": "application/json"}
    cases = [  # (method, path, body, token, expected status)
        ("GET", "/health/live", None, None, 200), ("GET", "/metrics", None, None, 200),
        ("GET", "/api/v1/agents", None, None, 401), ("GET", "/api/v1/agents", None, agent_token, 403),
        ("GET", "/api/v1/agents", None, READ, 200), ("GET", "/api/v1/traces", None, ADMIN, 200),
        ("POST", "/api/v1/agents", AGENT, None, 401), ("POST", "/api/v1/agents", AGENT, READ, 403),
        ("POST", "/api/v1/agents", AGENT, agent_token, 403), ("POST", "/api/v1/agents", AGENT, ADMIN, 201),
        ("DELETE", "/api/v1/agents/planner", None, agent_token, 403),
        ("POST", "/v1/traces", SPANS, None, 401), ("POST", "/v1/traces", SPANS, READ, 403),
        ("POST", "/v1/traces", SPANS, agent_token, 200), ("POST", "/v1/metrics", {}, agent_token, 200),
        ("POST", "/v1/logs", {}, None, 401), ("POST", "/v1/logs", {}, agent_token, 200),
        ("POST", "/v1/traces", SPANS, ingest_token("another-key-0123456", "agents"), 401),
        ("POST", "/v1/traces", SPANS, agent_token[:-1] + "0", 401),
        ("POST", "/api/v1/spans", {"operation": "plan", "agent_id": "planner"}, agent_token, 201),
    ]
    for method, path, body, token, expected in cases:
        response = await client.request(method, path, data=None if body is None else json.dumps(body),
                                        headers={**json_body, **(bearer(token) if token else {})})
        assert response.status == expected, (method, path, token, response.status, await response.text())
        if expected == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_odd_authorization_headers_are_refused_not_crashed_on(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(secured()))
    for header in ("Bearer", "Basic YWRtaW46YWRtaW4=", f"bearer  {ADMIN}x", "Bearer tökén-ünïcödé-0123456789",
                   "Bearer \udcff\udcfe"):
        response = await client.get("/api/v1/agents", headers={"Authorization": header})
        assert response.status == 401, (header, response.status)


def test_credentials_are_required_beyond_loopback_and_never_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="beyond loopback.*auth.admin_token.*auth.read_token.*auth.ingest_key"):
        load_settings(host="0.0.0.0")
    monkeypatch.setenv("MONITORING_AUTH__ADMIN_TOKEN", "")
    with pytest.raises(SettingsError,
                       match=r"auth.admin_token \(MONITORING_AUTH__ADMIN_TOKEN\): must be at least 16 characters"):
        load_settings()
    for name, value in (("ADMIN_TOKEN", ADMIN), ("READ_TOKEN", READ), ("INGEST_KEY", KEY)):
        monkeypatch.setenv(f"MONITORING_AUTH__{name}", value)
    assert not load_settings(host="0.0.0.0").local


async def test_malformed_bodies_answer_400(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    for body in (b"[" * 30_000 + b"]" * 30_000, b'{"agent_id": "\xff\xfe"}', b"\x00\x01", b"null"):
        response = await client.post("/api/v1/agents", data=body, headers={"Content-Type": "application/json"})
        assert response.status in (400, 422), (body[:20], response.status)
        assert "error" in await response.json()


async def test_sizes_and_counts_are_capped(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings(max_alert_rules=2)))
    long_metric = {"rule_id": "r", "metric": "m" * 60_000, "threshold": 1}
    assert (await client.post("/api/v1/alert-rules", json=long_metric)).status in (413, 422)
    too_much_info = {**AGENT, "info": {f"k{index}": "v" for index in range(33)}}
    assert (await client.post("/api/v1/agents", json=too_much_info)).status == 422
    long_value = {**AGENT, "info": {"team": "v" * 257}}
    assert (await client.post("/api/v1/agents", json=long_value)).status == 422
    for index in range(2):
        assert (await client.post("/api/v1/alert-rules", json={"rule_id": f"r{index}", "threshold": 1})).status == 201
    refused = await client.post("/api/v1/alert-rules", json={"rule_id": "r2", "threshold": 1})
    assert refused.status == 409 and "max_alert_rules" in (await refused.json())["error"]
    assert (await client.post("/api/v1/alert-rules", json={"rule_id": "r1", "threshold": 2})).status == 200


async def test_listings_are_paged(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings(collection_interval=3600)))
    for index in range(5):
        await client.post("/api/v1/agents", json={**AGENT, "agent_id": f"agent-{index}"})
    first = await (await client.get("/api/v1/agents?limit=2")).json()
    assert (first["count"], first["total"], first["next_offset"]) == (2, 5, 2)
    last = await (await client.get("/api/v1/agents?limit=2&offset=4")).json()
    assert [agent["agent_id"] for agent in last["agents"]] == ["agent-4"] and last["next_offset"] is None
    for query in ("limit=0", "limit=1001", "offset=-1", "limit=x"):
        assert (await client.get(f"/api/v1/agents?{query}")).status == 400
    assert (await client.get("/api/v1/alert-rules?limit=1")).status == 200
    assert (await client.get("/api/v1/alerts?limit=1")).status == 200


async def test_slow_clients_are_cut_off() -> None:
    """Served as `python -m monitoring` serves it (serving.serve)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serving = asyncio.create_task(serve(init_app(make_settings(idle_timeout=0.3, request_timeout=0.3)),
                                        "127.0.0.1", port, 0.3))
    loop = asyncio.get_running_loop()

    async def answer_to(data: bytes) -> bytes:
        """What the server sends back (until it closes) to a client that sends `data` and then stalls."""
        for _ in range(500):  # until the server listens
            try:
                sock = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.01)
        with sock:
            sock.setblocking(False)
            await loop.sock_sendall(sock, data)
            received = b""
            while True:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout=10)
                if not chunk:
                    return received
                received += chunk

    try:
        assert await answer_to(b"GET /health/live HTTP/1.1\r\nHost: x\r\n") == b""  # headers unfinished: closed
        stalled_body = await answer_to(b"POST /api/v1/agents HTTP/1.1\r\nHost: localhost\r\n"
                                       b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"agent")
        assert stalled_body.startswith(b"HTTP/1.1 408")
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def test_the_api_cannot_replace_or_remove_static_or_discovered_agents(aiohttp_client: Client) -> None:
    settings = make_settings(collection_interval=3600, agents=[{"agent_id": "static-1",
                                                                "metrics_endpoint": "http://127.0.0.1:9/m"}])
    client = await aiohttp_client(init_app(settings))
    client.app[COLLECTOR].register("found-1", "http://127.0.0.1:9/m", source="discovery")
    for agent_id in ("static-1", "found-1"):
        replaced = await client.post("/api/v1/agents", json={**AGENT, "agent_id": agent_id})
        assert replaced.status == 409, agent_id
        assert (await client.delete(f"/api/v1/agents/{agent_id}")).status == 409
        assert client.app[COLLECTOR].agents[agent_id].metrics_endpoint == "http://127.0.0.1:9/m"


async def test_a_span_id_reused_in_another_trace_does_not_take_over(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    started = await (await client.post("/api/v1/spans", json={"operation": "plan", "agent_id": "planner"})).json()
    reused = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": started["span_id"], "name": "impostor",
        "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}
    assert (await client.post("/v1/traces", json=reused)).status == 200
    finished = await client.post(f"/api/v1/spans/{started['span_id']}/finish", json={"status": "ok"})
    assert finished.status == 200
    trace = client.app[TRACER].traces[started["trace_id"]]
    assert trace.open_spans == 0 and trace.spans[started["span_id"]].operation == "plan"


async def test_the_service_stays_live_and_small_under_junk(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    process = psutil.Process()
    before = process.memory_info().rss
    junk = [b"[" * 60_000, b"\xff" * 60_000, json.dumps({**AGENT, "info": {"k": "v" * 60_000}}).encode()]
    for round_ in range(100):
        body = junk[round_ % len(junk)]
        response = await client.post("/api/v1/agents", data=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status < 500
        response = await client.post("/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"})
        assert 400 <= response.status < 500
    assert (await client.get("/health/live")).status == 200
    assert process.memory_info().rss - before < 64 * 2**20


async def test_a_restart_loses_nothing_set_through_the_api(aiohttp_client: Client, tmp_path: Path) -> None:
    settings = make_settings(collection_interval=3600, persistence={"path": tmp_path / "state.json"})
    first = await aiohttp_client(init_app(settings))
    assert (await first.post("/api/v1/agents", json=AGENT)).status == 201
    rule = {"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent", "threshold": 80, "severity": "critical"}
    assert (await first.post("/api/v1/alert-rules", json=rule)).status == 201
    collector = first.app[COLLECTOR]
    collector.alerts.agent_down("planner", "connection refused", time.time())
    await wait_for(lambda: len(collector.alerts.active) == 1)
    before = [await (await first.get(path)).json()
              for path in ("/api/v1/agents", "/api/v1/alert-rules", "/api/v1/alerts")]
    store = first.app[STORE]
    await wait_for(lambda: store.stats.saves >= 1)  # saved within a second of the change
    metrics = await (await first.get("/metrics")).text()
    assert 'monitoring_state_saves_total{result="success"}' in metrics
    await first.close()  # the app's shutdown saves what changed since the last save

    second = await aiohttp_client(init_app(settings))
    after = [await (await second.get(path)).json()
             for path in ("/api/v1/agents", "/api/v1/alert-rules", "/api/v1/alerts")]
    assert [agent["agent_id"] for agent in after[0]["agents"]] == ["planner"]
    assert after[1]["rules"] == before[1]["rules"]
    assert [(alert["rule_id"], alert["agent_id"], alert["started_at"]) for alert in after[2]["active"]] == [
        (alert["rule_id"], alert["agent_id"], alert["started_at"]) for alert in before[2]["active"]]


async def test_an_ingestion_token_speaks_for_its_namespace_only(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(secured(collection_interval=3600)))
    client.app[COLLECTOR].register("coordinator-7f9.agents", "http://127.0.0.1:9/m", source="discovery",
                                   info={"namespace": "agents", "agent": "coordinator"})
    mine, tools = bearer(ingest_token(KEY, "agents")), bearer(ingest_token(KEY, "agents-tools"))
    started = await (await client.post("/api/v1/spans", json={"operation": "plan", "agent_id": "coordinator"},
                                       headers=mine)).json()
    # Another namespace's token can't finish that span, nor send as the coordinator.
    finish = await client.post(f"/api/v1/spans/{started['span_id']}/finish", json={"status": "error"}, headers=tools)
    assert finish.status == 403
    forged = await client.post("/api/v1/spans", json={"operation": "x", "agent_id": "coordinator",
                                                      "traceparent": started["traceparent"]}, headers=tools)
    assert forged.status == 403 and "agents-tools" in (await forged.json())["error"]
    otlp = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                            "value": {"stringValue": "coordinator"}}]},
                               "scopeSpans": [{"spans": [{"traceId": started["trace_id"], "spanId": "b7ad6b7169203331",
                                                          "name": "forged", "startTimeUnixNano": "1",
                                                          "endTimeUnixNano": "2"}]}]}]}
    answer = await (await client.post("/v1/traces", json=otlp, headers=tools)).json()
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    # Its own agents, and agents discovery doesn't know, are fine; and labelled with the namespace.
    assert (await client.post("/api/v1/spans", json={"operation": "run", "agent_id": "executor",
                                                     "traceparent": started["traceparent"]},
                              headers=tools)).status == 201
    assert (await client.post(f"/api/v1/spans/{started['span_id']}/finish", json={}, headers=mine)).status == 200
    analysis = await (await client.get(f"/api/v1/traces/{started['trace_id']}", headers=bearer(READ))).json()
    assert analysis["agents"]["coordinator"]["namespaces"] == ["agents"]
    assert analysis["agents"]["executor"]["namespaces"] == ["agents-tools"]


async def test_numbers_too_long_to_read_answer_400(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    body = b'{"operation": "x", "agent_id": "a", "metadata": {"n": ' + b"9" * 5000 + b"}}"
    response = await client.post("/api/v1/spans", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400


def _remote_write_body(namespaces: list[str], now_ms: int) -> bytes:
    """A remote-write request with one `up` series per namespace (agent `a-<namespace>`)."""
    return write_request([({"__name__": "up", "agent_id": f"a-{namespace}", "namespace": namespace}, [(1, now_ms)])
                          for namespace in namespaces])


async def test_a_namespace_named_like_a_role_gets_a_token_that_writes_only_that_namespace(
        aiohttp_client: Client) -> None:
    """Token kinds and namespaces can't collide: the namespace `prometheus-remote-write` (a legal name) gets a
    namespace token, not the Prometheus role's token that writes every namespace."""
    client = await aiohttp_client(init_app(secured(source="remote_write")))
    collector = client.app[COLLECTOR]
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    namespace_token = ingest_token(KEY, "prometheus-remote-write")  # what the program gives that namespace
    assert namespace_token != ingest_token(KEY, PROMETHEUS_SCOPE)
    now_ms = int(collector.clock() * 1000)
    body = _remote_write_body(["prometheus-remote-write", "agents", "billing"], now_ms)
    answer = await client.post("/api/v1/write", data=body, headers={**headers, **bearer(namespace_token)})
    assert answer.status == 403 and not collector.agents  # other namespaces' series: refused, nothing stored
    own = _remote_write_body(["prometheus-remote-write"], now_ms)
    answer = await client.post("/api/v1/write", data=own, headers={**headers, **bearer(namespace_token)})
    assert answer.status == 204, await answer.text()
    assert set(collector.agents) == {"a-prometheus-remote-write"}
    answer = await client.post("/api/v1/write", data=body, headers={**headers,
                                                                     **bearer(ingest_token(KEY, PROMETHEUS_SCOPE))})
    assert answer.status == 204 and set(collector.agents) == {f"a-{name}" for name in ("prometheus-remote-write",
                                                                                       "agents", "billing")}


def test_token_text_and_hmac_carry_the_kind() -> None:
    """A namespace token and a role token of the same name differ in their text and in their HMAC, so neither
    can be turned into the other; each is recognised as what it was issued for."""
    namespace, role = ingest_token(KEY, "prometheus-remote-write"), ingest_token(KEY, PROMETHEUS_SCOPE)
    assert namespace.split(".")[:3] == ["mi2", "ns", "prometheus-remote-write"]
    assert role.split(".")[:3] == ["mi2", "role", "prometheus-remote-write"]
    assert namespace.rsplit(".", 1)[1] != role.rsplit(".", 1)[1]
    assert ingest_scope(KEY, namespace.encode()) == "prometheus-remote-write"
    assert ingest_scope(KEY, role.encode()) == PROMETHEUS_SCOPE != "prometheus-remote-write"
    swapped = role.replace(".role.", ".ns.", 1)  # a role's HMAC under the namespace kind is not a token
    assert ingest_scope(KEY, swapped.encode()) is None
    with pytest.raises(ValueError, match="no role"):
        ingest_token(KEY, "role:admin")
    with pytest.raises(ValueError, match="DNS label"):
        ingest_token(KEY, "ns.agents")  # neither a namespace nor a role


def test_the_credentials_cli_prints_namespace_and_role_tokens() -> None:
    environment = {**os.environ, "MONITORING_AUTH__INGEST_KEY": KEY}
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "monitoring.credentials", *args], cwd=PROJECT_DIR,
                              env=environment, capture_output=True, text=True, timeout=60)
    assert cli("agents").stdout.strip() == ingest_token(KEY, "agents")
    assert cli("--role", "prometheus-remote-write").stdout.strip() == ingest_token(KEY, PROMETHEUS_SCOPE)
    refused = cli("--role", "agents")
    assert refused.returncode == 2 and "prometheus-remote-write" in refused.stderr
    refused = cli("Agents_Dev")
    assert refused.returncode == 2 and "not a namespace name" in refused.stderr and "--role" in refused.stderr
    environment["MONITORING_AUTH__INGEST_KEY"] = "changeme"  # the service refuses such a key: no token from it
    refused = cli("agents")
    assert refused.returncode == 2 and not refused.stdout and "MONITORING_AUTH__INGEST_KEY" in refused.stderr


async def test_a_token_of_the_former_format_is_told_so(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(secured()))
    former = "mi1.agents." + "0" * 64
    answer = await client.post("/api/v1/spans", json={"operation": "x", "agent_id": "a"}, headers=bearer(former))
    assert answer.status == 401 and "former format" in (await answer.json())["error"]


# Item 20 (d): placeholder-shaped or low-entropy credentials are refused at start-up, on loopback too.
WEAK = {
    "<generated by RandomPassword monitoring-api-token at pulumi up>": "placeholder",  # the old offline render's
    "<secret multi-agent-system:apiToken>": "placeholder",
    "changeme-changeme-42": "placeholder",
    "${MONITORING_ADMIN_TOKEN}": "placeholder",
    "please-replace-me-0000": "placeholder",
    "xxxxxxxxxxxxxxxxxxxxxxxx": "repeats",
    "abcabcabcabcabcabcabcab": "repeats",
    "passwordpassword": "repeats",
    "password-password-pass": "repeats",
    "qwertyqwerty12121212": "entropy",
    "0000000000000000000001": "entropy",
    # Runs and words a person makes up (the attacker's list): long enough, varied enough, guessable.
    "password1234567890": "entropy",
    "0123456789abcdef": "entropy",
    "mysupersecrettoken": "entropy",
    "abcdefghijklmnopqrstuvwxyz": "entropy",
    "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210": "entropy",
}


@pytest.mark.parametrize("weak", sorted(WEAK))
def test_placeholder_shaped_or_low_entropy_credentials_are_refused(weak: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, setting in (("MONITORING_AUTH__ADMIN_TOKEN", "auth.admin_token"),
                              ("MONITORING_AUTH__INGEST_KEY", "auth.ingest_key")):
        monkeypatch.setenv(variable, weak)
        with pytest.raises(SettingsError) as caught:
            load_settings()  # on loopback too: a configured credential must be one
        message = str(caught.value)
        assert f"{setting} ({variable}): " in message and "openssl rand -hex 24" in message, message
        assert {"placeholder": "placeholder", "repeats": "repeat", "entropy": "entropy"}[WEAK[weak]] in message
        assert weak not in message  # a credential is never echoed
        monkeypatch.delenv(variable)


def test_generated_credentials_pass() -> None:
    """What `openssl rand -hex 24` and Pulumi's RandomPassword (length 40, no specials) produce is accepted."""
    hex_tokens = [subprocess.run(["openssl", "rand", "-hex", "24"], capture_output=True, text=True,
                                 check=True).stdout.strip() for _ in range(50)]
    alphabet = string.ascii_letters + string.digits  # RandomPassword(length=40, special=False)
    passwords = ["".join(secrets.choice(alphabet) for _ in range(40)) for _ in range(200)]
    hex_tokens += [secrets.token_hex(24) for _ in range(200)]
    for token in hex_tokens + passwords:
        settings = make_settings(auth={"admin_token": token, "read_token": token[::-1], "ingest_key": token})
        assert settings.auth.admin_token is not None


@pytest.mark.parametrize(("path", "body", "content_type"), [
    ("/v1/traces", b"", "application/x-protobuf"),
    ("/v1/metrics", b"", "application/x-protobuf"),
    ("/api/v1/spans", b'{"operation": "x", "agent_id": "a"}', "application/json"),
])
async def test_the_prometheus_role_token_writes_remote_write_only(aiohttp_client: Client, path: str, body: bytes,
                                                                  content_type: str) -> None:
    """Least privilege: the token that writes every namespace's series is good for remote-write and nothing else."""
    client = await aiohttp_client(init_app(secured(source="remote_write")))
    role = bearer(ingest_token(KEY, PROMETHEUS_SCOPE))
    answer = await client.post(path, data=body, headers={"Content-Type": content_type, **role})
    assert answer.status == 403 and "role" in (await answer.json())["error"]
    assert not client.app[COLLECTOR].agents
    own = _remote_write_body(["agents"], int(client.app[COLLECTOR].clock() * 1000))
    answer = await client.post("/api/v1/write", data=own, headers={"Content-Encoding": "snappy",
                                                                    "Content-Type": "application/x-protobuf", **role})
    assert answer.status == 204, await answer.text()
