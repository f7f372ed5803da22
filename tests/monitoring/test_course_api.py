"""The course's monitoring API (seed `distributed_monitoring.py`) against small aiohttp agents.

Every agent here is a loopback aiohttp app whose answers the test controls (`StubAgent.values`), so
alert conditions, health scores and recommendations are asserted with the seed's exact numbers.
Waiting is always for the thing asserted (`wait_for`), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from monitoring import (
    AgentMetric,
    AlertSeverity,
    DistributedMetricsCollector,
    DistributedTracing,
    MetricType,
    SystemAlert,
)

from .course_agents import (
    AlertRecorder,
    MakeCollector,
    Serve,
    StubAgent,
    agent_status,
    leftover_tasks,
    local_naive,
    make_rule,
    overview_of,
    refusing_server,
    wait_for,
)

FAST = 0.05  # collection interval (s) used by most tests


# --- data model ------------------------------------------------------------------------------------

def test_enums_and_dataclasses_match_the_seed() -> None:
    """Seed data model: MetricType/AlertSeverity values and AgentMetric/SystemAlert defaults."""
    assert {kind.value for kind in MetricType} == {"counter", "gauge", "histogram", "summary"}
    assert [MetricType(v) for v in ("counter", "gauge")] == [MetricType.COUNTER, MetricType.GAUGE]
    assert {level.value for level in AlertSeverity} == {"info", "warning", "critical", "emergency"}
    assert AlertSeverity("emergency") is AlertSeverity.EMERGENCY

    metric = AgentMetric(agent_id="a1", metric_name="queue_depth", metric_type=MetricType.GAUGE, value=3.0)
    assert isinstance(metric.timestamp, datetime) and metric.labels == {}
    alert = SystemAlert(alert_id="x", alert_name="X", severity=AlertSeverity.INFO, description="d")
    assert alert.affected_agents == [] and alert.resolved is False and alert.resolution_timestamp is None
    assert isinstance(alert.timestamp, datetime)


# --- collection lifecycle --------------------------------------------------------------------------

async def test_collection_starts_at_once_on_registration(serve: Serve, collectors: MakeCollector) -> None:
    """register_agent starts collecting immediately, even with the seed's default 30 s interval."""
    assert DistributedMetricsCollector().get_system_overview()["system_overview"]["metrics"][
        "collection_interval_seconds"] == 30.0
    agent = StubAgent({"queue_depth": 1.0})
    await serve(agent)
    collector = collectors(collection_interval=30.0, collect_system_metrics=False)
    await collector.register_agent("a1", agent.info())
    await wait_for(lambda: agent.hits >= 1, timeout=3.0, what="first collection")
    await wait_for(lambda: overview_of(collector)["metrics"]["total_metrics_collected"] >= 1, what="metric stored")
    overview = overview_of(collector)
    assert overview["agents"]["agents_detail"]["a1"]["status"] == "active"
    assert overview["metrics"]["collection_interval_seconds"] == 30.0


async def test_stop_leaves_no_task_running(serve: Serve) -> None:
    """await collector.stop() ends every collection task the collector started."""
    agents = [StubAgent({"queue_depth": 1.0}), StubAgent({"active_tasks": 2.0}, prometheus=True)]
    for agent in agents:
        await serve(agent)
    baseline = asyncio.all_tasks()
    collector = DistributedMetricsCollector(collection_interval=FAST, collect_system_metrics=False)
    await collector.register_agent("a1", agents[0].info())
    await collector.register_agent("a2", agents[1].info())
    await wait_for(lambda: all(agent.hits >= 2 for agent in agents), what="two collections per agent")
    assert leftover_tasks(baseline), "collection should run in tasks of the caller's loop"
    await collector.stop()
    await wait_for(lambda: not leftover_tasks(baseline), timeout=3.0, what="no collector task left")


async def test_async_with_stops_on_exit(serve: Serve) -> None:
    """`async with DistributedMetricsCollector(...)` collects inside the block and stops on exit."""
    agent = StubAgent({"queue_depth": 1.0})
    await serve(agent)
    baseline = asyncio.all_tasks()
    async with DistributedMetricsCollector(collection_interval=FAST, collect_system_metrics=False) as collector:
        assert isinstance(collector, DistributedMetricsCollector)
        await collector.register_agent("a1", agent.info())
        await wait_for(lambda: agent.hits >= 2, what="two collections")
    await wait_for(lambda: not leftover_tasks(baseline), timeout=3.0, what="no collector task left")


