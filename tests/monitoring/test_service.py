"""The running service against simulated agents: API, scraping, alerts, faults, delivery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitoring.app import init_app
from monitoring.settings import MonitoringSettings
from monitoring.simulate import Simulator
from monitoring.state import COLLECTOR

from .conftest import endpoint

Client = Callable[..., Any]


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def start(aiohttp_client: Client, settings: MonitoringSettings) -> TestClient:
    return await aiohttp_client(init_app(settings))


def metric_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


async def test_probes_and_empty_overview(aiohttp_client: Client, settings_factory: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, settings_factory())
    assert (await client.get("/health/live")).status == 200
    ready = await client.get("/health/ready")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    overview = (await (await client.get("/api/v1/overview")).json())["system_overview"]
    assert overview["agents"]["total_agents"] == 0 and overview["system_health"] == 100.0
    assert overview["system"]["process_resident_memory_bytes"] > 0


async def test_register_scrape_overview_and_metrics(aiohttp_client: Client, settings_factory: Callable[..., Any],
                                                    simulator: tuple[Simulator, str]) -> None:
    sim, base = simulator
    sim.agents["agent-0"].cpu = 75.0
    client = await start(aiohttp_client, settings_factory())
    response = await client.post("/api/v1/agents", json={
        "agent_id": "agent-0", "metrics_endpoint": endpoint(base, "agent-0"),
        "health_endpoint": endpoint(base, "agent-0", "health"), "info": {"role": "planner"}})
    assert response.status == 201, await response.text()
    collector = client.app[COLLECTOR]
    await wait_for(lambda: collector.agents["agent-0"].status.value == "active")

    agents = await (await client.get("/api/v1/agents")).json()
    assert agents["count"] == 1 and agents["agents"][0]["info"] == {"role": "planner"}
    overview = (await (await client.get("/api/v1/overview")).json())["system_overview"]
    agent = overview["agents"]["agents_detail"]["agent-0"]
    assert 70 < agent["cpu_usage"] < 80 and agent["health_score"] == 85  # CPU > 60: -15
    assert agent["status"] == "active" and agent["last_heartbeat_seconds_ago"] < 5
    assert overview["agents"]["active_agents"] == 1 and overview["agents"]["unhealthy_agents"] == 0

    text = await (await client.get("/metrics")).text()
    assert metric_value(text, "monitoring_agent_up", {"agent_id": "agent-0"}) == 1.0
    assert metric_value(text, "monitoring_agent_health_score", {"agent_id": "agent-0"}) == 85.0
    assert metric_value(text, "monitoring_scrapes_total", {"result": "success"}) >= 1
    assert metric_value(text, "monitoring_agent_last_scrape_duration_seconds", {"agent_id": "agent-0"}) > 0

    report = (await (await client.get("/api/v1/report?hours=1")).json())["performance_report"]
    performance = report["agent_performance"]["agent-0"]
    assert performance["total_metrics"] >= 1 and 70 < performance["avg_cpu_usage"] <= performance["max_cpu_usage"]
    assert report["time_window_hours"] == 1 and report["system_trends"]["total_metrics_in_window"] >= 1
    assert any(line.startswith("agent-0: CPU averages") for line in report["recommendations"])

    assert (await client.delete("/api/v1/agents/agent-0")).status == 204
    assert collector.agents == {} and collector.store.series_count("agent-0") == 0
    assert (await client.delete("/api/v1/agents/agent-0")).status == 404


async def test_threshold_rule_fires_and_resolves(aiohttp_client: Client, settings_factory: Callable[..., Any],
                                                 simulator: tuple[Simulator, str]) -> None:
    sim, base = simulator
    settings = settings_factory(agents=[{"agent_id": "agent-1", "metrics_endpoint": endpoint(base, "agent-1")}])
    client = await start(aiohttp_client, settings)
    created = await client.post("/api/v1/alert-rules", json={
        "rule_id": "HighCpu", "metric": "agent_cpu_usage_percent", "operator": ">", "threshold": 85, "severity": "critical"})
    assert created.status == 201
    rules = await (await client.get("/api/v1/alert-rules")).json()
    assert [rule["rule_id"] for rule in rules["rules"]] == ["HighCpu"]

    collector = client.app[COLLECTOR]
    sim.agents["agent-1"].cpu = 95.0
    await wait_for(lambda: any(a.rule_id == "HighCpu" for a in collector.alerts.active.values()))
    alerts = await (await client.get("/api/v1/alerts")).json()
    assert alerts["active"][0]["severity"] == "critical" and alerts["active"][0]["agent_id"] == "agent-1"
    sim.agents["agent-1"].cpu = 20.0
    await wait_for(lambda: not collector.alerts.active)
    resolved = (await (await client.get("/api/v1/alerts")).json())["resolved"]
    assert resolved[-1]["rule_id"] == "HighCpu" and resolved[-1]["resolved_at"] is not None

    # Replacing the rule with one on another metric resolves what the old one raised (nothing else would).
    sim.agents["agent-1"].cpu = 95.0
    await wait_for(lambda: bool(collector.alerts.active))
    replaced = await client.post("/api/v1/alert-rules", json={
        "rule_id": "HighCpu", "metric": "agent_memory_usage_bytes", "threshold": 99})
    assert replaced.status == 200 and not collector.alerts.active
    reserved = await client.post("/api/v1/alert-rules", json={"rule_id": "AgentUnreachable", "threshold": 1})
    assert reserved.status == 422 and "built-in" in (await reserved.text())  # as every invalid rule


async def test_faulty_agents_are_marked_and_the_service_keeps_running(
        aiohttp_client: Client, settings_factory: Callable[..., Any], simulator: tuple[Simulator, str]) -> None:
    sim, base = simulator
    sim.agents["agent-0"].mode = "hang"
    sim.agents["agent-1"].mode = "error"
    sim.agents["agent-2"].mode = "garbage"
    agents = [{"agent_id": f"agent-{index}", "metrics_endpoint": endpoint(base, f"agent-{index}")} for index in range(3)]
    agents.append({"agent_id": "vanished", "metrics_endpoint": "http://127.0.0.1:9/metrics"})  # nothing listens
    settings = settings_factory(agents=agents, scrape_timeout=0.3, max_response_bytes=64 * 1024)
    client = await start(aiohttp_client, settings)
    collector = client.app[COLLECTOR]
    await wait_for(lambda: all(state.consecutive_failures >= 2 for state in collector.agents.values()), timeout=8)
    errors = {agent_id: state.last_error for agent_id, state in collector.agents.items()}
    assert errors["agent-0"] == "timed out"
    assert "HTTP 500" in errors["agent-1"]
    assert errors["agent-2"] == "not a metrics body"
    assert errors["vanished"]
    down = {alert.agent_id for alert in collector.alerts.active.values() if alert.rule_id == "AgentUnreachable"}
    assert down == {"agent-0", "agent-1", "agent-2", "vanished"}
    assert (await client.get("/health/live")).status == 200

    # Recovery resolves the agent-health alert.
    sim.agents["agent-1"].mode = "ok"
    await wait_for(lambda: collector.agents["agent-1"].status.value == "active")
    assert "agent-1" not in {alert.agent_id for alert in collector.alerts.active.values()}


async def test_huge_bodies_are_cut_off(aiohttp_client: Client, settings_factory: Callable[..., Any],
                                       simulator: tuple[Simulator, str]) -> None:
    sim, base = simulator
    sim.agents["agent-0"].mode = "huge"
    settings = settings_factory(agents=[{"agent_id": "agent-0", "metrics_endpoint": endpoint(base, "agent-0")}],
                                max_response_bytes=256 * 1024, scrape_timeout=2.0)
    client = await start(aiohttp_client, settings)
    collector = client.app[COLLECTOR]
    await wait_for(lambda: collector.agents["agent-0"].failures >= 2, timeout=8)
    assert "limit" in (collector.agents["agent-0"].last_error or "")
    assert len(collector.store.recent) == 0


async def test_heartbeats_move_silent_agents_to_unhealthy_then_lost(
        aiohttp_client: Client, settings_factory: Callable[..., Any], simulator: tuple[Simulator, str]) -> None:
    sim, base = simulator
    settings = settings_factory(agents=[{"agent_id": "agent-0", "metrics_endpoint": endpoint(base, "agent-0")}],
                                health={"unhealthy_after": 0.5, "lost_after": 1.5, "failures_before_alert": 1000})
    client = await start(aiohttp_client, settings)
    collector = client.app[COLLECTOR]
    await wait_for(lambda: collector.agents["agent-0"].status.value == "active")
    sim.agents["agent-0"].mode = "error"
    await wait_for(lambda: collector.agents["agent-0"].status.value == "unhealthy", timeout=5)
    await wait_for(lambda: collector.agents["agent-0"].status.value == "lost", timeout=5)


async def test_errors_are_json_with_the_right_status(aiohttp_client: Client,
                                                     settings_factory: Callable[..., Any]) -> None:
    client = await start(aiohttp_client, settings_factory(max_request_bytes=2048, max_agents=1))
    bad_json = await client.post("/api/v1/agents", data=b"{nope", headers={"Content-Type": "application/json"})
    assert bad_json.status == 400 and "not valid JSON" in (await bad_json.json())["error"]
    invalid = await client.post("/api/v1/agents", json={"agent_id": "a", "metrics_endpoint": "not a url"})
    assert invalid.status == 422 and "metrics_endpoint" in (await invalid.json())["error"]
    too_big = await client.post("/api/v1/agents", data=b"x" * 4096, headers={"Content-Type": "application/json"})
    assert too_big.status == 413 and "error" in await too_big.json()
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status == 404 and "error" in await missing.json()
    assert (await client.get("/api/v1/report?hours=abc")).status == 400
    assert (await client.get("/api/v1/report?hours=1000")).status == 400
    ok = await client.post("/api/v1/agents", json={"agent_id": "a", "metrics_endpoint": "http://127.0.0.1:1/m"})
    assert ok.status == 201
    full = await client.post("/api/v1/agents", json={"agent_id": "b", "metrics_endpoint": "http://127.0.0.1:1/m"})
    assert full.status == 409 and "agent limit" in (await full.json())["error"]


async def test_alert_delivery_to_alertmanager_and_webhook(aiohttp_client: Client, aiohttp_server: Client,
                                                          settings_factory: Callable[..., Any]) -> None:
    received: dict[str, list[Any]] = {"alertmanager": [], "webhook": []}

    async def alertmanager(request: web.Request) -> web.Response:
        received["alertmanager"].append(await request.json())
        return web.json_response({})

    async def broken_webhook(request: web.Request) -> web.Response:
        received["webhook"].append(await request.json())
        return web.Response(status=500)

    sink = web.Application()
    sink.router.add_post("/api/v2/alerts", alertmanager)
    sink.router.add_post("/hook", broken_webhook)
    server = await aiohttp_server(sink)
    base = str(server.make_url("")).rstrip("/")
    settings = settings_factory(agents=[{"agent_id": "gone", "metrics_endpoint": "http://127.0.0.1:9/metrics"}],
                                alertmanager={"url": base}, webhook={"url": f"{base}/hook"})
    client = await start(aiohttp_client, settings)
    await wait_for(lambda: received["alertmanager"] and received["webhook"])
    [posted] = received["alertmanager"][0]
    assert posted["labels"]["alertname"] == "AgentUnreachable" and posted["labels"]["agent_id"] == "gone"
    assert posted["labels"]["severity"] == "critical" and posted["startsAt"].endswith("Z")
    # The webhook failing does not stop Alertmanager delivery; both are counted.
    dispatcher_metrics = await (await client.get("/metrics")).text()
    assert metric_value(dispatcher_metrics, "monitoring_alert_notifications_total",
                        {"handler": "webhook", "result": "failure"}) >= 1
    assert metric_value(dispatcher_metrics, "monitoring_alert_notifications_total",
                        {"handler": "alertmanager", "result": "success"}) >= 1


async def test_seed_json_endpoints_are_scraped(aiohttp_client: Client, settings_factory: Callable[..., Any],
                                               simulator: tuple[Simulator, str]) -> None:
    sim, base = simulator
    sim.agents["agent-2"].memory = 90.0
    settings = settings_factory(agents=[{"agent_id": "agent-2",
                                         "metrics_endpoint": endpoint(base, "agent-2") + "?format=json",
                                         "info": {"memory_limit_bytes": str(2**30)}}])
    client = await start(aiohttp_client, settings)
    collector = client.app[COLLECTOR]
    await wait_for(lambda: collector.agents["agent-2"].status.value == "active")
    detail = collector.get_system_overview()["system_overview"]["agents"]["agents_detail"]["agent-2"]
    assert detail["memory_usage"] == 90.0
    assert detail["health_score"] == 75  # memory > 85: -25
