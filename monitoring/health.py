"""Health scores, the system overview and the performance report (the seed's formulas).

Health score of an agent: start at 100; CPU > 80 % -30, > 60 % -15; memory > 85 % -25,
> 70 % -10; status other than active -50; -10 per active alert; clamped to 0..100.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from statistics import fmean
from typing import TYPE_CHECKING, Any, Protocol

from .alerts import iso

if TYPE_CHECKING:
    from .agents import AgentState
    from .alerts import AlertBook
    from .settings import MonitoringSettings
    from .store import MetricStore
    from .system_metrics import SystemSampler


class ScrapeCounts(Protocol):
    """The collector's scrape counters the overview reports."""

    @property
    def scrapes_ok(self) -> int: ...
    @property
    def scrapes_failed(self) -> int: ...
    @property
    def samples(self) -> int: ...


class CollectorView(Protocol):
    """What health reads from the collector (monitoring.collector.Collector satisfies it).

    A protocol rather than the Collector class, because the collector imports this module
    for its seed methods: health must not import the collector back.
    """

    @property
    def settings(self) -> MonitoringSettings: ...
    @property
    def agents(self) -> Mapping[str, AgentState]: ...
    @property
    def store(self) -> MetricStore: ...
    @property
    def alerts(self) -> AlertBook: ...
    @property
    def stats(self) -> ScrapeCounts: ...


def health_score(cpu: float | None, memory: float | None, active: bool, active_alerts: int) -> float:
    """The seed's health score; missing CPU/memory readings cost nothing."""
    score = 100.0
    if cpu is not None:
        score -= 30 if cpu > 80 else 15 if cpu > 60 else 0
    if memory is not None:
        score -= 25 if memory > 85 else 10 if memory > 70 else 0
    if not active:
        score -= 50
    score -= 10 * active_alerts
    return max(0.0, min(100.0, score))


def active_alert_counts(collector: CollectorView) -> Counter[str]:
    """Active alerts per agent id, counted once (not once per agent)."""
    return Counter(alert.agent_id for alert in collector.alerts.active.values())


def agent_health(collector: CollectorView, state: AgentState, alert_counts: Counter[str]) -> dict[str, Any]:
    """One agent's status, resource readings and health score (`alert_counts` from active_alert_counts)."""
    health = collector.settings.health
    cpu = collector.store.latest(state.agent_id, health.cpu_metric)
    memory = collector.store.latest(state.agent_id, health.memory_metric)
    alerts = alert_counts.get(state.agent_id, 0)
    return {"status": state.status.value,
            "health_score": health_score(cpu, memory, state.status.value == "active", alerts),
            "cpu_usage": cpu, "memory_usage": memory, "active_alerts": alerts,
            "last_seen": iso(state.last_success) if state.last_success else None,
            "last_scrape_duration_seconds": round(state.last_scrape_duration, 6),
            "last_error": state.last_error}


def system_overview(collector: CollectorView, sampler: SystemSampler | None = None) -> dict[str, Any]:
    """The seed's `system_overview`: counts, alerts, average health, per-agent detail, this pod."""
    counts = active_alert_counts(collector)
    agents = {agent_id: agent_health(collector, state, counts) for agent_id, state in collector.agents.items()}
    statuses = Counter(agent["status"] for agent in agents.values())
    severities = Counter(alert.severity.value for alert in collector.alerts.active.values())
    return {
        "timestamp": iso(time.time()),
        "total_agents": len(agents),
        "active_agents": statuses.get("active", 0),
        "status_counts": dict(statuses),
        "active_alerts": len(collector.alerts.active),
        "alerts_by_severity": dict(severities),
        "system_health": round(fmean(agent["health_score"] for agent in agents.values()), 2) if agents else 100.0,
        "agents": agents,
        "collector": {"scrapes_ok": collector.stats.scrapes_ok, "scrapes_failed": collector.stats.scrapes_failed,
                      "samples": collector.stats.samples, "recent_metrics": len(collector.store.recent)},
        "system": sampler.latest if sampler else {},
    }


def performance_report(collector: CollectorView, hours: float, sampler: SystemSampler | None = None) -> dict[str, Any]:
    """Per-agent CPU/memory statistics and alerts over the last `hours`, with recommendations.

    Statistics come from the rolling windows, so they cover at most `window_size` samples
    per series; `coverage_seconds` says how far back the data actually reaches.
    """
    now = time.time()
    since = now - hours * 3600
    health = collector.settings.health
    overview = system_overview(collector, sampler)
    agents: dict[str, Any] = {}
    for agent_id, summary in overview["agents"].items():
        cpu = collector.store.values_since(agent_id, health.cpu_metric, since)
        memory = collector.store.values_since(agent_id, health.memory_metric, since)
        fired = [alert for alert in (*collector.alerts.history, *collector.alerts.active.values())
                 if alert.agent_id == agent_id and alert.started_at >= since]
        agents[agent_id] = {**summary, "cpu": _stats(cpu), "memory": _stats(memory),
                            "alerts_in_period": len(fired)}
    oldest = min((sample.timestamp for sample in collector.store.recent), default=now)
    return {
        "generated_at": iso(now),
        "period_hours": hours,
        "coverage_seconds": round(now - max(oldest, since), 1),
        "summary": {key: overview[key] for key in ("total_agents", "active_agents", "status_counts",
                                                    "active_alerts", "alerts_by_severity", "system_health")},
        "agents": agents,
        "recommendations": recommendations(overview),
    }


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"avg": None, "min": None, "max": None, "samples": 0}
    return {"avg": round(fmean(values), 3), "min": min(values), "max": max(values), "samples": len(values)}


def recommendations(overview: dict[str, Any]) -> list[str]:
    """The seed's recommendations: low health, high CPU, high memory, many unhealthy agents."""
    advice = []
    for agent_id, agent in overview["agents"].items():
        if agent["health_score"] < 70:
            advice.append(f"{agent_id}: health score {agent['health_score']:.0f} is below 70; check its alerts "
                          f"and last error ({agent['last_error'] or 'none'})")
        if agent["cpu_usage"] is not None and agent["cpu_usage"] > 70:
            advice.append(f"{agent_id}: CPU at {agent['cpu_usage']:.0f}%; scale out (raise max_replicas) or "
                          f"raise its CPU request")
        if agent["memory_usage"] is not None and agent["memory_usage"] > 80:
            advice.append(f"{agent_id}: memory at {agent['memory_usage']:.0f}%; raise its memory limit or look "
                          f"for a leak")
    total = overview["total_agents"]
    unhealthy = total - overview["active_agents"]
    if total and unhealthy / total > 0.3:
        advice.append(f"{unhealthy} of {total} agents are not active (>30%); look for a shared cause "
                      f"(node, network, dependency) before individual agents")
    return advice