# --- agent formats ---------------------------------------------------------------------------------

async def test_seed_json_metrics_become_agent_metrics(serve: Serve, collectors: MakeCollector) -> None:
    """Seed JSON {"metrics": [{name, type, value, labels}]} → AgentMetric (type default gauge, labels default {})."""
    agent = StubAgent({"tasks_completed": 7, "latency_ms": 12.5}, kinds={"tasks_completed": "counter"},
                      labels={"tasks_completed": {"queue": "high"}}, omit_optional=("latency_ms",))
    await serve(agent)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    await collector.register_agent("json-agent", agent.info())
    await wait_for(lambda: agent.hits >= 2, what="a completed collection")

    mine = [m for m in list(collector.metrics_buffer) if m.agent_id == "json-agent"]
    by_name = {m.metric_name: m for m in mine}
    assert set(by_name) == {"tasks_completed", "latency_ms"}  # no psutil figures when disabled
    counter, gauge = by_name["tasks_completed"], by_name["latency_ms"]
    assert isinstance(counter, AgentMetric) and counter.metric_type is MetricType.COUNTER
    assert isinstance(counter.value, float) and counter.value == 7.0 and counter.labels == {"queue": "high"}
    assert gauge.metric_type is MetricType.GAUGE and gauge.value == 12.5 and gauge.labels == {}
    assert isinstance(gauge.timestamp, datetime)


async def test_prometheus_text_agent_is_collected_and_alerted(serve: Serve, collectors: MakeCollector) -> None:
    """A Prometheus-text agent (# TYPE x gauge / x 1) is parsed into gauges that alert rules see."""
    agent = StubAgent({"active_tasks": 42, "queue_depth": 3}, prometheus=True)
    await serve(agent)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    recorder = AlertRecorder()
    collector.add_alert_handler(recorder)
    collector.add_alert_rule(make_rule(name="Busy", description="{agent_id} {metric_name} {value}",
                                       metric_name="active_tasks", threshold=40))
    await collector.register_agent("prom-agent", agent.info())
    await wait_for(lambda: len(recorder.alerts) >= 1, what="alert on a Prometheus gauge")

    alert = recorder.alerts[0]
    assert alert.alert_id == "Busy:prom-agent:active_tasks"
    assert alert.description == "prom-agent active_tasks 42.0"
    stored = {m.metric_name: m for m in list(collector.metrics_buffer) if m.agent_id == "prom-agent"}
    assert set(stored) == {"active_tasks", "queue_depth"}
    assert stored["active_tasks"].metric_type is MetricType.GAUGE and stored["active_tasks"].value == 42.0
    assert stored["queue_depth"].value == 3.0


# --- overview --------------------------------------------------------------------------------------

async def test_system_overview_document(serve: Serve, collectors: MakeCollector) -> None:
    """get_system_overview returns the seed's keys with counts of agents, alerts and collected metrics."""
    json_agent = StubAgent({"queue_depth": 1.0, "latency_ms": 5.0})
    prom_agent = StubAgent({"active_tasks": 2.0, "open_sessions": 4.0}, prometheus=True)
    await serve(json_agent)
    await serve(prom_agent)
    collector = collectors(collection_interval=0.1, collect_system_metrics=False)
    before = datetime.now()
    await collector.register_agent("json-agent", json_agent.info())
    await collector.register_agent("prom-agent", prom_agent.info())
    after = datetime.now()
    await wait_for(lambda: json_agent.hits >= 3 and prom_agent.hits >= 3, what="two collections per agent")

    document = collector.get_system_overview()
    assert set(document) == {"system_overview"}
    overview = document["system_overview"]
    assert {"timestamp", "agents", "alerts", "metrics"} <= set(overview)
    assert abs(local_naive(datetime.fromisoformat(overview["timestamp"])) - datetime.now()) < timedelta(seconds=5)

    agents = overview["agents"]
    assert (agents["total_agents"], agents["active_agents"], agents["unhealthy_agents"]) == (2, 2, 0)
    assert set(agents["agents_detail"]) == {"json-agent", "prom-agent"}
    for detail in agents["agents_detail"].values():
        assert detail["status"] == "active"
        assert isinstance(detail["last_heartbeat_seconds_ago"], float)
        assert 0 <= detail["last_heartbeat_seconds_ago"] < 5
        registered = local_naive(datetime.fromisoformat(detail["registration_time"]))
        assert before - timedelta(seconds=1) <= registered <= after + timedelta(seconds=1)

    assert overview["alerts"] == {**overview["alerts"], "total_alerts": 0, "active_alerts": 0,
                                  "critical_alerts": 0, "warning_alerts": 0}
    metrics = overview["metrics"]
    assert isinstance(metrics["total_metrics_collected"], int) and metrics["total_metrics_collected"] >= 8
    assert metrics["unique_metric_types"] == 4  # agent:metric pairs
    assert metrics["collection_interval_seconds"] == 0.1


