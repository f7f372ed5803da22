"""The scrape-target policy (issue 12, finding 2): API-registered agents cannot turn the service
into a proxy that reads back internal addresses. Real aiohttp servers on loopback; names are
resolved by a fake resolver behind the real GuardedResolver."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer, unused_port

from monitoring.app import init_app
from monitoring.collector import Collector
from monitoring.settings import MonitoringSettings
from monitoring.state import COLLECTOR
from monitoring.targets import TargetPolicy, TargetRefused, guarded_session

from .conftest import make_settings
from .test_service import wait_for

Client = Callable[..., Any]
OWN_PORT = 8000
SECRET = "AKIAIOSFODNN7EXAMPLE-secret-token"
ADMIN = "admin-token-9f1c3e7a5b2d8460c4e1"
# Beyond loopback, the service needs its credentials.
CLUSTER_AUTH = {"admin_token": ADMIN, "read_token": "read-token-9f1c3e7a5b2d8460c4e1",
                "ingest_key": "ingest-key-9f1c3e7a5b2d8460c4e1"}


def cluster_settings(**fields: Any) -> MonitoringSettings:
    return make_settings(host="0.0.0.0", auth=CLUSTER_AUTH, **fields)


def local_policy(**fields: Any) -> TargetPolicy:
    return TargetPolicy.from_settings(make_settings(**fields), environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
                                      own_addresses=())


def cluster_policy(**fields: Any) -> TargetPolicy:
    settings = cluster_settings(port=OWN_PORT, **fields)
    return TargetPolicy.from_settings(settings, environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
                                      own_addresses=[])


class MapResolver(AbstractResolver):
    """DNS as the test says: name -> addresses (what a hostile or rebinding DNS server could answer)."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host not in self.names:
            raise OSError(f"{host}: unknown name")
        return [ResolveResult(hostname=host, host=address, port=port,
                              family=socket.AF_INET6 if ":" in address else socket.AF_INET, proto=0,
                              flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
                for address in self.names[host]]

    async def close(self) -> None:
        pass


class Target:
    """A loopback server: /metrics (Prometheus text), /secret (a non-metrics body), /redirect, /error."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self.redirect_to = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{what}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.headers.get("Authorization")))
        what = request.match_info["what"]
        if what == "metrics":
            return web.Response(text="# TYPE up gauge\nup 1\n", content_type="text/plain")
        if what == "secret":
            return web.Response(text=f"{SECRET}\nsecond line\n", content_type="text/plain")
        if what == "secret-json":
            return web.json_response({"token": SECRET})
        if what == "error":
            return web.Response(status=500, text=SECRET)
        if what == "redirect":
            raise web.HTTPFound(self.redirect_to)
        return web.Response(status=404, text=SECRET)


@pytest.fixture
async def target(aiohttp_server: Callable[..., Any]) -> tuple[Target, int]:
    fake = Target()
    server: TestServer = await aiohttp_server(fake.app())
    assert server.port is not None
    return fake, server.port


def collector_with(settings: MonitoringSettings, names: dict[str, list[str]],
                   policy: TargetPolicy | None = None) -> Collector:
    collector = Collector(settings, on_alert_change=lambda alert: None, targets=policy)
    collector.session = aiohttp.ClientSession()
    collector.guarded_session = guarded_session(collector.targets, 8, resolver=MapResolver(names))
    return collector


async def close(collector: Collector) -> None:
    for session in (collector.session, collector.guarded_session):
        if session is not None:
            await session.close()


# --- the policy on URLs (registration) --------------------------------------------------------

ALWAYS_REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]:9100/metrics", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://0.0.0.0:9100/metrics", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("https://kubernetes.default.svc/api/v1/secrets", "Kubernetes API server"),
    ("https://kubernetes.default.svc.cluster.local./api", "Kubernetes API server"),
    ("https://kubernetes/api", "Kubernetes API server"),
    ("https://10.96.0.1:443/api", "Kubernetes API server"),  # KUBERNETES_SERVICE_HOST
    ("http://2852039166/latest/meta-data/", "canonical"),    # 169.254.169.254 as one number
    ("http://0177.0.0.1:9100/", "canonical"),
    (f"http://127.0.0.1:{OWN_PORT}/api/v1/agents", "itself"),
    (f"http://[::1]:{OWN_PORT}/metrics", "itself"),
    ("ftp://agent.agents.svc/metrics", "http and https"),
    ("http://scraper:pw@planner.agents.svc/metrics", "credentials"),
]


@pytest.mark.parametrize("mode", ["local", "cluster"])
@pytest.mark.parametrize(("url", "reason"), ALWAYS_REFUSED)
def test_forbidden_targets_are_refused_in_both_modes(mode: str, url: str, reason: str) -> None:
    policy = local_policy(port=OWN_PORT) if mode == "local" else cluster_policy()
    with pytest.raises(TargetRefused, match=reason) as refused:
        policy.check_url(url, "metrics_endpoint")
    assert str(refused.value).startswith("metrics_endpoint: ")


def test_local_mode_allows_loopback_agents_and_other_hosts_but_not_itself() -> None:
    policy = local_policy(port=OWN_PORT)
    for url in ("http://127.0.0.1:9100/metrics", "http://localhost:9100/metrics", "http://[::1]:9100/",
                "http://10.1.2.3:9100/metrics", "https://agents.example.com/metrics"):
        policy.check_url(url)
    with pytest.raises(TargetRefused, match="itself"):
        policy.check_url(f"http://localhost:{OWN_PORT}/metrics")
    with pytest.raises(TargetRefused, match="itself"):
        policy.check_resolved("anything.example", "127.0.0.1", OWN_PORT)
    with pytest.raises(TargetRefused, match="link-local"):
        policy.check_resolved("metadata.google.internal", "169.254.169.254", 80)
    policy.check_resolved("agent.example", "127.0.0.1", 9100)


def test_cluster_mode_allows_agent_services_only() -> None:
    policy = cluster_policy(discovery={"namespaces": ["agents", "tools"]})
    for url in ("http://planner.agents.svc:9090/metrics", "http://planner.agents.svc.cluster.local:9090/metrics",
                "http://search.tools.svc/metrics"):
        policy.check_url(url)
    refused = {
        "http://planner.kube-system.svc/metrics": "not an agent namespace",
        "http://kubernetes.default.svc.cluster.local/": "Kubernetes API server",
        "http://planner.agents.svc.other.domain/metrics": "not an agent address",
        "http://planner.agents/metrics": "not an agent address",
        "http://agents.example.com/metrics": "not an agent address",
        "http://localhost:9100/metrics": "not an agent address",
        "http://127.0.0.1:9100/metrics": "own address",
        "http://10.0.0.5:9090/metrics": "not the IP of a running agent pod",
        "http://10-0-0-5.agents.pod.cluster.local:9090/metrics": "does not name a running agent pod",
    }
    for url, reason in refused.items():
        with pytest.raises(TargetRefused, match=reason):
            policy.check_url(url)
    # An explicit allow-list replaces the discovery namespaces.
    explicit = cluster_policy(targets={"namespaces": ["team-a"]})
    explicit.check_url("http://planner.team-a.svc/metrics")
    with pytest.raises(TargetRefused, match="team-a"):
        explicit.check_url("http://planner.agents.svc/metrics")


def test_cluster_mode_allows_pod_ips_while_discovery_sees_them() -> None:
    policy = cluster_policy()
    policy.pod_seen("agents", "10.0.0.5")
    policy.pod_seen("kube-system", "10.0.0.6")
    policy.check_url("http://10.0.0.5:9090/metrics")
    policy.check_url("http://10-0-0-5.agents.pod:9090/metrics")
    policy.check_resolved("10-0-0-5.agents.pod", "10.0.0.5", 9090)
    with pytest.raises(TargetRefused, match="not the IP of a running agent pod"):
        policy.check_url("http://10.0.0.6:9090/metrics")  # a pod, but not in an agent namespace
    with pytest.raises(TargetRefused, match="not to a discovered agent pod"):
        policy.check_resolved("10-0-0-5.agents.pod", "10.0.0.6", 9090)
    policy.pod_gone("kube-system", "10.0.0.5")  # another namespace's pod: leaves the agent pod alone
    policy.check_url("http://10.0.0.5:9090/metrics")
    policy.pod_gone("agents", "10.0.0.5")
    with pytest.raises(TargetRefused):
        policy.check_url("http://10.0.0.5:9090/metrics")


def test_cluster_mode_checks_what_service_names_resolve_to() -> None:
    policy = cluster_policy()
    policy.check_resolved("planner.agents.svc", "10.100.3.7", 9090)
    for address, reason in (("169.254.169.254", "link-local"), ("10.96.0.1", "Kubernetes API server"),
                            ("127.0.0.1", "own address"), ("::1", "own address")):
        with pytest.raises(TargetRefused, match=reason):
            policy.check_resolved("planner.agents.svc", address, 9090)


# --- the API ---------------------------------------------------------------------------------

async def test_api_answers_422_for_forbidden_targets(aiohttp_client: Client) -> None:
    port = unused_port()
    client = await aiohttp_client(init_app(make_settings(port=port)), server_kwargs={"port": port})
    cases = {
        "http://scraper:hunter2@127.0.0.1:9100/metrics": "credentials",
        "http://169.254.169.254/latest/meta-data/": "link-local",
        "https://kubernetes.default.svc/api": "Kubernetes API server",
        f"http://127.0.0.1:{port}/api/v1/agents": "itself",
        f"http://localhost:{port}/metrics": "itself",
    }
    for url, reason in cases.items():
        response = await client.post("/api/v1/agents", json={"agent_id": "evil", "metrics_endpoint": url})
        body = await response.json()
        assert response.status == 422, (url, body)
        assert body["error"].startswith("metrics_endpoint: ") and reason in body["error"], (url, body)
        assert "hunter2" not in body["error"]
    response = await client.post("/api/v1/agents", json={
        "agent_id": "evil", "metrics_endpoint": "http://127.0.0.1:9100/metrics",
        "health_endpoint": "http://user:pw@127.0.0.1:9100/health"})
    assert response.status == 422 and (await response.json())["error"].startswith("health_endpoint: ")
    assert not client.app[COLLECTOR].agents


async def test_cluster_mode_api_accepts_agent_services_and_refuses_other_namespaces(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(cluster_settings(discovery={"namespaces": ["agents"]})))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    accepted = await client.post("/api/v1/agents", headers=admin, json={
        "agent_id": "planner", "metrics_endpoint": "http://planner.agents.svc.cluster.local:9090/metrics"})
    assert accepted.status == 201, await accepted.text()
    refused = await client.post("/api/v1/agents", headers=admin, json={
        "agent_id": "thief", "metrics_endpoint": "http://vault.kube-system.svc:8200/v1/secret"})
    assert refused.status == 422 and "not an agent namespace" in (await refused.json())["error"]
    assert set(client.app[COLLECTOR].agents) == {"planner"}


# --- connect time: names, redirects, credentials ---------------------------------------------

async def test_names_resolving_to_forbidden_addresses_are_not_scraped(target: tuple[Target, int]) -> None:
    _, port = target
    collector = collector_with(make_settings(port=OWN_PORT), {
        "agent.test": ["127.0.0.1"], "rebound.test": ["169.254.169.254"],
        "mixed.test": ["169.254.169.254", "127.0.0.1"], "myself.test": ["127.0.0.1"]})
    try:
        good = collector.register("good", f"http://agent.test:{port}/metrics")
        rebound = collector.register("rebound", f"http://rebound.test:{port}/metrics")  # passes: a name
        mixed = collector.register("mixed", f"http://mixed.test:{port}/metrics")
        myself = collector.register("myself", f"http://myself.test:{OWN_PORT}/metrics")
        for state in (good, rebound, mixed, myself):
            await collector.scrape_once(state)
        assert good.last_error is None and good.status.value == "active"
        assert rebound.last_error == "address not allowed"
        assert myself.last_error == "address not allowed"
        assert mixed.last_error is None  # only the allowed address was dialled
    finally:
        await close(collector)


async def test_ip_literals_are_checked_before_each_request(target: tuple[Target, int]) -> None:
    """aiohttp never asks the resolver about an IP literal, so the collector checks it itself."""
    fake, port = target
    policy = cluster_policy()
    collector = collector_with(cluster_settings(), {}, policy)
    try:
        # A pod IP accepted while discovery saw it, scraped after the pod is gone.
        policy.pod_seen("agents", "10.0.0.5")
        state = collector.register("pod", "http://10.0.0.5:9/metrics")
        policy.pod_gone("agents", "10.0.0.5")
        await collector.scrape_once(state)
        assert state.last_error == "address not allowed"
        # An API agent is never dialled through the trusted session, even at a loopback literal.
        loopback = collector.register("loopback", f"http://127.0.0.1:{port}/metrics", source="static")
        loopback.source = "api"
        await collector.scrape_once(loopback)
        assert loopback.last_error == "address not allowed" and not fake.requests
    finally:
        await close(collector)


async def test_redirects_are_not_followed(target: tuple[Target, int]) -> None:
    fake, port = target
    collector = collector_with(make_settings(port=OWN_PORT), {"agent.test": ["127.0.0.1"]})
    try:
        for redirect_to in ("http://169.254.169.254/latest/meta-data/", f"http://127.0.0.1:{port}/metrics"):
            fake.redirect_to = redirect_to
            state = collector.register("redirecting", f"http://agent.test:{port}/redirect")
            await collector.scrape_once(state)
            assert state.last_error == "redirect refused"
        static = collector.register("static", f"http://127.0.0.1:{port}/redirect", source="static")
        await collector.scrape_once(static)
        assert static.last_error == "redirect refused"  # trusted agents don't follow redirects either
        assert [path for path, _ in fake.requests] == ["/redirect"] * 3
    finally:
        await close(collector)


async def test_credentials_in_a_url_are_never_sent(target: tuple[Target, int]) -> None:
    fake, port = target
    collector = collector_with(make_settings(), {})
    try:
        state = collector.register("static", f"http://scraper:hunter2@127.0.0.1:{port}/metrics", source="static")
        await collector.scrape_once(state)
        assert state.last_error is None and fake.requests == [("/metrics", None)]
    finally:
        await close(collector)


# --- nothing the target sends comes back --------------------------------------------------------

async def test_failure_texts_are_fixed(target: tuple[Target, int]) -> None:
    _, port = target
    collector = collector_with(make_settings(), {})
    try:
        expected = {"secret": "not a metrics body", "secret-json": "not a metrics body", "error": "HTTP 500",
                    "missing": "HTTP 404"}
        for path, reason in expected.items():
            state = collector.register(path, f"http://127.0.0.1:{port}/{path}")
            await collector.scrape_once(state)
            assert state.last_error == reason
        refused = collector.register("refused", f"http://127.0.0.1:{unused_port()}/metrics")
        await collector.scrape_once(refused)
        assert refused.last_error == "connection refused"
    finally:
        await close(collector)


async def test_a_secret_body_never_reaches_the_api_or_the_alerts(aiohttp_client: Client,
                                                                 aiohttp_server: Callable[..., Any],
                                                                 target: tuple[Target, int]) -> None:
    _, port = target
    received: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({})

    receiver = web.Application()
    receiver.router.add_post("/{tail:.*}", receive)
    sink: TestServer = await aiohttp_server(receiver)
    settings = make_settings(alertmanager={"url": str(sink.make_url("/"))},
                             webhook={"url": str(sink.make_url("/hook"))})
    client = await aiohttp_client(init_app(settings))
    # localhost goes through the real resolver (getaddrinfo) behind the guard; IP literals skip it.
    for agent_id, url in (("leaky-secret", f"http://127.0.0.1:{port}/secret"),
                          ("leaky-error", f"http://127.0.0.1:{port}/error"),
                          ("leaky-json", f"http://localhost:{port}/secret-json")):
        response = await client.post("/api/v1/agents", json={"agent_id": agent_id, "metrics_endpoint": url})
        assert response.status == 201
    collector = client.app[COLLECTOR]
    await wait_for(lambda: len(collector.alerts.active) == 3 and len(received) >= 2, timeout=8)
    assert collector.agents["leaky-json"].last_error == "not a metrics body"
    agents = await (await client.get("/api/v1/agents")).text()
    alerts = await (await client.get("/api/v1/alerts")).text()
    assert "not a metrics body" in agents and "HTTP 500" in agents
    descriptions = [alert.description for alert in collector.alerts.active.values()]
    assert "agent leaky-secret cannot be scraped: not a metrics body" in descriptions
    for text in (agents, alerts, *descriptions, *(body.decode() for body in received)):
        assert SECRET not in text and "second line" not in text
    assert any(json.loads(body) for body in received)
