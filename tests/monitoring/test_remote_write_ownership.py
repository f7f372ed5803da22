"""Remote-write ownership that can't be squatted, and room that adds up (issue 23, item 3's follow-up findings).

An attacker holding one namespace's ingestion token tried to fail agents that aren't its own (a static agent
has no owner) and to squat agent ids before their real namespace writes them (first writer bound); and two
namespaces, each within its default quota, filled the store's global series budget so a third namespace's new
series were dropped silently behind a 204."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as kubernetes

from monitoring.credentials import PROMETHEUS_SCOPE
from monitoring.discovery import watch_pods
from monitoring.settings import DiscoverySettings, MonitoringSettings, SettingsError, load_settings
from monitoring.state import COLLECTOR

from .test_remote_write import ADMIN, HEADERS, agent, start, write_request
from .test_remote_write_hostile import metrics, now_ms, write

Client = Callable[..., Any]
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
HIGH_CPU = [{"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent", "threshold": 80, "severity": "critical"}]
BILLING = {"agent_id": "billing", "metrics_endpoint": "http://127.0.0.1:18999/metrics",
           "info": {"namespace": "billing-ns"}}


def rejected(text: str, reason: str) -> float:
    prefix = f'monitoring_remote_write_rejected_total{{reason="{reason}"}} '
    return next((float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


async def error(response: Any) -> str:
    return str((await response.json())["error"])


# --- item 1 (a): a namespace token never writes an agent registered from settings, the API or discovery ---------

async def test_a_namespace_token_cannot_fail_a_static_or_api_agent(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, agents=[BILLING], alert_rules=HIGH_CPU, health={"failures_before_alert": 1})
    collector = client.app[COLLECTOR]
    registered = await client.post("/api/v1/agents", headers=ADMIN_HEADERS, json={
        "agent_id": "ledger", "metrics_endpoint": "http://127.0.0.1:18998/metrics"})
    assert registered.status == 201, await registered.text()
    stamp = now_ms()
    for agent_id, where in (("billing", "settings"), ("ledger", "API")):
        for namespace in ("evil", "billing-ns"):  # not even the namespace its info names: it isn't remote-written
            forged = [(agent("up", agent_id, namespace), [(0, stamp)]),
                      (agent("agent_cpu_usage_percent", agent_id, namespace), [(99, stamp)])]
            response = await write(client, forged, namespace)
            assert response.status == 403, (agent_id, namespace)
            assert where in await error(response) and "prometheus-remote-write" in await error(response)
    assert collector.alerts.active == {}
    assert all(collector.agents[name].consecutive_failures == 0 for name in ("billing", "ledger"))
    assert collector.store.series_count("billing") == 0 and collector.ownership.owner("billing") is None
    assert rejected(await metrics(client), "registered_agent") == 4
    # Prometheus' token (and the admin token) still write them: it scraped them.
    assert (await write(client, [(agent("up", "billing", "billing-ns"), [(0, stamp + 1)])],
                        PROMETHEUS_SCOPE)).status == 204
    assert [alert.rule_id for alert in collector.alerts.active.values()] == ["AgentUnreachable"]


# --- item 1 (b): a namespace's own binding is a claim that trusted sources override ------------------------------

async def test_a_squatted_agent_goes_back_to_the_namespace_prometheus_reports(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, alert_rules=HIGH_CPU, health={"failures_before_alert": 1})
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    squat = [(agent("up", "payments", "evil"), [(1, stamp)]),
             ({**agent("squatted_metric", "payments", "evil"), "junk": "x" * 500}, [(1, stamp)])]
    assert (await write(client, squat, "evil")).status == 204  # nobody had named it: a claim
    assert collector.ownership.usage("evil").series == 1

    real = [(agent("up", "payments", "payments-ns"), [(0, stamp + 1)]),
            (agent("agent_cpu_usage_percent", "payments", "payments-ns"), [(99, stamp + 1)])]
    response = await write(client, real, PROMETHEUS_SCOPE)
    assert response.status == 204, await response.text()
    assert collector.agent_namespaces("payments") == {"payments-ns"}
    # The squatter's share is freed and what it wrote for the agent is gone.
    assert collector.ownership.usage("evil").agents == 0 and collector.ownership.usage("evil").series == 0
    assert collector.store.series_values("payments", "squatted_metric") == []
    assert collector.agents["payments"].info.get("namespace") == "payments-ns"
    assert collector.agents["payments"].status.value == "unhealthy"
    assert sorted(alert.rule_id for alert in collector.alerts.active.values()) == ["AgentUnreachable", "HighCpu"]

    # The real namespace's own token writes its agent; the squatter is refused from now on.
    own = [(agent("agent_cpu_usage_percent", "payments", "payments-ns"), [(98, stamp + 2)])]
    assert (await write(client, own, "payments-ns")).status == 204
    assert collector.store.series_values("payments", "agent_cpu_usage_percent") == [99, 98]
    again = await write(client, [(agent("up", "payments", "evil"), [(1, stamp + 3)])], "evil")
    assert again.status == 403 and "payments-ns" in await error(again)
    assert collector.agents["payments"].status.value == "unhealthy"
    assert rejected(await metrics(client), "agent_of_another_namespace") == 1


async def test_a_trusted_write_confirms_a_claim_of_the_same_namespace(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    mine = [(agent("up", "planner", "team-a"), [(1, stamp)]),
            (agent("agent_cpu_usage_percent", "planner", "team-a"), [(10, stamp)])]
    assert (await write(client, mine, "team-a")).status == 204
    confirm = [(agent("agent_cpu_usage_percent", "planner", "team-a"), [(20, stamp + 1)])]
    assert (await write(client, confirm, PROMETHEUS_SCOPE)).status == 204
    assert collector.store.series_values("planner", "agent_cpu_usage_percent") == [10, 20]  # nothing dropped
    # Confirmed by a trusted source, the binding holds against another trusted write.
    other = [(agent("agent_cpu_usage_percent", "planner", "team-b"), [(99, stamp + 2)])]
    assert (await write(client, other, PROMETHEUS_SCOPE)).status == 403
    assert collector.agent_namespaces("planner") == {"team-a"}


async def test_the_admin_token_overrides_a_claim(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    assert (await write(client, [(agent("up", "payments", "evil"), [(1, stamp)])], "evil")).status == 204
    body = write_request([(agent("up", "payments", "payments-ns"), [(1, stamp + 1)])])
    response = await client.post("/api/v1/write", data=body, headers={**HEADERS, **ADMIN_HEADERS})
    assert response.status == 204, await response.text()
    assert collector.agent_namespaces("payments") == {"payments-ns"}
    assert (await write(client, [(agent("up", "payments", "evil"), [(0, stamp + 2)])], "evil")).status == 403


class FakeApiServer:
    """The Kubernetes API's pod list and (empty, held open) watch, for one namespace's pods."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.watching = asyncio.Event()
        self.done = asyncio.Event()

    async def pods_handler(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") not in ("true", "True", "1"):
            return web.json_response({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
                                      "items": [pod for pod in self.pods
                                                if pod["metadata"]["namespace"] == request.match_info["ns"]]})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        self.watching.set()  # the list was taken in before the watch opens
        await self.done.wait()
        return response


def pod(name: str, namespace: str, agent_id: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1", "labels": {"agent-id": agent_id}},
            "spec": {"nodeName": "n", "containers": [{"name": "a", "image": "x",
                                                      "ports": [{"name": "metrics", "containerPort": 9090}]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5"}}


async def test_discovery_overrides_a_claim_and_refuses_other_namespaces(aiohttp_client: Client,
                                                                        aiohttp_server: Callable[..., Any]) -> None:
    client = await start(aiohttp_client)
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    squat = [(agent("up", "payments", "evil"), [(1, stamp)]),
             (agent("squatted_metric", "payments", "evil"), [(1, stamp)]),
             (agent("up", "payments-7f9.payments-ns", "evil"), [(0, stamp)])]  # the pod's own id, before discovery
    assert (await write(client, squat, "evil")).status == 204
    fake = FakeApiServer([pod("payments-7f9", "payments-ns", "payments")])
    api = web.Application()
    api.router.add_get("/api/v1/namespaces/{ns}/pods", fake.pods_handler)
    server = await aiohttp_server(api)
    configuration = kubernetes.Configuration(host=str(server.make_url("")).rstrip("/"))
    task = asyncio.create_task(watch_pods(DiscoverySettings(enabled=True, namespaces=["payments-ns"]), collector,
                                          configuration))
    try:
        await asyncio.wait_for(fake.watching.wait(), 10)
        assert collector.agents["payments-7f9.payments-ns"].source == "discovery"
        assert collector.agent_namespaces("payments") == {"payments-ns"}
        assert collector.ownership.usage("evil").agents == 0 and collector.ownership.usage("evil").series == 0
        assert "payments" not in collector.agents  # what the squatter wrote for it is gone
        assert collector.alerts.active == {}
        for agent_id in ("payments", "payments-7f9.payments-ns"):
            response = await write(client, [(agent("up", agent_id, "evil"), [(0, stamp + 1)])], "evil")
            assert response.status == 403 and "payments-ns" in await error(response), agent_id
        assert (await write(client, [(agent("up", "payments", "payments-ns"), [(1, stamp + 1)])],
                            "payments-ns")).status == 204
    finally:
        fake.done.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- item 2: room that adds up; what doesn't fit is refused with a 400 that names it ---------------------------

async def test_namespaces_within_quota_cannot_starve_a_third_silently(aiohttp_client: Client) -> None:
    # Quotas that don't add up (explicitly set so): two namespaces fill the store's global series budget.
    client = await start(aiohttp_client, alert_rules=HIGH_CPU, max_series_bytes=2**21,
                         remote_write={"max_bytes_per_namespace": 2**20 + 2**19})
    collector = client.app[COLLECTOR]
    stamp = now_ms()

    def burst(namespace: str, count: int) -> list[Any]:
        return [({**agent("hot", f"{namespace}-a{index // 1000}", namespace), "k": f"{index:06d}" + "v" * 400},
                 [(1, stamp)]) for index in range(count)]

    answers = [(await write(client, burst(namespace, 2_000), namespace)).status for namespace in ("evil", "evil2")]
    assert answers[0] == 400  # over its own byte quota: the rest is stored, the answer names what was not
    assert collector.store.series_bytes <= 2**21
    dropped_by_store = collector.store.dropped_series
    victim = [(agent("up", "victim", "prod"), [(1, stamp)]), (agent("agent_cpu_usage_percent", "victim", "prod"),
                                                               [(99, stamp)])]
    response = await write(client, victim, "prod")
    assert response.status == 400
    text = await error(response)
    assert "series_budget" in text and "max_series_bytes" in text
    assert collector.agents["victim"].status.value == "active"  # what fit (its up) was taken
    assert collector.store.dropped_series == dropped_by_store  # left out before the store: never silently
    assert rejected(await metrics(client), "series_budget") >= 1
    # Prometheus does not retry a 400: the next batch with room is taken whole.


async def test_series_beyond_the_agent_caps_are_named_not_dropped_silently(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, max_series_per_agent=5)
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    series = [({**agent("hot", "planner", "team-a"), "k": str(index)}, [(1, stamp)]) for index in range(8)]
    response = await write(client, series, "team-a")
    assert response.status == 400
    assert "agent_series_limit" in await error(response) and "max_series_per_agent" in await error(response)
    assert collector.store.series_count("planner") == 5 and collector.ownership.usage("team-a").series == 5
    assert collector.store.dropped_series == 0
    assert rejected(await metrics(client), "agent_series_limit") == 3
    # Series it holds keep flowing: 204.
    assert (await write(client, series[:5], "team-a")).status == 204


def test_default_quotas_add_up() -> None:
    settings = MonitoringSettings()
    assert settings.remote_write.max_bytes_per_namespace == settings.max_series_bytes // 4
    small = MonitoringSettings(max_series_bytes=64 * 2**20)
    assert small.remote_write.max_bytes_per_namespace == 16 * 2**20  # a quarter of whatever the budget is
    shared = MonitoringSettings(remote_write={"max_agents_per_namespace": 5})
    assert shared.remote_write.max_bytes_per_namespace == shared.max_series_bytes // 4
    # Still a default: what was set (the render's settings file) doesn't pin it.
    assert MonitoringSettings(port=9000).model_dump(exclude_unset=True) == {"port": 9000}
    assert shared.model_dump(exclude_unset=True) == {"remote_write": {"max_agents_per_namespace": 5}}


def test_a_namespace_quota_over_the_global_budget_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(json.dumps({"max_series_bytes": 2**24, "remote_write": {"max_bytes_per_namespace": 2**25}}))
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert "remote_write.max_bytes_per_namespace" in message and "max_series_bytes" in message
    assert "Traceback" not in message


async def test_agents_beyond_max_agents_and_bytes_beyond_an_agents_budget_are_named(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, max_agents=3, max_series_bytes_per_agent=2**16)
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    response = await write(client, [(agent("up", f"a{index}", "team-a"), [(1, stamp)]) for index in range(5)],
                           PROMETHEUS_SCOPE)
    assert response.status == 400 and "2 series: agent_limit (max_agents)" in await error(response)
    assert sorted(collector.agents) == ["a0", "a1", "a2"]
    wide = [({**agent("hot", "a0", "team-a"), "k": f"{index:04d}" + "v" * 1000}, [(1, stamp)]) for index in range(40)]
    response = await write(client, wide, PROMETHEUS_SCOPE)
    assert response.status == 400 and "max_series_bytes_per_agent" in await error(response)
    held = collector.store.series_count("a0")
    assert 0 < held < 40 and collector.store.agent_bytes("a0") <= 2**16 and collector.store.dropped_series == 0
    assert rejected(await metrics(client), "agent_series_bytes") == 40 - held