# --- alert rules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["name", "description", "condition_type"])
async def test_alert_rule_without_a_required_field_is_refused(missing: str) -> None:
    """add_alert_rule raises ValueError when a seed-required field (name, description, condition_type) is absent."""
    collector = DistributedMetricsCollector(collection_interval=FAST)
    rule = make_rule()
    del rule[missing]
    with pytest.raises(ValueError):
        collector.add_alert_rule(rule)
    collector.add_alert_rule(make_rule())  # the complete rule is accepted


async def test_threshold_alert_fires_once_resolves_and_fires_again(serve: Serve, collectors: MakeCollector) -> None:
    """Seed _trigger_alert: id name:agent:metric, formatted description, one alert while it holds; then resolved."""
    agent = StubAgent({"queue_depth": 3.0})
    await serve(agent)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    recorder = AlertRecorder()
    collector.add_alert_handler(recorder)
    collector.add_alert_rule(make_rule(agent_id="worker-1", severity="critical"))
    await collector.register_agent("worker-1", agent.info())
    await wait_for(lambda: agent.hits >= 3, what="collections below the threshold")
    assert recorder.alerts == []

    agent.values["queue_depth"] = 20.5
    await wait_for(lambda: len(recorder.alerts) >= 1, what="alert")
    seen = agent.hits
    await wait_for(lambda: agent.hits >= seen + 3, what="more collections above the threshold")
    assert len(recorder.alerts) == 1, recorder.ids()
    alert = recorder.alerts[0]
    assert isinstance(alert, SystemAlert)
    assert alert.alert_id == "DeepQueue:worker-1:queue_depth" and alert.alert_name == "DeepQueue"
    assert alert.severity is AlertSeverity.CRITICAL
    assert alert.description == "Agent worker-1: queue_depth at 20.5"
    assert alert.affected_agents == ["worker-1"]
    assert alert.resolved is False and alert.resolution_timestamp is None
    counts = overview_of(collector)["alerts"]
    assert (counts["total_alerts"], counts["active_alerts"], counts["critical_alerts"]) == (1, 1, 1)

    agent.values["queue_depth"] = 2.0
    await wait_for(lambda: collector.active_alerts[alert.alert_id].resolved, what="resolution")
    stored = collector.active_alerts[alert.alert_id]
    assert isinstance(stored.resolution_timestamp, datetime)
    assert stored.resolution_timestamp >= stored.timestamp
    counts = overview_of(collector)["alerts"]
    assert (counts["total_alerts"], counts["active_alerts"], counts["critical_alerts"]) == (1, 0, 0)

    agent.values["queue_depth"] = 30.0
    await wait_for(lambda: any(not a.resolved for a in recorder.alerts[1:]), what="the alert firing again")
    again = [a for a in recorder.alerts[1:] if not a.resolved]
    assert again[0].alert_id == "DeepQueue:worker-1:queue_depth"
    assert again[0].description == "Agent worker-1: queue_depth at 30.0"
    assert overview_of(collector)["alerts"]["active_alerts"] == 1


async def test_threshold_operators(serve: Serve, collectors: MakeCollector) -> None:
    """Seed operators >, <, >=, <=, ==, != compare the metric value with the threshold."""
    agent = StubAgent({"queue_depth": 10.0})
    await serve(agent)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    recorder = AlertRecorder()
    collector.add_alert_handler(recorder)
    firing = {"gt": (">", 5), "lt": ("<", 15), "ge": (">=", 10), "le": ("<=", 10), "eq": ("==", 10), "ne": ("!=", 3)}
    quiet = {"gt-q": (">", 10), "lt-q": ("<", 10), "ge-q": (">=", 11), "le-q": ("<=", 9), "eq-q": ("==", 9),
             "ne-q": ("!=", 10)}
    for name, (operator, threshold) in {**firing, **quiet}.items():
        collector.add_alert_rule(make_rule(name=name, operator=operator, threshold=threshold))
    await collector.register_agent("a1", agent.info())
    await wait_for(lambda: len(recorder.alerts) >= len(firing), what="the six firing rules")
    seen = agent.hits
    await wait_for(lambda: agent.hits >= seen + 2, what="further collections")
    assert sorted(recorder.ids()) == sorted(f"{name}:a1:queue_depth" for name in firing)


async def test_rules_filter_by_agent_and_metric(serve: Serve, collectors: MakeCollector) -> None:
    """A rule's agent_id limits it to that agent (unset: every agent); metric_name limits it to that metric."""
    agent_a = StubAgent({"queue_depth": 20.0, "other_gauge": 100.0})
    agent_b = StubAgent({"queue_depth": 20.0, "other_gauge": 100.0})
    await serve(agent_a)
    await serve(agent_b)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    recorder = AlertRecorder()
    collector.add_alert_handler(recorder)
    collector.add_alert_rule(make_rule(name="OnlyA", agent_id="a"))
    collector.add_alert_rule(make_rule(name="Everyone", agent_id=None))
    await collector.register_agent("a", agent_a.info())
    await collector.register_agent("b", agent_b.info())
    expected = {"OnlyA:a:queue_depth", "Everyone:a:queue_depth", "Everyone:b:queue_depth"}
    await wait_for(lambda: set(recorder.ids()) >= expected, what="the three alerts")
    seen_a, seen_b = agent_a.hits, agent_b.hits
    await wait_for(lambda: agent_a.hits >= seen_a + 2 and agent_b.hits >= seen_b + 2, what="further collections")
    assert sorted(recorder.ids()) == sorted(expected)
    by_id = {alert.alert_id: alert for alert in recorder.alerts}
    assert by_id["Everyone:b:queue_depth"].affected_agents == ["b"]
    assert by_id["OnlyA:a:queue_depth"].severity is AlertSeverity.WARNING


@pytest.mark.parametrize("template", ["{value.__class__}", "{agent_id.__class__.__mro__}",
                                      "{metric_name.__class__} on {agent_id}"])
async def test_description_template_attributes_are_not_evaluated(serve: Serve, collectors: MakeCollector,
                                                                 template: str) -> None:
    """Descriptions take {agent_id} {metric_name} {value} only: attribute lookups never leak class names."""
    agent = StubAgent({"queue_depth": 20.0})
    await serve(agent)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    recorder = AlertRecorder()
    collector.add_alert_handler(recorder)
    collector.add_alert_rule(make_rule(name="Sneaky", description=template))
    await collector.register_agent("a1", agent.info())
    await wait_for(lambda: len(recorder.alerts) >= 1, what="alert")
    seen = agent.hits
    await wait_for(lambda: agent.hits >= seen + 2, what="collection continuing")
    assert recorder.ids() == ["Sneaky:a1:queue_depth"]
    assert "<class" not in recorder.alerts[0].description
    assert agent_status(collector, "a1") == "active"
    assert overview_of(collector)["alerts"]["total_alerts"] == 1  # no health alert from an escaped error


async def test_rate_of_change_rule_uses_rate_threshold(serve: Serve, collectors: MakeCollector) -> None:
    """condition_type rate_of_change compares the growth per second with rate_threshold (not threshold)."""
    fast = StubAgent({"requests_total": 0.0}, kinds={"requests_total": "counter"}, increments={"requests_total": 1000})
    slow = StubAgent({"requests_total": 0.0}, kinds={"requests_total": "counter"}, increments={"requests_total": 1})
    await serve(fast)
    await serve(slow)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    recorder = AlertRecorder()
    collector.add_alert_handler(recorder)
    collector.add_alert_rule(make_rule(name="RequestSurge", condition_type="rate_of_change",
                                       metric_name="requests_total", threshold=0, rate_threshold=100))
    await collector.register_agent("fast", fast.info())
    await collector.register_agent("slow", slow.info())
    await wait_for(lambda: "RequestSurge:fast:requests_total" in recorder.ids(), what="rate alert for the fast agent")
    seen = slow.hits
    await wait_for(lambda: slow.hits >= seen + 3 and slow.hits >= 5, what="collections of the slow agent")
    assert recorder.ids() == ["RequestSurge:fast:requests_total"]
    assert recorder.alerts[0].affected_agents == ["fast"]


async def test_failing_handler_does_not_stop_other_handlers(serve: Serve, collectors: MakeCollector) -> None:
    """A handler that raises is isolated: later handlers still get the alert and collection goes on."""
    agent = StubAgent({"queue_depth": 20.0})
    await serve(agent)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)

    async def broken(alert: SystemAlert) -> None:
        raise RuntimeError("pager down")

    recorder = AlertRecorder()
    collector.add_alert_handler(broken)
    collector.add_alert_handler(recorder)
    collector.add_alert_rule(make_rule())
    await collector.register_agent("a1", agent.info())
    await wait_for(lambda: len(recorder.alerts) >= 1, what="alert at the second handler")
    seen = agent.hits
    await wait_for(lambda: agent.hits >= seen + 2, what="collection continuing")
    assert recorder.ids() == ["DeepQueue:a1:queue_depth"]
    assert agent_status(collector, "a1") == "active"


async def test_unreachable_agent_gets_one_health_alert(collectors: MakeCollector) -> None:
    """An agent that cannot be reached: one critical "Agent Health Issue" (agent_health:id), status unhealthy."""
    attempts = [0]
    listener = await refusing_server(attempts)
    port = listener.sockets[0].getsockname()[1]
    try:
        collector = collectors(collection_interval=FAST, collect_system_metrics=False)
        recorder = AlertRecorder()
        collector.add_alert_handler(recorder)
        await collector.register_agent("ghost", {"metrics_endpoint": f"http://127.0.0.1:{port}/metrics",
                                                 "health_endpoint": f"http://127.0.0.1:{port}/health"})
        await wait_for(lambda: len(recorder.alerts) >= 1, what="health alert")
        seen = attempts[0]
        await wait_for(lambda: attempts[0] >= seen + 2, what="further failed collections")
        assert recorder.ids() == ["agent_health:ghost"]
        alert = recorder.alerts[0]
        assert alert.alert_name == "Agent Health Issue" and alert.severity is AlertSeverity.CRITICAL
        assert alert.affected_agents == ["ghost"] and "ghost" in alert.description and not alert.resolved

        overview = overview_of(collector)
        assert overview["agents"]["agents_detail"]["ghost"]["status"] == "unhealthy"
        assert (overview["agents"]["active_agents"], overview["agents"]["unhealthy_agents"]) == (0, 1)
        counts = overview["alerts"]
        assert (counts["active_alerts"], counts["critical_alerts"], counts["warning_alerts"]) == (1, 1, 0)
    finally:
        listener.close()
        await listener.wait_closed()


# --- performance report ----------------------------------------------------------------------------

def resources(cpu: float, memory: float) -> dict[str, float]:
    return {"system_cpu_usage": cpu, "system_memory_usage": memory}


async def test_performance_report_scores_and_recommendations(serve: Serve, collectors: MakeCollector) -> None:
    """Seed health score (CPU/memory penalties) and recommendations (health < 70, CPU > 70, memory > 80, > 30 %)."""
    stubs = {"agent-hot": StubAgent(resources(90, 88)),     # 100 - 30 - 25 = 45
             "agent-warm": StubAgent(resources(65, 75)),    # 100 - 15 - 10 = 75
             "agent-idle": StubAgent(resources(10, 20))}    # 100
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    for agent_id, stub in stubs.items():
        await serve(stub)
        await collector.register_agent(agent_id, stub.info())
    await wait_for(lambda: all(stub.hits >= 3 for stub in stubs.values()), what="two collections per agent")

    document = await collector.generate_performance_report(time_window_hours=24)
    assert set(document) == {"performance_report"}
    report = document["performance_report"]
    assert report["time_window_hours"] == 24
    assert abs(local_naive(datetime.fromisoformat(report["report_timestamp"])) - datetime.now()) < timedelta(seconds=5)
    performance = report["agent_performance"]
    assert set(performance) == set(stubs)
    expected = {"agent-hot": (90, 88, 45), "agent-warm": (65, 75, 75), "agent-idle": (10, 20, 100)}
    for agent_id, (cpu, memory, health) in expected.items():
        figures = performance[agent_id]
        assert figures["total_metrics"] >= 4
        assert figures["avg_cpu_usage"] == pytest.approx(cpu) and figures["max_cpu_usage"] == pytest.approx(cpu)
        assert figures["avg_memory_usage"] == pytest.approx(memory)
        assert figures["max_memory_usage"] == pytest.approx(memory)
        assert figures["health_score"] == pytest.approx(health), agent_id

    trends = report["system_trends"]
    assert trends["total_metrics_in_window"] == sum(figures["total_metrics"] for figures in performance.values())
    assert 10 < trends["average_system_cpu"] < 90 and 20 < trends["average_system_memory"] < 88

    recommendations = report["recommendations"]
    assert isinstance(recommendations, list) and all(isinstance(line, str) for line in recommendations)
    hot = [line for line in recommendations if "agent-hot" in line]
    assert len(hot) == 3, recommendations  # low health, high CPU, high memory
    assert any("45" in line for line in hot) and any("90" in line for line in hot) and any("88" in line for line in hot)
    assert not any("agent-warm" in line or "agent-idle" in line for line in recommendations)
    system_wide = [line for line in recommendations if "agent-" not in line]
    assert len(system_wide) == 1 and "30" in system_wide[0]  # 1 of 3 agents below 70 is more than 30 %
    assert len(recommendations) == 4


async def test_report_average_and_maximum(serve: Serve, collectors: MakeCollector) -> None:
    """avg_* is the mean and max_* the largest of the agent's readings in the window."""
    stub = StubAgent(resources(20, 30))
    await serve(stub)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    await collector.register_agent("a1", stub.info())
    await wait_for(lambda: stub.hits >= 3, what="collections at the low reading")
    stub.values.update(resources(60, 50))
    seen = stub.hits
    await wait_for(lambda: stub.hits >= seen + 2, what="collections at the high reading")

    figures = (await collector.generate_performance_report(time_window_hours=1))["performance_report"][
        "agent_performance"]["a1"]
    assert figures["max_cpu_usage"] == pytest.approx(60) and figures["max_memory_usage"] == pytest.approx(50)
    assert 20 < figures["avg_cpu_usage"] < 60 and 30 < figures["avg_memory_usage"] < 50
    assert figures["health_score"] == pytest.approx(100)  # averages stay below 60 % CPU and 70 % memory


async def test_health_score_counts_unresolved_alerts(serve: Serve, collectors: MakeCollector) -> None:
    """Health score: −10 per unresolved alert of the agent; a resolved alert no longer counts."""
    stub = StubAgent({**resources(10, 10), "queue_depth": 20.0, "errors": 5.0})
    await serve(stub)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    collector.add_alert_rule(make_rule(name="DeepQueue"))
    collector.add_alert_rule(make_rule(name="Errors", metric_name="errors", threshold=1))
    await collector.register_agent("a1", stub.info())
    await wait_for(lambda: overview_of(collector)["alerts"]["active_alerts"] == 2, what="two active alerts")
    assert overview_of(collector)["alerts"]["warning_alerts"] == 2

    report = await collector.generate_performance_report()
    assert report["performance_report"]["agent_performance"]["a1"]["health_score"] == pytest.approx(80)

    stub.values["queue_depth"] = 1.0
    await wait_for(lambda: overview_of(collector)["alerts"]["active_alerts"] == 1, what="one alert resolved")
    report = await collector.generate_performance_report()
    assert report["performance_report"]["agent_performance"]["a1"]["health_score"] == pytest.approx(90)


async def test_health_score_of_an_agent_that_became_unreachable(serve: Serve, collectors: MakeCollector) -> None:
    """Health score: −50 when not active and −10 for its open health alert; recommendations follow."""
    stub = StubAgent(resources(10, 10))
    server = await serve(stub)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    await collector.register_agent("fading", stub.info())
    await wait_for(lambda: stub.hits >= 3, what="collections while reachable")
    await server.close()
    await wait_for(lambda: agent_status(collector, "fading") == "unhealthy", what="status unhealthy")
    await wait_for(lambda: overview_of(collector)["alerts"]["critical_alerts"] == 1, what="health alert")
    assert collector.active_alerts["agent_health:fading"].severity is AlertSeverity.CRITICAL

    report = (await collector.generate_performance_report(time_window_hours=24))["performance_report"]
    figures = report["agent_performance"]["fading"]
    assert figures["avg_cpu_usage"] == pytest.approx(10)
    assert figures["health_score"] == pytest.approx(40)  # 100 - 50 (unhealthy) - 10 (health alert)
    recommendations = report["recommendations"]
    assert len(recommendations) == 2, recommendations
    assert any("fading" in line and "40" in line for line in recommendations)
    assert any("fading" not in line and "30" in line for line in recommendations)


async def test_default_collector_records_machine_readings(serve: Serve, collectors: MakeCollector) -> None:
    """By default each agent also gets psutil readings (system_cpu/memory_usage, network bytes) within 0–100 %."""
    stub = StubAgent({"queue_depth": 1.0})
    await serve(stub)
    collector = collectors(collection_interval=FAST)
    await collector.register_agent("a1", stub.info())
    await wait_for(lambda: stub.hits >= 3, what="collections")

    names = {m.metric_name for m in list(collector.metrics_buffer) if m.agent_id == "a1"}
    assert {"queue_depth", "system_cpu_usage", "system_memory_usage", "network_bytes_sent",
            "network_bytes_recv"} <= names
    report = (await collector.generate_performance_report(time_window_hours=24))["performance_report"]
    figures = report["agent_performance"]["a1"]
    assert 0 <= figures["avg_cpu_usage"] <= 100 and 0 <= figures["max_cpu_usage"] <= 100
    assert 0 < figures["avg_memory_usage"] <= 100 and 0 < figures["max_memory_usage"] <= 100
    assert 0 <= report["system_trends"]["average_system_cpu"] <= 100
    assert 0 < report["system_trends"]["average_system_memory"] <= 100
    assert 0 <= figures["health_score"] <= 100


# --- distributed tracing ---------------------------------------------------------------------------

async def test_trace_analysis_of_nested_spans() -> None:
    """get_trace_analysis: counts, ms durations (longest and mean), per-agent participation, critical path."""
    tracing = DistributedTracing()
    outer = await tracing.start_trace("trace-1", "plan", "coordinator", metadata={"user": "u1"})
    await asyncio.sleep(0.02)
    inner = await tracing.start_trace("trace-1", "search", "researcher")
    await asyncio.sleep(0.03)
    await tracing.finish_span(inner, metadata={"results": 3})
    await asyncio.sleep(0.02)
    await tracing.finish_span(outer, status="completed")
    assert isinstance(outer, str) and isinstance(inner, str) and outer != inner

    analysis = tracing.get_trace_analysis("trace-1")
    assert analysis["trace_id"] == "trace-1"
    assert (analysis["total_spans"], analysis["completed_spans"]) == (2, 2)
    participation = analysis["agent_participation"]
    assert set(participation) == {"coordinator", "researcher"}
    coordinator, researcher = participation["coordinator"], participation["researcher"]
    assert coordinator["span_count"] == 1 and coordinator["operations"] == ["plan"]
    assert researcher["span_count"] == 1 and researcher["operations"] == ["search"]
    assert 70 - 1 <= coordinator["total_duration_ms"] < 2000  # three sleeps: 20 + 30 + 20 ms
    assert 30 - 1 <= researcher["total_duration_ms"] < 2000
    assert coordinator["total_duration_ms"] > researcher["total_duration_ms"]
    assert analysis["total_duration_ms"] == pytest.approx(coordinator["total_duration_ms"])
    assert analysis["average_span_duration_ms"] == pytest.approx(
        (coordinator["total_duration_ms"] + researcher["total_duration_ms"]) / 2)
    assert analysis["critical_path"] == ["coordinator:plan", "researcher:search"]


async def test_spans_of_one_agent_have_distinct_ids_and_add_up() -> None:
    """Back-to-back spans of one agent get distinct ids; participation sums their count, time and operations."""
    tracing = DistributedTracing()
    first = await tracing.start_trace("trace-2", "fetch", "worker")
    second = await tracing.start_trace("trace-2", "parse", "worker")
    assert first != second
    await asyncio.sleep(0.02)
    await tracing.finish_span(first)
    await tracing.finish_span(second)

    analysis = tracing.get_trace_analysis("trace-2")
    assert (analysis["total_spans"], analysis["completed_spans"]) == (2, 2)
    worker = analysis["agent_participation"]["worker"]
    assert worker["span_count"] == 2 and worker["operations"] == ["fetch", "parse"]
    assert 2 * (20 - 1) <= worker["total_duration_ms"] < 4000
    assert analysis["average_span_duration_ms"] == pytest.approx(worker["total_duration_ms"] / 2)
    assert sorted(analysis["critical_path"]) == ["worker:fetch", "worker:parse"]


async def test_critical_path_is_the_three_longest_spans() -> None:
    """critical_path lists "agent:operation" of the three longest completed spans, longest first."""
    tracing = DistributedTracing()
    spans: list[str] = []
    for index in range(1, 5):  # each span starts inside the previous one
        spans.append(await tracing.start_trace("trace-3", f"op{index}", f"a{index}"))
        await asyncio.sleep(0.01)
    for span_id in reversed(spans):  # and ends after it
        await tracing.finish_span(span_id)
        await asyncio.sleep(0.01)

    analysis = tracing.get_trace_analysis("trace-3")
    assert analysis["completed_spans"] == 4
    assert analysis["critical_path"] == ["a1:op1", "a2:op2", "a3:op3"]
    durations = [analysis["agent_participation"][f"a{index}"]["total_duration_ms"] for index in range(1, 5)]
    assert durations == sorted(durations, reverse=True)
    assert analysis["total_duration_ms"] == pytest.approx(durations[0])
    assert durations[0] >= 70 - 1  # 3 starts and 4 finishes apart, 10 ms each


async def test_trace_analysis_errors() -> None:
    """Seed errors: unknown trace → 'Trace not found'; no span finished as completed → 'No completed spans in trace'."""
    tracing = DistributedTracing()
    assert tracing.get_trace_analysis("nope") == {"error": "Trace not found"}

    await tracing.start_trace("open", "plan", "coordinator")
    assert tracing.get_trace_analysis("open") == {"error": "No completed spans in trace"}

    failed = await tracing.start_trace("broken", "plan", "coordinator")
    await tracing.finish_span(failed, status="failed", metadata={"error": "timeout"})
    assert tracing.get_trace_analysis("broken") == {"error": "No completed spans in trace"}

    await tracing.finish_span("no-such-span")  # an unknown span id is ignored
    assert tracing.get_trace_analysis("nope") == {"error": "Trace not found"}


async def test_failed_spans_count_in_total_but_not_in_analysis() -> None:
    """Only spans finished with status 'completed' enter completed_spans, durations, participation and the path."""
    tracing = DistributedTracing()
    bad = await tracing.start_trace("mixed", "search", "researcher")  # the longest span, but it fails
    still_open = await tracing.start_trace("mixed", "write", "writer")
    ok = await tracing.start_trace("mixed", "plan", "coordinator")
    assert len({ok, bad, still_open}) == 3
    await asyncio.sleep(0.02)
    await tracing.finish_span(ok)
    await asyncio.sleep(0.02)
    await tracing.finish_span(bad, status="failed")

    analysis = tracing.get_trace_analysis("mixed")
    assert (analysis["total_spans"], analysis["completed_spans"]) == (3, 1)
    assert set(analysis["agent_participation"]) == {"coordinator"}
    assert analysis["critical_path"] == ["coordinator:plan"]
    duration = analysis["agent_participation"]["coordinator"]["total_duration_ms"]
    assert 20 - 1 <= duration < 2000
    assert analysis["total_duration_ms"] == pytest.approx(duration)  # not the failed span's 40 ms
    assert analysis["average_span_duration_ms"] == pytest.approx(duration)
